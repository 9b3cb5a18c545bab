"""One row per mnist_epoch cell: epoch times, and how much of them the input pipeline explains.

Orchestration side (pandas). Pure functions over the raw cell rows, so the numbers of the
report's epoch sections are unit-testable without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from speedatlas import cellkey

WORKLOAD = "mnist_epoch"

COLUMNS = [
    *cellkey.KEY_COLUMNS,
    "status",
    "error",
    "dataset",
    "images_per_epoch",
    "num_workers",
    "steps_per_epoch",
    "input_size",
    "threads",
    "epochs",
    "first_epoch_s",
    "first_epoch_data_wait_s",
    "epoch_median_s",
    "epoch_q1_s",
    "epoch_q3_s",
    "data_wait_median_s",
    "compute_median_s",
    "input_share",
    "step_median_s",
]


def summarize_epochs(raw: pd.DataFrame) -> pd.DataFrame:
    """Per mnist_epoch cell: medians over its timed epochs.

    input_share = median over epochs of data_wait_s / epoch_time_s: the share of the epoch the
    process spent blocked on the DataLoader. compute_median_s = median of (epoch - wait).
    """
    rows: list[dict[str, Any]] = []
    epoch_rows = raw[raw["workload"] == WORKLOAD] if len(raw) else raw
    for key, group in epoch_rows.groupby(list(cellkey.KEY_COLUMNS), sort=True, dropna=False):
        first = group.iloc[0]
        row: dict[str, Any] = dict(zip(cellkey.KEY_COLUMNS, key))
        row.update(
            status=first["status"],
            error=first["error"],
            dataset=first["dataset"],
            images_per_epoch=first["images_per_epoch"],
            num_workers=first["num_workers"],
            steps_per_epoch=first["steps_per_repeat"],
            input_size=first["input_size"],
            threads=first["threads"],
        )
        ok = group[(group["status"] == "ok") & group["epoch_time_s"].notna()]
        if len(ok):
            epoch = ok["epoch_time_s"].to_numpy(float)
            wait = ok["data_wait_s"].to_numpy(float)
            q1, median, q3 = np.percentile(epoch, [25, 50, 75])
            row.update(
                epochs=len(ok),
                first_epoch_s=first["first_epoch_s"],
                first_epoch_data_wait_s=first["first_epoch_data_wait_s"],
                epoch_median_s=float(median),
                epoch_q1_s=float(q1),
                epoch_q3_s=float(q3),
                data_wait_median_s=float(np.median(wait)),
                compute_median_s=float(np.median(epoch - wait)),
                input_share=float(np.median(wait / epoch)),
                step_median_s=float(np.median(ok["step_time_s"].to_numpy(float))),
            )
        else:
            row.update(epochs=0)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
