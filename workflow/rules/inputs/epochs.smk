# Input functions of the epochs stage (workflow/rules/epochs.smk): what its rules read.


def epoch_tables_wanted():
    return "mnist_epoch" in STUDY["workload"] or PUBLISHED is not None


def get_epoch_cell_files():
    return [cell.path for cell in CELLS if cell.workload == "mnist_epoch"]


def get_published():
    return [str(PUBLISHED)] if PUBLISHED is not None else []


def get_epoch_outputs():
    outputs = [f"{STUDY_DIR}/tables/epochs.parquet"] if epoch_tables_wanted() else []
    if PUBLISHED is not None:
        outputs.append(f"{STUDY_DIR}/tables/seed_side_by_side.parquet")
    return outputs
