# PyTorch or MLX (issue 24): the MLX cells against their torch cells, a plot and the report's
# section. Only in studies with MLX cells; reads cell files and tables only, never reruns a cell.


rule torch_vs_mlx:
    input:
        cells=get_torch_vs_mlx_cells(),
        speedups=f"{STUDY_DIR}/tables/speedups.parquet",
    output:
        table=f"{STUDY_DIR}/tables/torch_vs_mlx.parquet",
    log:
        f"{STUDY_DIR}/logs/torch_vs_mlx.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        confidence=STUDY["confidence"],
        resamples=STUDY["bootstrap_resamples"],
        seed=STUDY["seed"],
    script:
        "../scripts/torch_vs_mlx.py"


rule plot_torch_vs_mlx:
    input:
        table=f"{STUDY_DIR}/tables/torch_vs_mlx.parquet",
    output:
        png=report(
            f"{STUDY_DIR}/plots/torch_vs_mlx.png",
            caption="../report/torch_vs_mlx.rst",
            category="Plots",
            subcategory="PyTorch or MLX",
            labels={"plot": "torch vs MLX speed-ups", "axes": "model, dtype, mode, batch"},
        ),
        svg=f"{STUDY_DIR}/plots/torch_vs_mlx.svg",
    log:
        f"{STUDY_DIR}/logs/plot_torch_vs_mlx.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/plot_torch_vs_mlx.py"


rule torch_vs_mlx_md:
    input:
        table=f"{STUDY_DIR}/tables/torch_vs_mlx.parquet",
        png=f"{STUDY_DIR}/plots/torch_vs_mlx.png",
    output:
        md=f"{STUDY_DIR}/tables/torch_vs_mlx.md",
    log:
        f"{STUDY_DIR}/logs/torch_vs_mlx_md.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        confidence=STUDY["confidence"],
    script:
        "../scripts/torch_vs_mlx_md.py"
