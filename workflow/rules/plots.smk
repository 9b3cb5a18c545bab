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
