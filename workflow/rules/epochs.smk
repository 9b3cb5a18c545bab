# The mnist_epoch workload's tables, and the seed study side by side with ours. Both read only
# cell files and tables: a change here reruns tables and report, never a cell.


rule epoch_table:
    input:
        cells=get_epoch_cell_files(),
    output:
        epochs=f"{STUDY_DIR}/tables/epochs.parquet",
        md=f"{STUDY_DIR}/tables/epochs.md",
    log:
        f"{STUDY_DIR}/logs/epoch_table.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/epoch_table.py"


rule seed_side_by_side:
    input:
        published=get_published(),
        epochs=f"{STUDY_DIR}/tables/epochs.parquet",
        cells=f"{STUDY_DIR}/tables/cells.parquet",
        speedups=f"{STUDY_DIR}/tables/speedups.parquet",
    output:
        table=f"{STUDY_DIR}/tables/seed_side_by_side.parquet",
        md=f"{STUDY_DIR}/tables/seed_side_by_side.md",
    log:
        f"{STUDY_DIR}/logs/seed_side_by_side.log",
    conda:
        "../../envs/speedatlas.yaml"
    params:
        baseline_device=STUDY["baseline_device"],
        baseline_torch=STUDY["baseline_torch"],
        machine=STUDY["machine"],
        images=STUDY["data"]["images"],
        source=STUDY["published"],
    script:
        "../scripts/seed_side_by_side.py"
