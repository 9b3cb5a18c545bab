# The Markdown report: built from tables and plots only.


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
        report=report(
            "results/report.md",
            caption="../report/report_md.rst",
            category="Report",
            subcategory="Markdown",
            labels={"document": "report.md"},
        ),
    log:
        "results/logs/report_md.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        study=get_study_summary(),
    script:
        "../scripts/report_md.py"
