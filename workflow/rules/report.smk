# The Markdown report and the speed-up tables for people: built from tables and plots only.


rule speedups_md:
    input:
        speedups="results/tables/speedups.parquet",
    output:
        md=report(
            "results/tables/speedups.md",
            caption="../report/speedups_md.rst",
            category="Tables",
            subcategory="Speed-ups",
            labels={"table": "speed-ups", "format": "Markdown"},
        ),
    log:
        "results/logs/speedups_md.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/speedups_md.py"


rule report_md:
    input:
        unpack(get_torch_versions_plot),
        cells="results/tables/cells.parquet",
        speedups="results/tables/speedups.parquet",
        speedup_heatmap_png="results/plots/speedup_heatmap.png",
        throughput_png="results/plots/throughput.png",
        noise_png="results/plots/noise.png",
        energy_png="results/plots/energy.png",
        sections=get_report_sections(),
    output:
        report="results/report.md",
        # the same report as one HTML page, plots embedded: what Snakemake's HTML report shows
        # (it can show HTML in a frame, not Markdown)
        html=report(
            "results/report.md.html",
            caption="../report/report_md.rst",
            category="Report",
            labels={"document": "the study's report"},
        ),
    log:
        "results/logs/report_md.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        study=get_study_summary(),
        shipped=get_shipped_result_set(),
    script:
        "../scripts/report_md.py"
