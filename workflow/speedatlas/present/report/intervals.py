"""The report's sentences on where the intervals come from (several processes, chosen by the
precision rule or fixed, or one), which cells fell short of the precision asked for, and which
accelerator cells are host-bound (issues 14, 23). Read from the cells."""

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
        f"{share} ok cells were measured in a single process (timing.processes: 1): their intervals "
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


def short_of_precision(cells: pd.DataFrame) -> pd.DataFrame:
    """The ok cells that fell short of their precision target, the widest first (the summary and
    the note below name the same cells)."""
    if "precision_met" not in cells:
        return cells.iloc[0:0]
    short = cells[(cells["status"] == "ok") & cells["precision_met"].eq(False)]
    return short.sort_values("precision", ascending=False)


def precision_note(cells: pd.DataFrame) -> str | None:
    """How the precision rule sized the cells, and every cell it could not bring to the target
    (with the precision it did reach and what stopped it)."""
    ok = cells[cells["status"] == "ok"] if "status" in cells else cells
    if "precision_target" not in ok:
        return None
    ruled = ok[ok["precision_target"].notna()]
    if ruled.empty:
        return None
    targets = ", ".join(f"±{t:.0%}" for t in sorted(ruled["precision_target"].unique()))
    counts = ruled["processes"].astype(int)
    text = (
        f"{len(ruled)} of {len(ok)} ok cells took the precision rule (target {targets}): a pilot of "
        f"{int(ruled['pilot_processes'].max())} fresh processes measured how much a cell's processes spread, then "
        f"the cell got as many processes as that spread needs (Stein's two-stage rule; here {counts.min()} to "
        f"{counts.max()}, median {counts.median():g}), run in rounds across the study. Its interval uses the "
        "pilot's spread, which keeps its coverage exact although the number of processes was chosen from it."
    )
    short = short_of_precision(ruled)
    if len(short):
        why = short["precision_limited_by"].fillna("budget").value_counts()
        reasons = ", ".join(f"{n} by {reason}" for reason, n in why.items())
        worst = short.iloc[0]
        wanted = short["wanted_processes"].dropna() if "wanted_processes" in short else short.iloc[0:0]["precision"]
        text += (
            f" {len(short)} of them fell short of the target ({reasons}); they report the precision they did reach "
            f"(column precision in 'All cells'; the widest: {worst['model']} {worst['device']} {worst['mode']} batch "
            f"{worst['batch_size']}, ±{worst['precision']:.0%})."
        )
        if len(wanted) and wanted.median() > 3 * counts.max():
            text += (f" Their pilots say they would need {int(wanted.min()):,} to {int(wanted.max()):,} processes "
                     "(median {:,}): their fresh processes disagree too much for any practical budget, which is "
                     "typical of host-bound cells (†). Read their figures as rough: a quieter machine or a larger "
                     "batch narrows them, more processes would not in practice.".format(int(wanted.median())))
        else:
            text += " Raise timing.max_processes or timing.max_seconds, or quiet the machine, to narrow them."
    else:
        text += " Every one of them reached it."
    return text


def interval_notes(cells: pd.DataFrame, study: dict[str, Any]) -> list[str]:
    """Where the intervals come from (several processes or one), which cells fell short of the
    precision asked for, and which cells are host-bound. Read from the cells."""
    notes = []
    ok = cells[cells["status"] == "ok"] if "status" in cells else cells
    several = ok[ok["processes"] > 1] if "processes" in ok else ok.iloc[0:0]
    fixed = several[several["precision_target"].isna()] if "precision_target" in several else several
    if len(fixed):
        counts = sorted(int(p) for p in fixed["processes"].unique())
        share = "Each cell" if len(fixed) == len(ok) else f"{len(fixed)} of {len(ok)} ok cells"
        notes.append(
            f"{share} ran in a fixed {' or '.join(map(str, counts))} fresh processes (timing.processes), each building "
            "the model, warming up and timing its own blocks; a cell's value is the geometric mean of its "
            "processes' medians, and its interval says where a rerun of the cell should land (Student's t on the "
            "spread between its processes)."
        )
    notes.extend(n for n in (precision_note(cells), single_process_note(cells),
                             host_bound_note(cells, study.get("host_bound_share", 0.9))) if n)
    return notes
