"""The report's sentences on where the intervals come from: several processes or one, and which
accelerator cells are host-bound (issue 14). Read from the cells: the default differs by device."""

from __future__ import annotations

from typing import Any

import pandas as pd


def single_process_note(cells: pd.DataFrame) -> str | None:
    """One sentence for the report when intervals come from a single process."""
    ok = cells[cells["status"] == "ok"] if "status" in cells else cells
    if ok.empty or "processes" not in ok:
        return None
    single = int((ok["processes"] <= 1).sum())
    if single == 0:
        return None
    share = "All" if single == len(ok) else f"{single} of {len(ok)}"
    return (
        f"{share} ok cells were measured in a single process (timing.processes = 1): their intervals "
        "show the spread of that process's samples only, not the variation between fresh processes, "
        "so a rerun can land outside them (most often for host-bound cells)."
    )


def host_bound_note(cells: pd.DataFrame, host_bound_share: float) -> str | None:
    """The report's one sentence on host-bound cells (None when there are none)."""
    if "host_bound" not in cells:
        return None
    bound = cells[cells["host_bound"].fillna(False).astype(bool)]
    if bound.empty:
        return None
    measured = int(cells["host_share"].notna().sum())
    return (
        f"{len(bound)} of {measured} accelerator cells are host-bound (marked † in the speed-up tables): "
        f"the Python host needed at least {host_bound_share:.0%} of the synchronised step time just to issue "
        "the step's kernels, so these cells measure the CPU's kernel-launch speed more than the accelerator, "
        "and they move more between processes and machines."
    )


def interval_notes(cells: pd.DataFrame, study: dict[str, Any]) -> list[str]:
    """Where the intervals come from several processes or from one, and which cells are
    host-bound (issue 14). Read from the cells: the default differs by device."""
    notes = []
    ok = cells[cells["status"] == "ok"] if "status" in cells else cells
    several = ok[ok["processes"] > 1] if "processes" in ok else ok.iloc[0:0]
    if len(several):
        counts = sorted(int(p) for p in several["processes"].unique())
        share = "Each cell" if len(several) == len(ok) else f"{len(several)} of {len(ok)} ok cells"
        notes.append(
            f"{share} ran in {' or '.join(map(str, counts))} fresh processes, each building the model, warming up "
            "and timing its own blocks; a cell's value is the mean of its per-process medians, and its interval "
            "says where a rerun of the cell should land: a two-level bootstrap (processes, then samples within "
            "each), widened for the rerun's own noise and for the few processes it resamples."
        )
    notes.extend(n for n in (single_process_note(cells), host_bound_note(cells, study.get("host_bound_share", 0.9))) if n)
    return notes
