"""What a run shows on the terminal: our progress lines, Snakemake's warnings and errors, the
report's path at the end; Snakemake's own progress (a few lines per job) goes to its log only.

A study of two cells used to print 213 lines over 109 s, counting "3 of 12 steps" (jobs, not
cells) and never saying what a cell measured. Now each finished cell prints one line
(speedatlas.measure.process.progress), the run's last line names the report, and Snakemake's
per-job chatter stays in `.snakemake/log/` (its "Complete log(s)" line says where). This applies
when the terminal is a person's (stderr is a TTY) or when SPEEDATLAS_TERMINAL=quiet asks for it;
SPEEDATLAS_TERMINAL=full keeps everything, and a dry run always shows Snakemake's plan.
Orchestration side: standard library and Snakemake's logger.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence

from speedatlas.measure.process import progress

MODE_ENV = "SPEEDATLAS_TERMINAL"
# Snakemake's INFO lines a person still wants on the terminal.
KEPT = ("Nothing to be done", "Complete log")
_STARTED: list[float] = []


class _PeopleOnly(logging.Filter):
    """Warnings and errors, and the few INFO lines in KEPT."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or str(record.msg).lstrip().startswith(KEPT)


def wanted(dry_run: bool, environ=os.environ, stream=sys.stderr) -> bool:
    mode = environ.get(MODE_ENV, "")
    if dry_run or mode == "full":
        return False
    return mode == "quiet" or bool(getattr(stream, "isatty", lambda: False)())


def quiet_snakemake(dry_run: bool) -> bool:
    """Filter Snakemake's terminal output down to what a person needs (see the module docstring);
    whether it did. Its log file keeps every line."""
    if not wanted(dry_run):
        return False
    from snakemake.logging import logger

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.addFilter(_PeopleOnly())
    return True


def start(cell_paths: Sequence[str]) -> None:
    """At the run's start (onstart): the progress file the cells' jobs count against (the study's
    size was said while the plan was built: plan/study_size.py)."""
    _STARTED.append(time.monotonic())
    progress.write_run(cell_paths)


def finish(study_dir: str) -> None:
    """The run's last line (onsuccess): how long it took and where the report is."""
    took = time.monotonic() - _STARTED[0] if _STARTED else None
    spent = "" if took is None else f" in {took / 60:.1f} min" if took >= 90 else f" in {took:.0f} s"
    print(f"speedatlas: done{spent}; the report is {study_dir}/report.md", file=sys.stderr, flush=True)
