"""Unreadable cell files are set aside, never deleted, and measured again.

A cell file cut short (a full disk, a copy interrupted, a crash of the filesystem) used to stop
the aggregation with "Parquet magic bytes not found in footer", naming no file; the next run
failed the same way, because the file existed and Snakemake saw nothing to redo. Now every run
checks, before it builds its plan, that each existing cell file ends in a Parquet footer (the
last 8 bytes: the footer's length and `PAR1`; a few microseconds per file, about 0.3 s for
10,000 cells). A file that does not is moved to `results/quarantine/<time>/<its path>` with a
note saying why, so the same run measures that cell again. The tables, plots and report are
removed with it: they described a measurement that is gone, and the run rebuilds them.

A file whose footer is intact but whose content is damaged, or that reads well but cannot be the
cell its path names (another cell's copy, an unknown status, doubled rows, impossible times,
another spec: speedatlas.analyze.cellcheck), is caught by the aggregation (`BadCells`, naming
each file), which sets it aside the same way and fails once; the next run measures it again.

Orchestration side: standard library only.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

MAGIC = b"PAR1"
QUARANTINE = Path("results") / "quarantine"
# Everything computed from the cells: removed when a cell is set aside, rebuilt by the run.
STUDIES = Path("results") / "studies"
# What every study of this results/ folder computed from the cells (a cell is shared by studies).
DERIVED_IN_A_STUDY = ("tables", "plots", "report.md", "report.html")


def derived() -> list[Path]:
    """Every study's tables, plots and reports (results/studies/<study>/...)."""
    return [study / name for study in sorted(STUDIES.glob("*")) for name in DERIVED_IN_A_STUDY]


class BadCells(ValueError):
    """Cell files this study cannot use as they are: one line per file, `path: why`, then what to do."""

    def __init__(self, found: list[tuple[str, str]], then: str = ""):
        super().__init__("\n".join([f"{path}: {why}" for path, why in found] + ([then] if then else [])))
        self.found = found


class UnreadableCell(ValueError):
    """A cell file that cannot be read; the message names it and says why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: unreadable cell file ({reason})")
        self.path = path
        self.reason = reason


def footer_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` is not a complete Parquet file, from its first 4 and last 8 bytes; None if it
    looks complete. Raises FileNotFoundError for a missing file."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < 12:
            return f"{size} bytes, too short for a Parquet file"
        head = handle.read(4)
        handle.seek(size - 8)
        tail = handle.read(8)
    if head != MAGIC or tail[4:] != MAGIC:
        return "no Parquet magic bytes at its start or end: the file is cut short or overwritten"
    if int.from_bytes(tail[:4], "little") + 12 > size:
        return "its footer is longer than the file: the file is cut short"
    return None


def unreadable(paths: Iterable[str]) -> list[tuple[str, str]]:
    """(path, reason) for each existing file among `paths` that is not a complete Parquet file."""
    found = []
    for path in paths:
        try:
            problem = footer_problem(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            problem = f"cannot be read: {error.strerror or error}"
        if problem is not None:
            found.append((path, problem))
    return found


def set_aside(path: str, reason: str, quarantine: Path = QUARANTINE, now: dt.datetime | None = None) -> Path:
    """Move `path` under `quarantine/<UTC time>/` (keeping its relative path) with a note beside
    it; returns the new path. Nothing is deleted."""
    now = now or dt.datetime.now(dt.timezone.utc)
    relative = Path(os.path.relpath(path)) if not Path(path).is_absolute() else Path(*Path(path).parts[1:])
    if relative.parts[0] == "results":  # results/quarantine/<time>/cells/machine=…/cell.parquet
        relative = Path(*relative.parts[1:])
    target = quarantine / now.strftime("%Y%m%dT%H%M%S.%fZ") / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    note = target.with_name(target.name + ".why.txt")
    note.write_text(
        f"{path} was moved here on {now.isoformat(timespec='seconds')} because it could not be used:\n"
        f"{reason}\n\nspeedatlas measures that cell again (its key is the path above). This copy is kept "
        "for you to inspect; delete this folder when you no longer need it.\n"
    )
    return target


def remove_derived(paths: Iterable[Path] | None = None) -> list[str]:
    """Remove the tables, plots and reports computed from the cells (every study's, by default);
    returns what was removed."""
    removed = []
    for path in derived() if paths is None else paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(str(path))
    return removed


class CannotSetAside(OSError):
    """An unreadable cell file that could not be moved (a read-only results/): the message says
    which and what to do."""


def quarantine_cells(paths: Iterable[str], dry_run: bool = False) -> list[str]:
    """Check this study's cell files before the plan is built; set aside the unreadable ones.

    Returns one line per file for the terminal. A dry run changes nothing: it says which files a
    run would set aside (and so measure again). Raises CannotSetAside when a file cannot be moved.
    """
    broken = unreadable(paths)
    if dry_run:
        return [f"speedatlas: {path} is unreadable ({reason}); a run without --dry-run sets it aside "
                "and measures it again" for path, reason in broken]
    lines = []
    for path, reason in broken:
        try:
            target = set_aside(path, reason)
        except OSError as error:
            raise CannotSetAside(
                f"{path} is unreadable ({reason}) and could not be moved aside: {error.strerror or error}; "
                "make results/ writable, or move the file away yourself, then run again"
            ) from None
        lines.append(f"speedatlas: {path} is unreadable ({reason}); moved to {target}, measuring it again")
    if broken:
        removed = remove_derived()
        if removed:
            lines.append(f"speedatlas: removed {', '.join(removed)} (computed from it); this run rebuilds them")
    return lines
