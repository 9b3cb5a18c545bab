"""Energy tables: items per joule per cell with an interval, and an energy ratio beside each
speed-up.

Orchestration side (pandas, numpy). The runner reads the energy counter per *window* (consecutive
timed blocks grouped until they last energy.min_window_s, see speedatlas.measure.hardware.energy), not per block,
because one block is often shorter than the counter's update period. So the samples here are the
windows of a cell (each row of a window carries the same energy_j): the interval of items per
joule is a percentile bootstrap of the median joules per item over the windows, and a cell with
a single window has an estimate without an interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from speedatlas import cellkey
from speedatlas.analyze import stats
from speedatlas.analyze.tables import items_per_step

# What the aggregation reads besides tables.AGGREGATE_COLUMNS.
ENERGY_COLUMNS = (
    "energy_source",
    "energy_scope",
    "energy_note",
    "energy_j",
    "energy_window",
    "energy_window_s",
    "energy_window_steps",
    "avg_power_w",
    "idle_power_w",
    "energy_window_short",
    "power_limit_w",
    "sm_clock_start_mhz",
    "sm_clock_end_mhz",
)
CELL_ENERGY_COLUMNS = [
    "energy_source", "energy_scope", "energy_note", "energy_windows", "energy_j_per_item", "items_per_j",
    "items_per_j_low", "items_per_j_high", "avg_power_w", "idle_power_w", "items_per_j_above_idle",
    "energy_window_short", "power_limit_w", "sm_clock_start_mhz", "sm_clock_end_mhz",
]
RATIO_COLUMNS = ["energy_ratio", "energy_ratio_low", "energy_ratio_high", "baseline_items_per_j",
                 "candidate_items_per_j", "energy_sources"]


def _with_energy_columns(raw: pd.DataFrame) -> pd.DataFrame:
    """Tables built from cell files older than the energy columns: all null."""
    missing = [c for c in ENERGY_COLUMNS if c not in raw]
    return raw.assign(**{c: pd.Series(np.nan, index=raw.index, dtype="object") for c in missing}) if missing else raw


def windows(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per energy window of every ok cell: joules per item, and above idle."""
    raw = _with_energy_columns(raw)
    ok = raw[(raw["status"] == "ok") & raw["energy_j"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=[*cellkey.KEY_COLUMNS, "energy_window", "j_per_item", "j_above_idle_per_item",
                                     "avg_power_w"])
    ok = ok.drop_duplicates([*cellkey.KEY_COLUMNS, "energy_window"])
    items = items_per_step(ok)
    per_item = ok["energy_j"].astype(float) / items
    idle_j_per_step = ok["idle_power_w"].astype(float) * ok["energy_window_s"].astype(float) / ok[
        "energy_window_steps"].astype(float)
    above = (ok["energy_j"].astype(float) - idle_j_per_step) / items
    return ok[[*cellkey.KEY_COLUMNS, "energy_window", "avg_power_w"]].assign(
        j_per_item=per_item.to_numpy(), j_above_idle_per_item=above.to_numpy()).reset_index(drop=True)


class EnergySamples:
    """Joules per item of each cell's windows, and their bootstrap medians (once per study)."""

    def __init__(self, raw: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> None:
        frame = windows(raw)
        self.values: dict[tuple, np.ndarray] = {
            key: group["j_per_item"].to_numpy(dtype=float)
            for key, group in frame.groupby(list(cellkey.KEY_COLUMNS), sort=True)
        }
        self.by_text = {tuple(str(v) for v in key): key for key in self.values}
        self.boot: dict[tuple, np.ndarray] = {}
        rng = np.random.default_rng(seed)
        by_size: dict[int, list[tuple]] = {}
        for key, values in self.values.items():
            if len(values) > 1 and np.all(values > 0):
                by_size.setdefault(len(values), []).append(key)
        for _size, members in sorted(by_size.items()):
            block = np.stack([self.values[k] for k in members])
            self.boot.update(zip(members, stats.bootstrap_medians(block, resamples, rng)))
        self.frame = frame


def energy_cells(raw: pd.DataFrame, confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
                 samples: EnergySamples | None = None) -> pd.DataFrame:
    """Per cell: source, scope, note, windows, items per joule [interval], power, idle power."""
    raw = _with_energy_columns(raw)
    keys = list(cellkey.KEY_COLUMNS)
    first = raw[raw["status"] == "ok"].drop_duplicates(keys)
    if first.empty:
        return pd.DataFrame(columns=[*keys, *CELL_ENERGY_COLUMNS])
    samples = samples if samples is not None else EnergySamples(raw, resamples, seed)
    medians = (samples.frame.astype({"avg_power_w": float, "j_above_idle_per_item": float})
               .groupby(keys)[["avg_power_w", "j_above_idle_per_item"]].median())
    per_cell = dict(zip(medians.index, medians.itertuples(index=False, name=None)))
    tail = (1 - confidence) / 2 * 100
    rows = []
    for record in first[[*keys, "energy_source", "energy_scope", "energy_note", "idle_power_w",
                         "energy_window_short", "power_limit_w", "sm_clock_start_mhz",
                         "sm_clock_end_mhz"]].itertuples(index=False):
        key = tuple(record[: len(keys)])
        row = dict(zip(keys, key))
        row.update(record._asdict())
        values = samples.values.get(key)
        if values is None or not len(values):
            row.update(energy_windows=0)
            rows.append(row)
            continue
        power, above = per_cell[key]
        median = float(np.median(values))
        row.update(
            energy_windows=len(values),
            energy_j_per_item=median,
            items_per_j=1 / median if median > 0 else np.nan,
            avg_power_w=power,
            items_per_j_above_idle=1 / above if above > 0 else np.nan,
        )
        if key in samples.boot:
            low, high = np.percentile(samples.boot[key], [tail, 100 - tail])
            row.update(items_per_j_low=1 / high, items_per_j_high=1 / low)
        rows.append(row)
    out = pd.DataFrame(rows)
    for column in CELL_ENERGY_COLUMNS:
        if column not in out:
            out[column] = np.nan
    return out[[*keys, *CELL_ENERGY_COLUMNS]]


def add_energy(cells: pd.DataFrame, raw: pd.DataFrame, confidence: float = 0.95, resamples: int = 2000,
               seed: int = 0, samples: EnergySamples | None = None) -> pd.DataFrame:
    """The per-cell table with the energy columns added (null where a cell has no energy)."""
    energy = energy_cells(raw, confidence, resamples, seed, samples)
    merged = cells.drop(columns=[c for c in CELL_ENERGY_COLUMNS if c in cells]).merge(
        energy, on=list(cellkey.KEY_COLUMNS), how="left")
    return merged


def add_energy_ratios(speedups: pd.DataFrame, raw: pd.DataFrame, confidence: float = 0.95,
                      resamples: int = 2000, seed: int = 0, samples: EnergySamples | None = None) -> pd.DataFrame:
    """Beside each speed-up: energy ratio = joules per item of the baseline / of the candidate
    (above 1: the candidate uses that many times less energy per item), with a bootstrap
    interval when both cells have two windows or more. Comparisons along the machine axis, and
    cells without energy, get nulls."""
    out = speedups.copy()
    for column in RATIO_COLUMNS:
        out[column] = pd.Series(np.nan, index=out.index, dtype="object" if column == "energy_sources" else "float64")
    if out.empty:
        return out
    samples = samples if samples is not None else EnergySamples(raw, resamples, seed)
    if not samples.values:
        return out
    sources = _with_energy_columns(raw).drop_duplicates(list(cellkey.KEY_COLUMNS)).set_index(list(cellkey.KEY_COLUMNS))["energy_source"]
    tail = (1 - confidence) / 2 * 100
    for index, row in out.iterrows():
        if row["axis"] not in cellkey.KEY_COLUMNS:
            continue
        candidate = tuple(str(row[k]) for k in cellkey.KEY_COLUMNS)
        position = cellkey.KEY_COLUMNS.index(row["axis"])
        baseline = candidate[:position] + (str(row["baseline"]),) + candidate[position + 1 :]
        cand, base = samples.by_text.get(candidate), samples.by_text.get(baseline)
        if cand is None or base is None:
            continue
        jb, jc = float(np.median(samples.values[base])), float(np.median(samples.values[cand]))
        out.at[index, "energy_ratio"] = jb / jc
        out.at[index, "baseline_items_per_j"] = 1 / jb
        out.at[index, "candidate_items_per_j"] = 1 / jc
        out.at[index, "energy_sources"] = f"{sources.get(base)} / {sources.get(cand)}"
        if base in samples.boot and cand in samples.boot:
            low, high = np.percentile(samples.boot[base] / samples.boot[cand], [tail, 100 - tail])
            out.at[index, "energy_ratio_low"], out.at[index, "energy_ratio_high"] = low, high
    return out
