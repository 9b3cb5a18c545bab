"""Cell files that read as valid Parquet but cannot be the cell their path names (issue 27, item 7).

A file copied over another cell's path, an unknown `status`, rows doubled by a concatenation,
negative or missing times on `ok` rows, or a file measured for another spec than the one its path
stands for now: each would reach the tables without a word (one cell with twice its samples,
another gone, "bogus" in the report). So every cell file of the study is checked, as read for
the aggregation, against

- its path: every row's key columns must be the key its folders name (speedatlas.cellkey);
- its spec: the `spec_sha256` its rows record (written from the spec its job received) must be
  the hash of the spec the plan gives that path now; files written before the column existed
  have none and skip this check;
- its statuses: each one of speedatlas.measure.cellio.STATUSES, one per file;
- its values: no (process, repeat) twice among its ok rows, and every ok row's step time finite
  and positive.

Vectorised over all rows at once (one pass per check, no loop over files), so ten thousand cells
cost a fraction of a second on top of reading them. The aggregation sets the files that fail aside
(speedatlas.plan.quarantine) and the next run measures them again.

Orchestration side (pandas, numpy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from speedatlas import cellkey
from speedatlas.analyze.tables import FILE_COLUMN
from speedatlas.measure import cellio

# What the checks read besides the key columns (speedatlas.analyze.tables.AGGREGATE_COLUMNS has the rest).
COLUMNS = ("status", "step_time_s", "repeat", "process", "spec_sha256")


def problems(raw: pd.DataFrame, paths: Sequence[str], spec_sha256: Mapping[str, str] | None = None
             ) -> list[tuple[str, str]]:
    """(path, why) for each file among `paths` whose rows fail a check, first failure only.

    `raw`: the rows, with `_file` = the index of each row's file in `paths` (as
    tables.read_cell_files returns them). `spec_sha256`: {path: hash of the spec the plan gives
    it}; paths missing there skip the spec check.
    """
    if raw.empty:
        return []
    files = raw[FILE_COLUMN].to_numpy()
    found: dict[int, str] = {}

    def flag(mask: np.ndarray, why: Callable[[pd.Series], str]) -> None:
        rows = raw[mask & ~np.isin(files, list(found))]
        for _, row in rows.drop_duplicates(FILE_COLUMN).iterrows():
            found[int(row[FILE_COLUMN])] = why(row)

    _check_keys(raw, paths, files, flag)
    if spec_sha256:
        _check_specs(raw, paths, files, spec_sha256, flag)
    status = raw["status"]
    known = status.isin(cellio.STATUSES).to_numpy()
    flag(~known, lambda row: f"unknown status {row['status']!r} (a cell's status is one of {', '.join(cellio.STATUSES)})")
    several = raw.groupby(FILE_COLUMN, sort=False)["status"].transform("nunique").to_numpy() > 1
    flag(several, lambda row: f"rows with {_statuses(raw, files, row)}: one cell has one status")
    ok = (status == "ok").to_numpy()
    process = raw["process"].fillna(0).to_numpy() if "process" in raw else np.zeros(len(raw))
    repeat = raw["repeat"] if "repeat" in raw else pd.Series(np.arange(len(raw)), index=raw.index)
    doubled = ok & pd.DataFrame({"f": files, "p": process, "r": repeat.to_numpy()}).duplicated(keep=False).to_numpy()
    flag(doubled, lambda row: f"repeat {_text(row.get('repeat')) or '?'} of process {_text(row.get('process')) or 0} "
                              "appears more than once: its rows are doubled (a file appended to itself?)")
    times = raw["step_time_s"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        impossible = ok & ~(np.isfinite(times) & (times > 0))
    flag(impossible, lambda row: f"an ok row has step_time_s = {row['step_time_s']}: a time is finite and positive")
    return [(paths[index], why) for index, why in sorted(found.items())]


def _check_keys(raw: pd.DataFrame, paths: Sequence[str], files: np.ndarray, flag) -> None:
    """Every row's key columns against the key the file's folders name."""
    keys = [cellkey.path_key(path) for path in paths]
    unnamed = np.array([key is None for key in keys])[files]
    flag(unnamed, lambda row: "its folders do not name a cell key (machine=…/…/batch=…)")
    for name in cellkey.KEYS:
        column = cellkey.COLUMNS[name]
        named = pd.Series([key[name] if key else None for key in keys], dtype=object)
        values = raw[column]
        if pd.api.types.is_numeric_dtype(values):  # batch_size: compare numbers, not 8 with "8"
            named = pd.to_numeric(named, errors="coerce")
        wanted = named.to_numpy()[files]
        wrong = ~unnamed & ~(values.to_numpy() == wanted)
        flag(wrong, lambda row, name=name, column=column: (
            f"its folder says {name}={cellkey.path_key(paths[int(row[FILE_COLUMN])])[name]} but its rows say "
            f"{column}={_text(row[column])}: a file copied or moved from another cell's place"))


def _check_specs(raw, paths, files, spec_sha256, flag) -> None:
    """The spec hash the rows record against the one the plan gives the path (where both exist)."""
    if "spec_sha256" not in raw:
        return
    wanted = np.array([spec_sha256.get(path) for path in paths], dtype=object)[files]
    recorded = raw["spec_sha256"].to_numpy(dtype=object)
    known = pd.notna(recorded) & pd.notna(wanted)
    wrong = known & (recorded != wanted)
    flag(wrong, lambda row: (
        f"it was measured for another spec (spec_sha256 {str(row['spec_sha256'])[:12]}…, this cell's spec now "
        f"{spec_sha256[paths[int(row[FILE_COLUMN])]][:12]}…): a file from another study or an older config"))


def _text(value) -> str:
    """A key value as its folder spells it (batch 8, not 8.0)."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _statuses(raw: pd.DataFrame, files: np.ndarray, row: pd.Series) -> str:
    values = sorted(map(str, raw.loc[files == row[FILE_COLUMN], "status"].unique()))
    return "statuses " + " and ".join(values)
