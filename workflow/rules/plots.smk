# Plots read only the aggregated tables: a style change reruns plots, never benchmarks.


rule plot_throughput:
    input:
        cells="results/tables/cells.parquet",
    output:
        png=report(
            "results/plots/throughput.png",
            caption="../report/throughput.rst",
            category="Plots",
            labels={"plot": "throughput vs batch size"},
        ),
        svg="results/plots/throughput.svg",
    conda:
        "../../envs/speedatlas.yaml"
    log:
        "results/logs/plot_throughput.log",
    script:
        "../scripts/plot_throughput.py"


# Only a target when the study has more than one torch version (common.get_torch_versions_plot).
rule plot_torch_versions:
    input:
        cells="results/tables/cells.parquet",
    output:
        png=report(
            "results/plots/torch_versions.png",
            caption="../report/torch_versions.rst",
            category="Plots",
            labels={"plot": "throughput by torch version"},
        ),
        svg="results/plots/torch_versions.svg",
    conda:
        "../../envs/speedatlas.yaml"
    log:
        "results/logs/plot_torch_versions.log",
    script:
        "../scripts/plot_torch_versions.py"
