"""One row per mnist_epoch cell: epoch times, and how much of them the input pipeline explains.

Orchestration side (pandas). Pure functions over the raw cell rows, so the numbers of the
report's epoch sections are unit-testable without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from speedatlas import cellkey
from speedatlas.analyze.tables import markdown_table

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


def _seconds(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2f}"


def _percent(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.0%}"


EPOCH_METHOD = """\
Each `mnist_epoch` cell runs the seed study's epoch in a fresh process: the first {images} images
of the training set ({datasets}) go through `Resize({input_size})`, `Grayscale(3)` and `ToTensor`
in a shuffling `DataLoader` with {workers} worker process(es); every batch is moved to the device
and trained on (Adam, lr 0.001, 10-class cross-entropy) or inferred. The first epoch is a warm-up,
reported apart (*first epoch*: the only epoch the seed timed, with no warm-up); then
{epochs} whole epoch(s) are timed, each from creating the DataLoader iterator (worker start-up
included, as in the seed) to a device synchronize after its last step. *Data wait* is the time
the cell's process was blocked on the DataLoader, and *input share* = data wait / epoch. On the
CPU that share is exact (compute is synchronous), but worker processes also compete with the
compute threads for cores, which shows as compute; on an asynchronous device (mps, cuda) part
of the wait can overlap device work, so the share is an upper bound on what a faster input
pipeline could save.
"""


def epochs_markdown(epochs: pd.DataFrame) -> str:
    """The report section 'Epoch workload (mnist_epoch)': method, then one row per cell."""
    out = ["## Epoch workload (mnist_epoch)\n"]
    if epochs.empty:
        out.append("_No mnist_epoch cell in this study._\n")
        return "\n".join(out)
    ok = epochs[epochs["status"] == "ok"]
    out.append(
        EPOCH_METHOD.format(
            images=", ".join(map(str, sorted(epochs["images_per_epoch"].dropna().astype(int).unique()))) or "?",
            datasets=", ".join(sorted(ok["dataset"].dropna().unique())) or "no cell ran",
            input_size=", ".join(map(str, sorted(epochs["input_size"].dropna().astype(int).unique()))),
            workers=", ".join(map(str, sorted(epochs["num_workers"].dropna().astype(int).unique()))) or "?",
            epochs=", ".join(map(str, sorted(ok["epochs"].astype(int).unique()))) or "?",
        )
    )
    view = pd.DataFrame(
        {
            "model": epochs["model"],
            "device": epochs["device"],
            "dtype": epochs["dtype"],
            "mode": epochs["mode"],
            "batch": epochs["batch_size"],
            "torch": epochs["torch_requested"],
            "status": epochs["status"],
            "dataset": epochs["dataset"],
            "first epoch s": epochs["first_epoch_s"].map(_seconds),
            "epoch s (median)": epochs["epoch_median_s"].map(_seconds),
            "data wait s": epochs["data_wait_median_s"].map(_seconds),
            "input share": epochs["input_share"].map(_percent),
            "epochs": epochs["epochs"],
        }
    )
    if view["dtype"].nunique() == 1:
        view = view.drop(columns="dtype")
    if view["torch"].nunique() == 1:
        view = view.drop(columns="torch")
    out.append(markdown_table(view))
    return "\n".join(out)


def write_epoch_tables(cell_paths: list[str], parquet: str, md: str) -> None:
    """The epoch_table rule's one call."""
    from pathlib import Path

    from speedatlas.analyze.tables import read_cells

    table = summarize_epochs(read_cells(cell_paths))
    Path(parquet).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(parquet, index=False)
    Path(md).write_text(epochs_markdown(table))
