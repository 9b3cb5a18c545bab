# Collect every cell file into tidy tables. Reads the cells through pyarrow.dataset.


rule aggregate:
    input:
        cells=get_cell_files(),
        peaks=str(REPO / "config" / "devices.yaml"),
    output:
        cells=report(
            "results/tables/cells.parquet",
            caption="../report/cells.rst",
            category="Tables",
            labels={"table": "cells"},
        ),
        speedups="results/tables/speedups.parquet",
        speedups_csv=report(
            "results/tables/speedups.csv",
            caption="../report/speedups.rst",
            category="Tables",
            labels={"table": "speed-ups"},
        ),
        speedups_md="results/tables/speedups.md",
    params:
        baseline_device=STUDY["baseline_device"],
        baseline_torch=STUDY["baseline_torch"],
        confidence=STUDY["confidence"],
        resamples=STUDY["bootstrap_resamples"],
        noise_cv=STUDY["noise_cv"],
        seed=STUDY["seed"],
        device_peaks=STUDY["device_peaks"],
    conda:
        "../../envs/speedatlas.yaml"
    log:
        "results/logs/aggregate.log",
    script:
        "../scripts/aggregate.py"
