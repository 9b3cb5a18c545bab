# A self-contained copy of the study (report, HTML, plots, tables, configs, cells, checksums) in
# results/publish/<publish_name>/. Not part of `all`: run `snakemake ... publish`.


rule publish:
    input:
        report="results/report.md",
        plots=get_publish_plots(),
        tables=get_publish_tables(),
        cells=get_cell_files(),
        included=get_included_cell_files(),
        configs=get_configfiles(),
    output:
        bundle=directory(f"results/publish/{STUDY['publish_name']}"),
    params:
        name=STUDY["publish_name"],
        study=get_study_summary(),
    conda:
        "../../envs/speedatlas.yaml"
    log:
        "results/logs/publish.log",
    script:
        "../scripts/publish.py"
