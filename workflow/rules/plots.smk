# Plots read only the aggregated tables: a style change reruns plots, never benchmarks.


rule plot_throughput:
    input:
        cells=f"{STUDY_DIR}/tables/cells.parquet",
    output:
        png=report(
            f"{STUDY_DIR}/plots/throughput.png",
            caption="../report/throughput.rst",
            category="Plots",
            subcategory="Throughput",
            labels={"plot": "throughput vs batch size", "axes": "model, machine/device"},
        ),
        svg=f"{STUDY_DIR}/plots/throughput.svg",
    log:
        f"{STUDY_DIR}/logs/plot_throughput.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/plot_throughput.py"


rule plot_speedup_heatmap:
    input:
        speedups=f"{STUDY_DIR}/tables/speedups.parquet",
    output:
        png=report(
            f"{STUDY_DIR}/plots/speedup_heatmap.png",
            caption="../report/speedup_heatmap.rst",
            category="Plots",
            subcategory="Speed-ups",
            labels={"plot": "speed-up heatmap", "axes": "device, machine/device"},
        ),
        svg=f"{STUDY_DIR}/plots/speedup_heatmap.svg",
    log:
        f"{STUDY_DIR}/logs/plot_speedup_heatmap.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        confidence=STUDY["confidence"],
    script:
        "../scripts/plot_speedup_heatmap.py"


rule plot_noise:
    input:
        cells=f"{STUDY_DIR}/tables/cells.parquet",
    output:
        png=report(
            f"{STUDY_DIR}/plots/noise.png",
            caption="../report/noise.rst",
            category="Plots",
            subcategory="Noise",
            labels={"plot": "noise per cell", "axes": "coefficient of variation"},
        ),
        svg=f"{STUDY_DIR}/plots/noise.svg",
    log:
        f"{STUDY_DIR}/logs/plot_noise.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        noise_cv=STUDY["noise_cv"],
    script:
        "../scripts/plot_noise.py"


# Only a target when the study has more than one torch version (common.get_torch_versions_plot).
rule plot_torch_versions:
    input:
        cells=f"{STUDY_DIR}/tables/cells.parquet",
    output:
        png=report(
            f"{STUDY_DIR}/plots/torch_versions.png",
            caption="../report/torch_versions.rst",
            category="Plots",
            labels={"plot": "throughput by torch version"},
        ),
        svg=f"{STUDY_DIR}/plots/torch_versions.svg",
    log:
        f"{STUDY_DIR}/logs/plot_torch_versions.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/plot_torch_versions.py"


rule plot_energy:
    input:
        cells=f"{STUDY_DIR}/tables/cells.parquet",
    output:
        png=report(
            f"{STUDY_DIR}/plots/energy.png",
            caption="../report/energy.rst",
            category="Plots",
            subcategory="Energy",
            labels={"plot": "throughput vs power", "axes": "watts, images/s"},
        ),
        svg=f"{STUDY_DIR}/plots/energy.svg",
    log:
        f"{STUDY_DIR}/logs/plot_energy.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/plot_energy.py"
