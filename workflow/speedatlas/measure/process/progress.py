"""Progress a person can follow: one line on the terminal per finished cell.

    speedatlas: [3/24 cells, ~2 min left] resnet18 cpu float32 train batch 8: ok, 75.3 ms/step
        [74.1–76.6], 106 images/s (4 processes)
    speedatlas: [4/24 cells, ~2 min left] resnet18 mps float32 train batch 8: unavailable (mps needs
        macOS 12.3+ on Apple Silicon; this is Linux)

Snakemake's own lines (a few per job) go to its log (plan/terminal.py), so these lines are what
the terminal shows. The run writes, at its start, which cells the study has and how many exist
already (`.speedatlas/progress.json`, plan/terminal.py); the job that finishes a cell counts the
cell files there now and estimates the time left from the pace of this run. Standard library only
(a cell's job runs it, in any torch environment).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

from speedatlas.measure.process.notice import notify

RUN_FILE = os.path.join(".speedatlas", "progress.json")


def write_run(cell_paths: Sequence[str], path: str = RUN_FILE) -> None:
    """At the run's start: the study's cells, how many exist, the time."""
    done = sum(os.path.exists(p) for p in cell_paths)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as handle:
        json.dump({"started": time.time(), "done_at_start": done, "cells": list(cell_paths)}, handle)
    os.replace(tmp, path)


def _count(path: str) -> tuple[int, int, float | None]:
    """(cells done, cells in the study, seconds left by this run's pace) — (0, 0, None) when the
    run wrote no progress file (a job run by hand, a cluster node without it)."""
    try:
        with open(path) as handle:
            run = json.load(handle)
    except (OSError, ValueError):
        return 0, 0, None
    cells = run["cells"]
    done = sum(os.path.exists(p) for p in cells)
    made = done - run["done_at_start"]
    left = None
    if made > 0 and done < len(cells):
        left = (time.time() - run["started"]) / made * (len(cells) - done)
    return done, len(cells), left


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def _figure(value: float) -> str:
    """Three significant digits: enough for a progress line (the report has the intervals)."""
    if value <= 0 or not math.isfinite(value):
        return f"{value}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}"


def cell_line(rows: Sequence[dict[str, Any]], interval: tuple[float, float] | None = None) -> str:
    """What a finished cell measured: its key, status, median step time (with the interval where
    it has one), items per second and processes; or the reason it did not run."""
    first = rows[0]
    key = (f"{first['model']} {first['device']} {first['dtype']} {first['mode']} batch {first['batch_size']}"
           + ("" if first.get("variant") in (None, "eager") else f" {first['variant']}"))
    if first["status"] != "ok":
        reason = " ".join(str(first.get("error") or "").split())
        return f"{key}: {first['status']}" + (f" ({reason})" if reason else "")
    medians = [statistics.median(r["step_time_s"] for r in rows if r.get("process", 0) == process)
               for process in sorted({r.get("process", 0) for r in rows})]
    center = math.exp(statistics.fmean(math.log(m) for m in medians))
    text = f"{key}: ok, {_figure(center * 1000)} ms/step"
    if interval is not None:
        text += f" [{_figure(interval[0] * 1000)}–{_figure(interval[1] * 1000)}]"
    items = "sequences" if first.get("input_kind") == "tokens" else "images"
    text += f", {_figure(first['batch_size'] / center)} {items}/s"
    return text + (f" ({len(medians)} processes)" if len(medians) > 1 else "")


def report_cell(rows: Sequence[dict[str, Any]], interval: tuple[float, float] | None = None,
                path: str = RUN_FILE) -> None:
    """Say on the terminal that a cell is done (called once its file is written)."""
    done, total, left = _count(path)
    where = f"[{done}/{total} cells" + (f", {_duration(left)} left" if left is not None else "") + "] " if total else ""
    notify(f"speedatlas: {where}{cell_line(rows, interval)}")
