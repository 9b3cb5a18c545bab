"""The report section "Cells that did not run": the failed cells grouped by device, status and
reason, each distinct reason shown whole (a reason cut mid-word, "an arm64 (not x…", hides the
one thing the reader needs: what to do about it).

A table gives the overview, one row per group with a reason number; the reasons follow in full as
a numbered list, so long reasons never make the table unreadable. The summary names the first
group (findings.py), in this same order. Error texts can come from another machine's bundle:
they are escaped as text.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from speedatlas.present.formatting import escape_markdown, markdown_table

GROUP_COLUMNS = ["machine", "device", "status", "reason", "cells", "models", "modes", "batches", "dtypes", "torch"]


def reason(text: Any) -> str:
    """The whole error text on one line (a newline would end a table row or a list item)."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return ""
    return " ".join(str(text).split())


def failure_groups(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per machine, device, status and reason of the cells that did not run, with the
    cells' count and keys, sorted by machine, device, status and reason."""
    failed = cells[cells["status"] != "ok"] if len(cells) else cells
    if failed.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    failed = failed.assign(reason=failed["error"].map(reason) if "error" in failed else "")
    rows = []
    for (machine, device, status, why), group in failed.groupby(["machine", "device", "status", "reason"],
                                                              sort=True, dropna=False):
        rows.append({
            "machine": machine, "device": device, "status": status, "reason": why, "cells": len(group),
            "models": ", ".join(sorted(group["model"].unique())),
            "modes": ", ".join(sorted(group["mode"].unique())),
            "batches": ", ".join(map(str, sorted(group["batch_size"].unique()))),
            "dtypes": ", ".join(sorted(group["dtype"].unique())),
            "torch": ", ".join(sorted(group["torch_requested"].unique())),
        })
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def section(cells: pd.DataFrame) -> str:
    """The section's body: the groups as a table, then each distinct reason in full, numbered."""
    groups = failure_groups(cells)
    if groups.empty:
        return "Every cell ran.\n"
    reasons = list(dict.fromkeys(groups["reason"]))
    view = groups.assign(reason=[str(reasons.index(r) + 1) for r in groups["reason"]])
    order = (["machine"] if cells["machine"].nunique() > 1 else []) + [
        "device", "status", "cells", "models", "modes", "batches", "dtypes", "torch", "reason"]
    listed = "\n".join(f"{i}. {escape_markdown(r) if r else '_no reason recorded_'}" for i, r in enumerate(reasons, 1))
    return markdown_table(view[order]) + "\nReasons, in full:\n\n" + listed + "\n"
