"""Speed-up tables people can read: one row per comparison and cell, one column per batch size.

The tidy table (speedups.parquet/csv) has one row per pair of cells, which makes a Markdown
table of hundreds of lines. Readers scan a study by model and mode and compare batch sizes side
by side, so the Markdown pivots batch sizes into columns and shows only the keys that vary.
"""

from __future__ import annotations

import pandas as pd

from speedatlas.analyze.tables import format_ratio, markdown_table

# Row keys in reading order, with the header each gets.
ROW_KEYS = {
    "machine": "machine",
    "workload": "workload",
    "torch_requested": "torch",
    "device": "device",
    "dtype": "dtype",
    "variant": "variant",
    "model": "model",
    "mode": "mode",
}
ALWAYS_SHOWN = ("model", "mode")
# Keys already named by an axis's comparison label.
COVERED_BY_AXIS = {"machine_device": ("machine", "device")}


def format_speedup(row) -> str:
    """'5.20× [4.90–5.50]', with ' n.s.' when the interval includes 1 and ' †' when a cell of
    the pair is host-bound (issue 14)."""
    text = format_ratio(row.speedup, row.ci_low, row.ci_high)
    text = text if row.significant else text + " n.s."
    return text + " †" if getattr(row, "host_bound", False) is True else text


def pivot(frame: pd.DataFrame, axis: str, varying: set[str] | None = None) -> pd.DataFrame:
    """The readable table of one axis' rows (see module docstring).

    `varying`: keys that take several values in the whole study (e.g. the machine, even where
    only one machine has a device comparison); default: those varying within `frame`.
    """
    covered = COVERED_BY_AXIS.get(axis, (axis,))
    varying = {k for k in ROW_KEYS if frame[k].nunique() > 1} | set(varying or ())
    keys = [k for k in ROW_KEYS if k not in covered and (k in ALWAYS_SHOWN or k in varying)]
    view = frame.assign(_value=[format_speedup(r) for r in frame.itertuples()])
    if axis == "batch_size":
        view["_column"] = "batch " + frame["candidate"].astype(str) + " vs " + frame["baseline"].astype(str)
        order = frame.assign(_column=view["_column"]).sort_values("batch_size")["_column"].drop_duplicates()
        index = keys
    else:
        view["comparison"] = frame["candidate"].astype(str) + " vs " + frame["baseline"].astype(str)
        view["_column"] = "batch " + frame["batch_size"].astype(str)
        order = view.sort_values("batch_size")["_column"].drop_duplicates()
        index = ["comparison", *keys]
    table = view.pivot_table(index=index, columns="_column", values="_value", aggfunc="first", sort=True)
    table = table.reindex(columns=list(order)).reset_index()
    table.columns.name = None
    return table.rename(columns=ROW_KEYS).fillna("")


def axis_markdown(frame: pd.DataFrame, axis: str, varying: set[str] | None = None) -> str:
    table = pivot(frame, axis, varying)
    keys = set(ROW_KEYS.values()) | {"comparison"}
    return markdown_table(table, markup=[c for c in table.columns if c not in keys])


def varying_keys(table: pd.DataFrame) -> set[str]:
    """Row keys that take more than one value in a table."""
    return {k for k in ROW_KEYS if k in table and table[k].nunique() > 1}
