# Plots read only the aggregated tables: a style change reruns plots, never benchmarks. The four
# plots every study has come from one job: each script job pays ~4 s to import pandas, matplotlib
# and seaborn on 2 cores, and a study of two cells should not spend 16 s drawing.


rule plots:
    input:
        cells=f"{STUDY_DIR}/tables/cells.parquet",
        speedups=f"{STUDY_DIR}/tables/speedups.parquet",
    output:
        throughput_png=report(
            f"{STUDY_DIR}/plots/throughput.png",
            caption="../report/throughput.rst",
            category="Plots",
            subcategory="Throughput",
            labels={"plot": "throughput vs batch size", "axes": "model, machine/device"},
        ),
        throughput_svg=f"{STUDY_DIR}/plots/throughput.svg",
        speedup_heatmap_png=report(
            f"{STUDY_DIR}/plots/speedup_heatmap.png",
            caption="../report/speedup_heatmap.rst",
            category="Plots",
            subcategory="Speed-ups",
            labels={"plot": "speed-up heatmap", "axes": "device, machine/device"},
        ),
        speedup_heatmap_svg=f"{STUDY_DIR}/plots/speedup_heatmap.svg",
        noise_png=report(
            f"{STUDY_DIR}/plots/noise.png",
            caption="../report/noise.rst",
            category="Plots",
            subcategory="Noise",
            labels={"plot": "noise per cell", "axes": "coefficient of variation"},
        ),
        noise_svg=f"{STUDY_DIR}/plots/noise.svg",
        energy_png=report(
            f"{STUDY_DIR}/plots/energy.png",
            caption="../report/energy.rst",
            category="Plots",
            subcategory="Energy",
            labels={"plot": "throughput vs power", "axes": "watts, images/s"},
        ),
        energy_svg=f"{STUDY_DIR}/plots/energy.svg",
    log:
        f"{STUDY_DIR}/logs/plots.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        confidence=STUDY["confidence"],
        noise_cv=STUDY["noise_cv"],
    script:
        "../scripts/plots.py"


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
