"""How big a study is, said before any job: its cells, and a floor under the time they take.

An enormous matrix by mistake (80 models × 50 batch sizes × 3 dtypes × 2 modes × 3 variants =
72,000 cells) used to be planned without a word: a 146 s dry run of 1.55 GB and 576,109 lines.
Now every run says at start how many cells its study has and how many are still to measure, with
a floor under their time; a study of more cells than `max_cells` (default 1,000, some twenty times
the largest study shipped) is refused in one line, counted before a single cell is built, until
its config says it means it (`max_cells` at or above its size).

The time is a floor, not a forecast: what each cell process costs before its first timed step,
about 1 s forked from the fork server and 3 s as a fresh interpreter (measured: 1.2 s forked and
10.3 s fresh on the H100 machine, 2.0 s forked on the 2-core machine, 3–10 s to import torch and
torchvision there; docs/measurements.md, "Per-cell start-up"). Warm-up and timed steps depend on the model
and the device, unknown before a cell is measured, and come on top.

Plan side: standard library only (and the matrix).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from speedatlas.plan import matrix
from speedatlas.plan.config import ConfigError
from speedatlas.plan.torch_envs import CURRENT

START_S_FORKED = 1.0
START_S_FRESH = 3.0


def floor_seconds(groups: Iterable[tuple[str, int, int]], forks: bool) -> float:
    """Start-up seconds of (torch version, processes per cell, cells) groups: cells of torch
    'current' fork from the fork server when `forks`; other versions start their own interpreter."""
    return sum((START_S_FORKED if forks and torch == CURRENT else START_S_FRESH) * processes * cells
               for torch, processes, cells in groups)


def duration(seconds: float) -> str:
    """A floor of time in the unit a person plans with: '40 s', '12 min', '3.0 h', '2.5 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def check(config: dict[str, Any], forks: bool) -> int:
    """The study's number of cells, counted without building them; ConfigError above max_cells."""
    groups = matrix.processes_per_cell(config)
    count = sum(cells for _, _, cells in groups)
    limit = config["max_cells"]
    if count > limit:
        raise ConfigError(
            f"this study has {count:,} cells, more than max_cells ({limit:,}); measuring them takes at least "
            f"{duration(floor_seconds(groups, forks))} (start-up alone, ~{START_S_FORKED:.0f} s a forked and "
            f"~{START_S_FRESH:.0f} s a fresh cell process, steps on top). If you mean it, set max_cells: {count} "
            f"in the config (or add --config max_cells={count}); else narrow models, batch_sizes, dtypes, modes, "
            "variants, devices or torch_versions"
        )
    return count


def summary(cells: Sequence[matrix.Cell], forks: bool, stale: Sequence[str] | None = ()) -> str:
    """One line for the terminal: the cells, those still to measure (no file yet, or a file measured
    for other settings: `stale`, None when not checked), and a floor under their time."""
    again = set(stale or ())
    todo: dict[tuple[str, int], int] = {}
    for cell in cells:
        if cell.path in again or not os.path.exists(cell.path):
            todo[(cell.torch, cell.pilot)] = todo.get((cell.torch, cell.pilot), 0) + 1  # the fewest it takes
    left = sum(todo.values())
    because = (f" ({len(again):,} of them measured before for other settings: input size, timing or a "
               "factory's arguments differ)" if again else "")
    if not left:
        unchecked = " (their settings not checked: a cell measured for other settings is measured again)"
        return f"speedatlas: {len(cells):,} cells in this study, all measured" + ("" if stale is not None else unchecked)
    floor = floor_seconds([(torch, processes, n) for (torch, processes), n in todo.items()], forks)
    return (f"speedatlas: {len(cells):,} cells in this study, {left:,} to measure{because}: at least "
            f"{duration(floor)} (cell start-up alone; the timed steps come on top)")
