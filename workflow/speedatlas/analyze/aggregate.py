"""Build and write the study's tables from its cell files (the aggregate rule's one call)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from speedatlas import cellkey
from speedatlas.analyze import (
    cellcheck,
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
    spec_sha256: dict[str, str] | None = None,
) -> None:
    """The study's tables; `include_roots`/`included` add other machines' result sets.

    Every cell file of this study is checked first: readable, of the cell schema, and holding what
    its path and `spec_sha256` ({path: hash of the spec the plan gives it}) say
    (speedatlas.analyze.cellcheck). Those that fail are all set aside (speedatlas.plan.quarantine)
    and the job fails naming each; the next run measures them again.
    """
    cell_paths = list(cell_paths)
    try:
        raw = resultsets.read_study(
            cell_paths, list(include_roots), list(included), lambda paths: read_checked(paths, spec_sha256)
        )
    except quarantine.BadCells as error:
        moved = []
        for path, why in error.found:
            try:
                moved.append((path, f"{why}; moved to {quarantine.set_aside(path, why)}"))
            except OSError as cause:  # a read-only results/: nothing moved, nothing lost
                moved.append((path, f"{why}; could not be moved aside ({cause.strerror or cause}): move it away yourself"))
        quarantine.remove_derived()
        raise quarantine.BadCells(moved, "run the same command again to measure them again") from None
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


# What the aggregation reads of each cell file: what the tables need, and what the checks need.
READ_COLUMNS = tuple(dict.fromkeys((*tables.AGGREGATE_COLUMNS, *energy_tables.ENERGY_COLUMNS, *cellcheck.COLUMNS)))


def read_checked(paths: list[str], spec_sha256: dict[str, str] | None = None) -> pd.DataFrame:
    """The rows of this study's cell files, for the tables; raises quarantine.BadCells naming every
    file that cannot be read, does not follow the cell schema, or fails a cellcheck."""
    raw, bad = tables.read_cell_files(paths, READ_COLUMNS)
    found = dict(cellcheck.problems(raw, paths, spec_sha256))
    for error in bad:
        found[error.path] = (f"unreadable cell file ({error.reason})" if isinstance(error, quarantine.UnreadableCell)
                             else f"not a cell file of this schema ({error.reason})")
    if found:
        order = {path: index for index, path in enumerate(paths)}
        raise quarantine.BadCells(sorted(found.items(), key=lambda item: order[item[0]]))
    extra = [c for c in (tables.FILE_COLUMN, *cellcheck.COLUMNS) if c not in (*tables.AGGREGATE_COLUMNS, *energy_tables.ENERGY_COLUMNS)]
    return raw.drop(columns=extra)
