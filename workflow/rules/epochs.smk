# The mnist_epoch workload's tables, and the seed study side by side with ours. Both read only
# cell files and tables: a change here reruns tables and report, never a cell.


rule epoch_table:
    input:
        cells=get_epoch_cell_files(),
    output:
        epochs="results/tables/epochs.parquet",
        md="results/tables/epochs.md",
    log:
        "results/logs/epoch_table.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/epoch_table.py"


rule seed_side_by_side:
    input:
        published=get_published(),
        epochs="results/tables/epochs.parquet",
        cells="results/tables/cells.parquet",
        speedups="results/tables/speedups.parquet",
    output:
        table="results/tables/seed_side_by_side.parquet",
        md="results/tables/seed_side_by_side.md",
    log:
        "results/logs/seed_side_by_side.log",
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
