"""Cells measured in several processes, and the host share of accelerator cells (issue 14).

Orchestration side (pandas, numpy). A cell with `timing.processes: P` has samples from P fresh
processes (column `process`); its estimate is the mean of the per-process medians and its
interval comes from the two-level bootstrap (stats.bootstrap_process_medians). A cell of one
process (every cell written before the column existed) keeps the plain median and the exact
single-level bootstrap, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from speedatlas.analyze import stats

# Raw columns the aggregation reads on top of the cell keys and information.
AGGREGATE_COLUMNS = ("process", "host_share", "device_step_time_s")
# Columns this module adds to the per-cell table.
CELL_COLUMNS = ("processes", "host_share", "device_step_time_s", "host_bound")


def process_ids(rows: pd.DataFrame) -> np.ndarray:
    """The `process` column as integers; files without it came from one process (0)."""
    if "process" not in rows:
        return np.zeros(len(rows), dtype=np.int64)
    return rows["process"].fillna(0).to_numpy(dtype=np.int64)


def add_cell_columns(cells: pd.DataFrame, ok: pd.DataFrame, keys: list[str], host_bound_share: float) -> pd.DataFrame:
    """processes, host share, device time and the host-bound flag per cell; the median of a
    multi-process cell becomes the mean of its per-process medians (what its interval is of).

    `cells` has one row per cell with median_s; `ok` the ok rows with step_time_s.
    """
    cells = cells.copy()
    if ok.empty:
        for column in CELL_COLUMNS:
            cells[column] = pd.Series(dtype=bool if column == "host_bound" else float)
        return cells
    rows = ok.assign(_process=process_ids(ok))
    per_process = rows.groupby([*keys, "_process"], sort=False)["step_time_s"].median()
    grouped = per_process.groupby(level=list(range(len(keys))), sort=False)
    center = pd.DataFrame({"processes": grouped.size(), "_center": grouped.mean()}).reset_index()
    for column in ("host_share", "device_step_time_s"):
        if column in rows:
            center = center.merge(
                rows.groupby(keys, sort=False)[column].median().rename(column).reset_index(), on=keys, how="left"
            )
        else:
            center[column] = np.nan
    cells = cells.merge(center, on=keys, how="left")
    several = cells["processes"].fillna(0) > 1
    cells.loc[several, "median_s"] = cells.loc[several, "_center"]
    cells = cells.drop(columns="_center")
    cells["processes"] = cells["processes"].fillna(0).astype(int)
    cells["host_bound"] = (cells["host_share"] >= host_bound_share).fillna(False).astype(bool)
    return cells


def bootstrap_multiprocess(
    values: dict[tuple, np.ndarray],
    processes: dict[tuple, np.ndarray],
    resamples: int,
    rng: np.random.Generator,
) -> tuple[dict[tuple, float], dict[tuple, np.ndarray]]:
    """Estimates and rerun draws (stats.rerun_draws over the two-level bootstrap) of the cells
    measured in more than one process: their intervals say where a rerun may land.

    Cells whose processes hold equally many samples are resampled together, (C, P, n) at a
    time; a cell whose processes differ in count goes through the ragged path.
    """
    medians: dict[tuple, float] = {}
    boot: dict[tuple, np.ndarray] = {}
    by_shape: dict[tuple[int, int], list[tuple]] = {}
    ragged: list[tuple] = []
    parts: dict[tuple, list[np.ndarray]] = {}
    for key, sample in values.items():
        ids = processes[key]
        order = np.argsort(ids, kind="stable")
        cuts = np.flatnonzero(np.diff(ids[order])) + 1
        parts[key] = np.split(sample[order], cuts)
        sizes = {len(part) for part in parts[key]}
        if len(sizes) == 1:
            by_shape.setdefault((len(parts[key]), sizes.pop()), []).append(key)
        else:
            ragged.append(key)
    for (count, _size), members in sorted(by_shape.items()):
        block = np.stack([np.stack(parts[k]) for k in members])
        center = stats.process_center(block)
        boot_block = stats.bootstrap_process_medians(block, resamples, rng)
        medians.update(zip(members, center.tolist()))
        boot.update(zip(members, stats.rerun_draws(center, boot_block, count, rng)))
    for key in ragged:
        center = np.array([np.mean([np.median(part) for part in parts[key]])])
        replicates = stats.bootstrap_ragged_process_medians(parts[key], resamples, rng)[None, :]
        medians[key] = float(center[0])
        boot[key] = stats.rerun_draws(center, replicates, len(parts[key]), rng)[0]
    return medians, boot


def is_multiprocess(ids: np.ndarray) -> bool:
    return len(ids) > 1 and bool(np.any(ids != ids[0]))


def host_bound_keys(cells: pd.DataFrame, keys: Sequence[str]) -> set[tuple]:
    if "host_bound" not in cells:
        return set()
    bound = cells[cells["host_bound"].fillna(False).astype(bool)]
    return set(bound[list(keys)].itertuples(index=False, name=None))


def mark_host_bound(speedups: pd.DataFrame, cells: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Column `host_bound` of the speed-up table: the candidate or the baseline cell is host-bound."""
    bound = host_bound_keys(cells, keys)
    out = speedups.copy()
    if out.empty:
        out["host_bound"] = pd.Series(dtype=bool)
        return out
    flags = []
    for row in out[[*keys, "axis", "baseline"]].itertuples(index=False, name=None):
        key = dict(zip(keys, row[: len(keys)]))
        axis, baseline = row[len(keys)], row[len(keys) + 1]
        other = dict(key)
        if axis in key:
            other[axis] = type(key[axis])(baseline) if key[axis] is not None else baseline
        elif axis == "machine_device" and "/" in str(baseline):
            other["machine"], other["device"] = str(baseline).split("/", 1)
        flags.append(tuple(key[k] for k in keys) in bound or tuple(other[k] for k in keys) in bound)
    out["host_bound"] = flags
    return out
