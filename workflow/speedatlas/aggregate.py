"""Build and write the study's tables from its cell files (the aggregate rule's one call)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from . import peaks, tables, torchversions

SPEEDUP_MD_COLUMNS = {
    "device": ("Device speed-ups", "baseline device"),
    "torch_requested": ("Torch-version speed-ups", "baseline torch"),
    "dtype": ("dtype speed-ups (autocast over float32)", "float32"),
    "variant": ("Variant speed-ups (over eager)", "eager"),
    "batch_size": ("Batch-size scaling (throughput over the smallest batch)", "smallest batch"),
}


def speedups_markdown(speedups: pd.DataFrame) -> str:
    """One section per axis; each row names the comparison and gives 'x.xx× [lo–hi]'."""
    if speedups.empty:
        return "_No speed-up could be computed: fewer than two comparable cells ran._\n"
    parts = []
    for axis, (title, _) in SPEEDUP_MD_COLUMNS.items():
        frame = speedups[speedups["axis"] == axis]
        if frame.empty:
            continue
        others = [k for k in tables.CELL_KEYS if k != axis and frame[k].nunique() > 1]
        view = frame[[*others]].copy()
        comparison = frame["candidate"] + " vs " + frame["baseline"]
        if axis == torchversions.AXIS and "candidate_torch_version" in frame:
            comparison = torchversions.comparison_labels(frame)  # the actual builds, requested in brackets
        view.insert(len(others), "comparison", comparison)
        view["speed-up [95% CI]"] = [
            tables.format_ratio(r.speedup, r.ci_low, r.ci_high) + ("" if r.significant else " (n.s.)")
            for r in frame.itertuples()
        ]
        view["baseline items/s"] = frame["baseline_items_per_s"].map("{:.1f}".format)
        view["candidate items/s"] = frame["candidate_items_per_s"].map("{:.1f}".format)
        parts.append(f"### {title}\n\n" + tables.markdown_table(view))
    return "\n".join(parts)


def write_tables(
    cell_paths: Iterable[str],
    cells_out: str,
    speedups_out: str,
    speedups_csv: str,
    speedups_md: str,
    baseline_device: str,
    baseline_torch: str,
    confidence: float,
    resamples: int,
    noise_cv: float,
    seed: int,
    device_peaks: list | None = None,
) -> None:
    raw = tables.read_cells(cell_paths)
    cells = peaks.add_efficiency(tables.summarize_cells(raw, noise_cv), peaks.load_peaks(extra=device_peaks or []))
    speedups = tables.speedup_table(raw, baseline_device, baseline_torch, confidence, resamples, seed)
    speedups = torchversions.add_actual_versions(speedups, cells)
    for path in (cells_out, speedups_out, speedups_csv, speedups_md):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    cells.to_parquet(cells_out, index=False)
    speedups.to_parquet(speedups_out, index=False)
    speedups.to_csv(speedups_csv, index=False)
    Path(speedups_md).write_text(speedups_markdown(speedups))
