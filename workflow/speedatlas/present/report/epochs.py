"""The report section of the mnist_epoch workload: how an epoch was timed, and per cell the first
epoch, the median epoch and the share spent waiting for the input pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd

from speedatlas.present.formatting import markdown_table


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
