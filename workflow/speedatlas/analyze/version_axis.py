"""The torch-version axis in tables and the report: what was asked for next to what ran.

A cell's torch is configured as a release prefix ("2.0", or "current"), and the environment
decides the actual version ("2.0.1+cu117"). Comparisons are made on the requested value (the key
of the cell), and every table and sentence shows the actual version beside it, so a reader sees
exactly which builds were compared. Orchestration side: pandas, pure functions.
"""

from __future__ import annotations


import pandas as pd
from packaging.version import InvalidVersion, Version

from speedatlas import cellkey

AXIS = "torch_requested"
VERSION_COLUMNS = ("baseline_torch_version", "candidate_torch_version")


def version_key(version: object) -> tuple:
    """Sort key of a version string, by PEP 440 (packaging): 2.6.0.dev… < 2.6.0rc1 < 2.6.0 <
    2.6.0+cu128 < 2.10.0; strings that are no version after those, missing versions last."""
    if not isinstance(version, str) or not version:
        return (2, "")
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def label(requested: str, actual: object) -> str:
    """'2.0.1+cu117 (2.0)': the actual version, with the requested one when it differs."""
    if not isinstance(actual, str) or not actual:
        return f"{requested} (not built)"
    return actual if actual == requested else f"{actual} ({requested})"


def add_actual_versions(speedups: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Add the actual torch version of each comparison's baseline and candidate cell.

    For a torch comparison they differ; along every other axis both cells share one environment.
    """
    out = speedups.copy()
    if out.empty or cells.empty:
        for column in VERSION_COLUMNS:
            out[column] = pd.Series(dtype="object")
        return out
    keys = list(cellkey.KEY_COLUMNS)
    actual = cells.set_index(keys)["torch_version"]
    actual = actual[~actual.index.duplicated()]

    def lookup(frame: pd.DataFrame) -> list[object]:
        index = pd.MultiIndex.from_frame(frame[keys])
        return actual.reindex(index).tolist()

    out["candidate_torch_version"] = lookup(out)
    baseline_keys = out[keys].copy()
    is_torch = out["axis"] == AXIS
    baseline_keys.loc[is_torch, AXIS] = out.loc[is_torch, "baseline"]
    out["baseline_torch_version"] = lookup(baseline_keys)
    out.loc[~is_torch, "baseline_torch_version"] = out.loc[~is_torch, "candidate_torch_version"]
    return out


def comparison_labels(frame: pd.DataFrame) -> pd.Series:
    """'2.0.1+cu117 (2.0) vs 2.15.0+cu132 (current)' for each torch comparison."""
    return pd.Series(
        [
            f"{label(r.candidate, getattr(r, 'candidate_torch_version', None))} vs "
            f"{label(r.baseline, getattr(r, 'baseline_torch_version', None))}"
            for r in frame.itertuples()
        ],
        index=frame.index,
    )


def versions_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per actual torch build (several requested prefixes may resolve to one build)."""
    columns = ["torch", "requested", "torchvision", "build", "Python", "cells ok", "cells not ok", "why not"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    # A cell that crashed before recording its versions ran in its version's environment all
    # the same: take the actual version from the other cells of that version.
    known = cells.dropna(subset=["torch_version"]).groupby(["machine", AXIS])["torch_version"].first()
    actual = [
        version if isinstance(version, str) else known.get((machine, requested))
        for machine, requested, version in zip(cells["machine"], cells[AXIS], cells["torch_version"])
    ]
    frame = cells.assign(_actual=actual, _ok=cells["status"] == "ok")
    rows = []
    for actual, group in frame.groupby(frame["_actual"].fillna(""), sort=False):
        requested = sorted(group[AXIS].unique(), key=lambda v: (v != "current", version_key(v)))
        failed = group[~group["_ok"]]
        reasons = sorted(failed["error"].dropna().unique()) if not actual else []
        rows.append(
            {
                "torch": actual or "—",
                "requested": ", ".join(requested),
                "torchvision": ", ".join(sorted(group["torchvision_version"].dropna().unique())),
                "build": ", ".join(sorted(group["torch_build"].dropna().unique())),
                "Python": ", ".join(sorted(group["python"].dropna().unique())),
                "cells ok": int(group["_ok"].sum()),
                "cells not ok": int((~group["_ok"]).sum()),
                "why not": "; ".join(reasons),
                "_key": version_key(actual),
            }
        )
    table = pd.DataFrame(rows).sort_values("_key", kind="stable").drop(columns="_key")
    return table[columns].reset_index(drop=True)
