"""Build and write the study's tables from its cell files (the aggregate rule's one call)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from speedatlas import cellkey
from speedatlas.analyze import (
    energy_tables,
    machine_axis,
    multiprocess,
    peaks,
    resultsets,
    speedup_markdown,
    tables,
    version_axis,
)
from speedatlas.plan import quarantine

SPEEDUP_MD_COLUMNS = {
    "machine_device": ("Speed-ups across machines", "baseline machine/device"),
    "device": ("Device speed-ups", "baseline device"),
    "torch_requested": ("Torch-version speed-ups", "baseline torch"),
    "dtype": ("dtype speed-ups (autocast over float32)", "float32"),
    "variant": ("Variant speed-ups (over eager)", "eager"),
    "batch_size": ("Batch-size scaling (throughput over the smallest batch)", "smallest batch"),
}


def speedups_markdown(speedups: pd.DataFrame) -> str:
    """One section per axis: rows = comparison and cell, columns = batch sizes, 'x.xx× [lo–hi]'."""
    if speedups.empty:
        return "_No speed-up could be computed: fewer than two comparable cells ran._\n"
    parts = []
    for axis, (title, _) in SPEEDUP_MD_COLUMNS.items():
        frame = speedups[speedups["axis"] == axis]
        if frame.empty:
            continue
        if axis == version_axis.AXIS and "candidate_torch_version" in frame:
            # name the builds that actually ran, the requested prefix in brackets
            frame = frame.assign(
                candidate=[version_axis.label(r.candidate, r.candidate_torch_version) for r in frame.itertuples()],
                baseline=[version_axis.label(r.baseline, r.baseline_torch_version) for r in frame.itertuples()],
            )
        parts.append(f"### {title}\n\n" + speedup_markdown.axis_markdown(frame, axis, speedup_markdown.varying_keys(speedups)))
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
    include_roots: Iterable[str] = (),
    included: Iterable[str] = (),
    cross_machine_baselines: Iterable[str] = (),
    device_peaks: list | None = None,
    host_bound_share: float = 0.9,
) -> None:
    """The study's tables; `include_roots`/`included` add other machines' result sets.

    An unreadable cell file of this study is set aside (speedatlas.plan.quarantine) and the job fails
    naming it; the next run measures it again.
    """
    cell_paths = list(cell_paths)
    try:
        raw = resultsets.read_study(
            cell_paths, list(include_roots), list(included), lambda paths: tables.read_cells(paths, (*tables.AGGREGATE_COLUMNS, *energy_tables.ENERGY_COLUMNS))
        )
    except quarantine.UnreadableCell as error:
        if error.path not in cell_paths:  # another machine's set: not ours to move
            raise
        target = quarantine.set_aside(error.path, error.reason)
        quarantine.remove_derived()
        raise quarantine.UnreadableCell(
            error.path, f"{error.reason}; moved to {target}; run the same command again to measure it again"
        ) from None
    cells = peaks.add_efficiency(tables.summarize_cells(raw, noise_cv, host_bound_share), peaks.load_peaks(extra=device_peaks or []))
    energy = energy_tables.EnergySamples(raw, resamples, seed)
    cells = energy_tables.add_energy(cells, raw, confidence, resamples, seed, energy)
    speedups = tables.speedup_table(raw, baseline_device, baseline_torch, confidence, resamples, seed)
    across = machine_axis.compare_machines(raw, list(cross_machine_baselines), confidence, resamples, seed)
    if not across.empty:
        speedups = pd.concat([across, speedups], ignore_index=True) if not speedups.empty else across
    speedups = version_axis.add_actual_versions(speedups, cells)
    speedups = multiprocess.mark_host_bound(speedups, cells, cellkey.KEY_COLUMNS)
    speedups = energy_tables.add_energy_ratios(speedups, raw, confidence, resamples, seed, energy)
    for path in (cells_out, speedups_out, speedups_csv, speedups_md):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    cells.to_parquet(cells_out, index=False)
    speedups.to_parquet(speedups_out, index=False)
    speedups.to_csv(speedups_csv, index=False)
    Path(speedups_md).write_text(speedups_markdown(speedups))
