# Plots read only the aggregated tables: a style change reruns plots, never benchmarks.


rule plot_throughput:
    input:
        cells="results/tables/cells.parquet",
    output:
        png=report(
            "results/plots/throughput.png",
            caption="../report/throughput.rst",
            category="Plots",
            subcategory="Throughput",
            labels={"plot": "throughput vs batch size", "axes": "model, machine/device"},
        ),
        svg="results/plots/throughput.svg",
    log:
        "results/logs/plot_throughput.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/plot_throughput.py"


rule plot_speedup_heatmap:
    input:
        speedups="results/tables/speedups.parquet",
    output:
        png=report(
            "results/plots/speedup_heatmap.png",
            caption="../report/speedup_heatmap.rst",
            category="Plots",
            subcategory="Speed-ups",
            labels={"plot": "speed-up heatmap", "axes": "device, machine/device"},
        ),
        svg="results/plots/speedup_heatmap.svg",
    log:
        "results/logs/plot_speedup_heatmap.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        confidence=STUDY["confidence"],
    script:
        "../scripts/plot_speedup_heatmap.py"


rule plot_noise:
    input:
        cells="results/tables/cells.parquet",
    output:
        png=report(
            "results/plots/noise.png",
            caption="../report/noise.rst",
            category="Plots",
            subcategory="Noise",
            labels={"plot": "noise per cell", "axes": "coefficient of variation"},
        ),
        svg="results/plots/noise.svg",
    log:
        "results/logs/plot_noise.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        noise_cv=STUDY["noise_cv"],
    script:
        "../scripts/plot_noise.py"


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
    log:
        "results/logs/plot_torch_versions.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/plot_torch_versions.py"


rule plot_energy:
    input:
        cells="results/tables/cells.parquet",
    output:
        png=report(
            "results/plots/energy.png",
            caption="../report/energy.rst",
            category="Plots",
            subcategory="Energy",
            labels={"plot": "throughput vs power", "axes": "watts, images/s"},
        ),
        svg="results/plots/energy.svg",
    log:
        "results/logs/plot_energy.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/plot_energy.py"
