# Input functions of the publish stage (workflow/rules/publish.smk): what its rules read.


def get_publish_plots():
    """Every plot of the study, PNG and SVG, for the publish bundle."""
    names = ("throughput", "speedup_heatmap", "noise", "energy")
    plots = [f"{STUDY_DIR}/plots/{name}.{ext}" for name in names for ext in ("png", "svg")]
    for png in get_torch_versions_plot().values():  # only with several torch versions
        plots += [png, png.replace(".png", ".svg")]
    if mlx_tables_wanted():  # the report's "PyTorch or MLX" section shows this plot
        plots += [f"{STUDY_DIR}/plots/torch_vs_mlx.png", f"{STUDY_DIR}/plots/torch_vs_mlx.svg"]
    return plots


def get_publish_tables():
    tables = [
        f"{STUDY_DIR}/tables/cells.parquet",
        f"{STUDY_DIR}/tables/speedups.parquet",
        f"{STUDY_DIR}/tables/speedups.csv",
        f"{STUDY_DIR}/tables/speedups.md",
    ]
    if mlx_tables_wanted():
        tables.append(f"{STUDY_DIR}/tables/torch_vs_mlx.parquet")
    return tables


def get_factory_files():
    """{path in the publish bundle: source file} of every model factory of the study."""
    from speedatlas.plan import model_entries

    return model_entries.factory_files(STUDY, Path.cwd())


def get_factory_strings():
    """{factory as configured: as the bundle's config names it}, for factory files outside the
    working directory (the bundle's config then names its own copies)."""
    from speedatlas.plan import model_entries

    return model_entries.bundle_factory_strings(STUDY, Path.cwd())
