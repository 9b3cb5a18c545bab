# The Markdown report and the speed-up tables for people: built from tables and plots only.


rule speedups_md:
    input:
        speedups=f"{STUDY_DIR}/tables/speedups.parquet",
    output:
        md=report(
            f"{STUDY_DIR}/tables/speedups.md",
            caption="../report/speedups_md.rst",
            category="Tables",
            subcategory="Speed-ups",
            labels={"table": "speed-ups", "format": "Markdown"},
        ),
    log:
        f"{STUDY_DIR}/logs/speedups_md.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/speedups_md.py"


rule report_md:
    input:
        unpack(get_torch_versions_plot),
        cells=f"{STUDY_DIR}/tables/cells.parquet",
        speedups=f"{STUDY_DIR}/tables/speedups.parquet",
        speedup_heatmap_png=f"{STUDY_DIR}/plots/speedup_heatmap.png",
        throughput_png=f"{STUDY_DIR}/plots/throughput.png",
        noise_png=f"{STUDY_DIR}/plots/noise.png",
        energy_png=f"{STUDY_DIR}/plots/energy.png",
        sections=get_report_sections(),
    output:
        report=f"{STUDY_DIR}/report.md",
        # the same report as one HTML page, plots embedded: what Snakemake's HTML report shows
        # (it can show HTML in a frame, not Markdown)
        html=report(
            f"{STUDY_DIR}/report.md.html",
            caption="../report/report_md.rst",
            category="Report",
            labels={"document": "the study's report"},
        ),
    log:
        f"{STUDY_DIR}/logs/report_md.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        study=get_study_summary(),
        shipped=get_shipped_result_set(),
    script:
        "../scripts/report_md.py"
