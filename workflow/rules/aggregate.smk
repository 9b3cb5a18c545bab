# Collect every cell file into tidy tables. Each file is checked against its path, its spec, its
# statuses and its values first (speedatlas.analyze.cellcheck); one that fails is set aside.


rule aggregate:
    input:
        cells=get_cell_files(),
        peaks=str(REPO / "config" / "devices.yaml"),
        included=get_included_cell_files(),
        manifests=get_included_manifests(),
    output:
        cells=report(
            f"{STUDY_DIR}/tables/cells.parquet",
            caption="../report/cells.rst",
            category="Tables",
            subcategory="Cells",
            labels={"table": "cells", "format": "Parquet"},
        ),
        speedups=report(
            f"{STUDY_DIR}/tables/speedups.parquet",
            caption="../report/speedups.rst",
            category="Tables",
            subcategory="Speed-ups",
            labels={"table": "speed-ups", "format": "Parquet"},
        ),
        speedups_csv=report(
            f"{STUDY_DIR}/tables/speedups.csv",
            caption="../report/speedups.rst",
            category="Tables",
            subcategory="Speed-ups",
            labels={"table": "speed-ups", "format": "CSV"},
        ),
    log:
        f"{STUDY_DIR}/logs/aggregate.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        baseline_device=STUDY["baseline_device"],
        baseline_torch=STUDY["baseline_torch"],
        confidence=STUDY["confidence"],
        resamples=STUDY["bootstrap_resamples"],
        noise_cv=STUDY["noise_cv"],
        host_bound_share=STUDY["host_bound_share"],
        seed=STUDY["seed"],
        device_peaks=STUDY["device_peaks"],
        include_roots=STUDY["include_results"],
        cross_machine_baselines=STUDY["cross_machine_baselines"],
        spec_sha256=get_cell_spec_hashes,
    script:
        "../scripts/aggregate.py"
