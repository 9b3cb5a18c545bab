"""Cells timed side by side (concurrency: device): counted from the recorded timed regions, flagged
in the report."""

from __future__ import annotations

import pandas as pd

from speedatlas.analyze.neighbours import neighbours_busy
from speedatlas.present.report.sections import timed_beside_others


def cells(spans, machine="m"):
    t0 = pd.Timestamp("2026-11-24T12:00:00Z")
    return pd.DataFrame({
        "machine": machine, "status": "ok", "device": "cuda", "model": "resnet18", "dtype": "float32",
        "mode": "infer", "batch_size": 8, "gpu_index": list(range(len(spans))),
        "started_at": [t0 + pd.Timedelta(seconds=s) if s is not None else pd.NaT for s, _ in spans],
        "finished_at": [t0 + pd.Timedelta(seconds=e) if e is not None else pd.NaT for _, e in spans],
    })


def test_overlaps_are_counted_per_machine():
    # a: 0-10 overlaps b (5-15) and c (9-20); b overlaps a and c; c overlaps a, b; d (20-30) touches c only at 20
    frame = cells([(0, 10), (5, 15), (9, 20), (20, 30), (None, None)])
    assert neighbours_busy(frame).tolist() == [2, 2, 2, 0, pd.NA]
    two = pd.concat([cells([(0, 10)], "x"), cells([(5, 15)], "y")], ignore_index=True)
    assert neighbours_busy(two).tolist() == [0, 0]  # different machines never disturb each other


def test_one_at_a_time_is_never_flagged():
    frame = cells([(0, 1), (1, 2), (2, 3)])
    frame["neighbours_busy"] = neighbours_busy(frame)
    assert (frame["neighbours_busy"] == 0).all() and timed_beside_others(frame) == ""


def test_report_flags_cells_with_busy_neighbours():
    frame = cells([(0, 10), (5, 15), (20, 30)])
    frame["neighbours_busy"] = neighbours_busy(frame)
    text = timed_beside_others(frame)
    assert text.startswith("## Cells timed beside others") and "2 of 3 cells" in text and "interference.py" in text
    assert text.count("| resnet18 |") == 2


def test_processes_run_in_rounds_are_not_neighbours():
    """A cell's processes run in rounds across the study (issue 23): the span from its first
    process to its last covers the other cells' processes, yet no two processes ran at once. The
    cells table counts neighbours per process, so a study timed one job at a time flags nothing
    (it flagged every cell of the default study before)."""
    import fakesets

    from speedatlas.analyze import tables

    t0 = pd.Timestamp("2026-11-24T12:00:00Z")
    rows = []
    for start, (model, process) in enumerate([("a", 0), ("b", 0), ("a", 1), ("b", 1)]):
        for row in fakesets.cell_rows("m", "cpu", model, "infer", 1, 0.01, "Fake CPU", repeats=2):
            rows.append({**row, "process": process, "started_at": t0 + pd.Timedelta(seconds=10 * start),
                         "finished_at": t0 + pd.Timedelta(seconds=10 * start + 5)})
    raw = pd.DataFrame(rows)
    raw = raw.assign(**{c: None for c in tables.CELL_INFO if c not in raw})
    assert tables.summarize_cells(raw)["neighbours_busy"].tolist() == [0, 0]
    overlapping = raw.assign(finished_at=raw["finished_at"] + pd.Timedelta(seconds=8))  # each runs into the next
    assert tables.summarize_cells(overlapping)["neighbours_busy"].tolist() == [2, 2]
