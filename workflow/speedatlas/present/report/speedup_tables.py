"""Speed-up tables people can read (results/tables/speedups.md and the report's "Speed-ups"):
one section per axis, one row per comparison and cell, one column per batch size.

The tidy table (speedups.parquet/csv) has one row per pair of cells, which makes a Markdown
table of hundreds of lines. Readers scan a study by model and mode and compare batch sizes side
by side, so the Markdown pivots batch sizes into columns and shows only the keys that vary.
"""

from __future__ import annotations

import pandas as pd

from speedatlas.analyze import version_axis
from speedatlas.present.formatting import format_speedup, markdown_table
from speedatlas.present.report.rowkeys import ROW_KEYS

ALWAYS_SHOWN = ("model", "mode")
# Keys already named by an axis's comparison label.
COVERED_BY_AXIS = {"machine_device": ("machine", "device")}


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
        parts.append(f"### {title}\n\n" + axis_markdown(frame, axis, varying_keys(speedups)))
    return "\n".join(parts)
