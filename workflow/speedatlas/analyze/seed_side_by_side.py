"""The seed study, side by side: published epoch times next to ours, and what explains them.

The seed's author saw MPS up to ~25× faster than the CPU at batch 64 and could not tell whether
the experiment was flawed. Beside each published epoch time we put our epoch (first epoch = the
seed's protocol, median of timed epochs = ours), the share of it spent waiting for the input
pipeline, and the compute-only time of the same images from the synthetic workload: together
they say whether a gap is compute or input pipeline.

Orchestration side (pandas). Pure functions over DataFrames, testable without torch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


PUBLISHED_COLUMNS = ("model", "batch_size", "device", "epoch_time_s")

COLUMNS = [
    "model",
    "batch_size",
    "device",
    "published_epoch_s",
    "published_speedup",
    "published_speedup_stated",
    "status",
    "dataset",
    "first_epoch_s",
    "epoch_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "first_epoch_speedup",
    "data_wait_s",
    "input_share",
    "compute_only_epoch_s",
    "compute_only_speedup",
]


def load_published(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The published figures and their description (the file's leading '#' lines)."""
    text = Path(path).read_text()
    notes = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    frame = pd.read_csv(io.StringIO(text), comment="#", skip_blank_lines=True)
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {', '.join(PUBLISHED_COLUMNS)} [, speedup_pct, mode]")
    if "mode" not in frame:
        frame["mode"] = "train"
    if "speedup_pct" not in frame:
        frame["speedup_pct"] = np.nan
    frame["batch_size"] = frame["batch_size"].astype(int)
    return frame, notes


def _lookup(frame: pd.DataFrame, **keys: Any) -> pd.Series | None:
    if frame is None or frame.empty:
        return None
    mask = np.ones(len(frame), dtype=bool)
    for column, value in keys.items():
        mask &= (frame[column] == value).to_numpy()
    hits = frame[mask]
    return hits.iloc[0] if len(hits) else None


def side_by_side(
    published: pd.DataFrame,
    epochs: pd.DataFrame,
    cells: pd.DataFrame,
    speedups: pd.DataFrame,
    baseline_device: str = "cpu",
    baseline_torch: str = "current",
    machine: str | None = None,
    images: int | None = None,
) -> pd.DataFrame:
    """One row per published model × batch × device (plus our devices the source lacks).

    Ours = float32, eager, torch `baseline_torch`, the published mode (train), on `machine`.
    Speed-ups are over `baseline_device`: published = ratio of the published times (and the
    stated one, where given); ours = ratio of median epochs with its bootstrap interval from
    the speed-up table, first-epoch ratio, and compute-only ratio (synthetic workload).
    `images` (the study's data.images) sizes the compute-only epoch where no epoch cell says.
    """
    def ours(frame: pd.DataFrame, workload: str) -> pd.DataFrame:
        if frame is None or frame.empty:
            return frame
        keep = (
            (frame["workload"] == workload)
            & (frame["dtype"] == "float32")
            & (frame["variant"] == "eager")
            & (frame["torch_requested"] == baseline_torch)
        )
        if machine is not None:
            keep &= frame["machine"] == machine
        return frame[keep]

    epoch_cells = ours(epochs, "mnist_epoch")
    synthetic = ours(cells, "synthetic")
    device_speedups = ours(speedups[speedups["axis"] == "device"] if len(speedups) else speedups, "mnist_epoch")

    images_default = images
    rows = []
    for (model, batch, mode), group in published.groupby(["model", "batch_size", "mode"], sort=False):
        devices = list(dict.fromkeys([*group["device"]]))
        if epoch_cells is not None and len(epoch_cells):
            mine = epoch_cells[(epoch_cells["model"] == model) & (epoch_cells["batch_size"] == batch) & (epoch_cells["mode"] == mode)]
            devices += [d for d in mine["device"] if d not in devices]
        base_pub = _lookup(group, device=baseline_device)
        base_epoch = _lookup(epoch_cells, model=model, batch_size=batch, mode=mode, device=baseline_device)
        base_synth = _lookup(synthetic, model=model, batch_size=batch, mode=mode, device=baseline_device)
        for device in devices:
            pub = _lookup(group, device=device)
            row: dict[str, Any] = {"model": model, "batch_size": int(batch), "device": device}
            if pub is not None:
                row["published_epoch_s"] = float(pub["epoch_time_s"])
                if pd.notna(pub["speedup_pct"]):
                    row["published_speedup_stated"] = float(pub["speedup_pct"]) / 100
                if base_pub is not None and device != baseline_device:
                    row["published_speedup"] = float(base_pub["epoch_time_s"]) / float(pub["epoch_time_s"])
            cell = _lookup(epoch_cells, model=model, batch_size=batch, mode=mode, device=device)
            row["status"] = cell["status"] if cell is not None else "not in study"
            if cell is not None and cell["status"] == "ok":
                row.update(
                    dataset=cell["dataset"],
                    first_epoch_s=cell["first_epoch_s"],
                    epoch_s=cell["epoch_median_s"],
                    data_wait_s=cell["data_wait_median_s"],
                    input_share=cell["input_share"],
                )
                if device != baseline_device and base_epoch is not None and base_epoch["status"] == "ok":
                    row["first_epoch_speedup"] = base_epoch["first_epoch_s"] / cell["first_epoch_s"]
                    ratio = _lookup(device_speedups, model=model, batch_size=batch, mode=mode, device=device,
                                    baseline=baseline_device)
                    if ratio is not None:
                        row.update(speedup=ratio["speedup"], speedup_ci_low=ratio["ci_low"], speedup_ci_high=ratio["ci_high"])
                    else:
                        row["speedup"] = base_epoch["epoch_median_s"] / cell["epoch_median_s"]
            images = cell["images_per_epoch"] if cell is not None and pd.notna(cell["images_per_epoch"]) else None
            synth = _lookup(synthetic, model=model, batch_size=batch, mode=mode, device=device)
            if images is None:
                images = images_default
            if synth is not None and cell is not None and synth["input_size"] != cell["input_size"]:
                synth = None  # a different image size is not the same compute
            if synth is not None and synth["status"] == "ok" and images is not None and pd.notna(images):
                row["compute_only_epoch_s"] = float(synth["median_s"]) / int(batch) * float(images)
                if device != baseline_device and base_synth is not None and base_synth["status"] == "ok":
                    row["compute_only_speedup"] = float(base_synth["median_s"]) / float(synth["median_s"])
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
