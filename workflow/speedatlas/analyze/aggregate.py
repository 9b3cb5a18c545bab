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
    tables,
    version_axis,
)
from speedatlas.plan import quarantine


def write_tables(
    cell_paths: Iterable[str],
    cells_out: str,
    speedups_out: str,
    speedups_csv: str,
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
    samples = tables.Samples(raw, resamples, seed)
    cells = tables.summarize_cells(raw, noise_cv, host_bound_share)
    cells = peaks.add_efficiency(tables.add_intervals(cells, samples, confidence), peaks.load_peaks(extra=device_peaks or []))
    energy = energy_tables.EnergySamples(raw, resamples, seed)
    cells = energy_tables.add_energy(cells, raw, confidence, resamples, seed, energy)
    speedups = tables.speedup_table(raw, baseline_device, baseline_torch, confidence, resamples, seed, samples)
    across = machine_axis.compare_machines(raw, list(cross_machine_baselines), confidence, resamples, seed)
    if not across.empty:
        speedups = pd.concat([across, speedups], ignore_index=True) if not speedups.empty else across
    speedups = version_axis.add_actual_versions(speedups, cells)
    speedups = multiprocess.mark_host_bound(speedups, cells, cellkey.KEY_COLUMNS)
    speedups = energy_tables.add_energy_ratios(speedups, raw, confidence, resamples, seed, energy)
    for path in (cells_out, speedups_out, speedups_csv):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    cells.to_parquet(cells_out, index=False)
    speedups.to_parquet(speedups_out, index=False)
    speedups.to_csv(speedups_csv, index=False)
