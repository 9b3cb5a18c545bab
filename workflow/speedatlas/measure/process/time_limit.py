"""A cell process's time limit: how long it may hold the timing lock, and the clock that counts it.

A model factory that never returns would otherwise hold the machine-wide lock for as long as we
let it: no result, no report, every other study on the machine blocked (issue 27, item 4). Each
process of a cell gets a limit; the supervisor stops the process and everything it started when
the limit passes, and records the cell as `timeout`.

The clock starts when the process holds the lock, not when it starts: waiting for the lock while
another study times its cells is no fault of this cell, and may take hours. The runner says so on
a pipe the supervisor handed it (CLOCK_ENV names the descriptor); the supervisor waits on that
pipe and on the process's end together (Clock.wait).

The limit is `timing.time_limit_seconds` where the config sets it (it is then in the cell's spec,
so changing it reruns those cells), else derived from the cell's own settings (`seconds`):
generous on purpose, to end a hang, never a slow cell. Standard library only (runner side).
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

CLOCK_ENV = "SPEEDATLAS_CLOCK_FD"
SPEC_KEY = "time_limit_seconds"

# The derived limit: the process's start, imports, model build and first step; torch.compile; then
# every step (the first, warm-up, timed and the host-share probe's) at a pace no real cell is
# slower than on a small machine, with the time-based warm-up and the energy meter's windows on top.
START_S = 600.0
COMPILE_S = 1800.0
STEP_S = 5.0
STEP_PER_ITEM_S = 1.0
PROBE_STEPS = 6  # the untimed first step and hostshare.STEPS


def seconds(spec: dict[str, Any]) -> float:
    """The process's limit in seconds: the spec's `time_limit_seconds`, else derived from it.

    Derived: START_S (+ COMPILE_S for variant `compile`) + steps x (STEP_S + STEP_PER_ITEM_S x
    batch) + warmup_seconds + the energy meter's idle and window seconds, where steps = warmup +
    repeats x steps_per_repeat + PROBE_STEPS. A default cpu cell (batch 64, 5 + 20 steps): 46 min;
    batch 4: 15 min; the tests' one-step cells: 11 min.
    """
    if spec.get(SPEC_KEY):
        return float(spec[SPEC_KEY])
    steps = spec["warmup"] + spec["repeats"] * spec["steps_per_repeat"] + PROBE_STEPS
    energy = spec.get("energy") or {}
    extra = float(spec.get("warmup_seconds") or 0) + float(energy.get("idle_s") or 0) + 2 * float(energy.get("min_window_s") or 0)
    compile_s = COMPILE_S if spec.get("variant") == "compile" else 0.0
    return START_S + compile_s + steps * (STEP_S + STEP_PER_ITEM_S * spec["batch"]) + extra


def describe(spec: dict[str, Any], limit_s: float) -> str:
    """Where the limit came from, for the cell's error text."""
    source = "timing.time_limit_seconds" if spec.get(SPEC_KEY) else "derived from the cell's settings"
    return f"{limit_s:.0f} s ({source})"


def start_clock() -> None:
    """Runner side: say that this process now holds the lock (the limit counts from here), once.
    The descriptor is closed at once, so nothing the cell starts later keeps it open."""
    fd = os.environ.pop(CLOCK_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"L")
        os.close(int(fd))
    except (ValueError, OSError):
        pass


class Clock:
    """Supervisor side: the pipe the runner writes to when it holds the lock."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()  # neither is inherited unless handed on on purpose

    def handed_over(self) -> None:
        """The process (or the fork server) has its copy of the write end: drop ours, so the
        pipe reads as closed once nobody can start the clock any more."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.handed_over()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1

    def wait(self, done_fd: int, limit_s: float) -> float | None:
        """Wait until `done_fd` is readable (the process ended or answered) or `limit_s` has passed
        since the clock started: None in the first case, else the seconds the process held the lock."""
        started = None
        watch = [done_fd, self.read_fd]
        while True:
            timeout = None if started is None else started + limit_s - time.monotonic()
            if timeout is not None and timeout <= 0:
                return time.monotonic() - started
            readable, _, _ = select.select(watch, [], [], timeout)
            if done_fd in readable:
                return None
            if self.read_fd in readable:
                if os.read(self.read_fd, 64):
                    started = started or time.monotonic()
                else:  # closed: the process said it, or died before it held the lock
                    watch = [done_fd]
