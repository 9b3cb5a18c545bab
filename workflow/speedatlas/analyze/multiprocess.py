"""Cells measured in several processes, and the host share of accelerator cells (issues 14, 23).

Orchestration side (pandas, numpy). A cell of P fresh processes (column `process`; P chosen by
the precision rule from a pilot, or fixed by `timing.processes`) has as its estimate the
geometric mean of its processes' medians, and as its interval where a rerun should land
(stats.rerun_draws: the pilot's spread, Student's t). A cell of one process (every cell written
before the column existed) keeps the plain median and the exact single-level bootstrap.
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
    multi-process cell becomes the geometric mean of its per-process medians (what its interval
    is of: stats.rerun_draws).

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
    center = pd.DataFrame({"processes": grouped.size(),
                           "_center": np.exp(np.log(per_process).groupby(level=list(range(len(keys))), sort=False).mean())}
                          ).reset_index()
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


def multiprocess_draws(
    values: dict[tuple, np.ndarray],
    processes: dict[tuple, np.ndarray],
    pilots: dict[tuple, int],
    resamples: int,
    rng: np.random.Generator,
) -> tuple[dict[tuple, float], dict[tuple, np.ndarray], dict[tuple, tuple[float, int]]]:
    """Estimates, rerun draws and (log-scale scale, degrees of freedom) of the cells measured in
    more than one process (stats.rerun_draws).

    `values` are a cell's per-item times, `processes` their process ids, `pilots` the precision
    rule's pilot of each cell that had one (else every process counts). Cells of the same
    number of processes and pilot are drawn together.
    """
    medians: dict[tuple, float] = {}
    draws: dict[tuple, np.ndarray] = {}
    spreads: dict[tuple, tuple[float, int]] = {}
    groups: dict[tuple[int, int], list[tuple[tuple, np.ndarray]]] = {}
    for key, sample in values.items():
        ids = processes[key]
        order = np.argsort(ids, kind="stable")
        cuts = np.flatnonzero(np.diff(ids[order])) + 1
        logs = np.log([np.median(part) for part in np.split(sample[order], cuts)])
        pilot = pilots.get(key) or len(logs)
        pilot = min(max(pilot, 2), len(logs))
        groups.setdefault((len(logs), pilot), []).append((key, logs))
        spreads[key] = (float(np.std(logs[:pilot], ddof=1) * np.sqrt(2.0 / len(logs))), pilot - 1)
    for (_count, pilot), members in sorted(groups.items()):
        center, block = stats.rerun_draws(np.stack([logs for _, logs in members]), pilot, resamples, rng)
        medians.update(zip([key for key, _ in members], center.tolist()))
        draws.update(zip([key for key, _ in members], block))
    return medians, draws, spreads


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
