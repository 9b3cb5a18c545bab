# A self-contained copy of the study (report, HTML, plots, tables, configs, cells, checksums) in
# results/publish/<publish_name>/. Not part of `all`: run `snakemake ... publish`.


rule publish:
    input:
        report=f"{STUDY_DIR}/report.md",
        plots=get_publish_plots(),
        tables=get_publish_tables(),
        cells=get_cell_files(),
        included=get_included_cell_files(),
        configs=get_configfiles(),
        factories=list(get_factory_files().values()),
    output:
        bundle=directory(f"results/publish/{STUDY['publish_name']}"),
    log:
        f"{STUDY_DIR}/logs/publish.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        name=STUDY["publish_name"],
        study=get_study_summary(),
        factories=json.dumps({k: str(v) for k, v in get_factory_files().items()}, sort_keys=True),
        factory_strings=json.dumps(get_factory_strings(), sort_keys=True),
    script:
        "../scripts/publish.py"
