"""The timing protocol: untimed warm-up, then timed blocks each closed by a device synchronize.

Why not torch.utils.benchmark.Timer: until 2025 it synchronised only CUDA (an unsynchronised mps
step looks up to 10x faster than it is) and it defaults to one thread, which silently
handicaps the CPU in a CPU-vs-GPU comparison. We keep its good habits (raw samples, median and
IQR, warn on noise) and make the synchronisation explicit for every device.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


class NonFiniteError(RuntimeError):
    """The loss or the output of a step is NaN or infinite."""


@dataclass
class Timing:
    samples_s: list[float] = field(default_factory=list)  # seconds per single step, per block
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    first_step_s: float | None = None  # the first warm-up step alone (compile time for compile)
    last_value: float | None = None
    warmup_steps_run: int = 0  # the first step included
    gc_disabled: bool = False


def check_finite(value: torch.Tensor, what: str) -> float:
    """Read a step's result back (untimed) and fail the cell if it is not finite."""
    number = float(value.float().abs().mean().item()) if value.dim() else float(value.item())
    if not math.isfinite(number):
        raise NonFiniteError(f"{what} is not finite ({number})")
    return number


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def run(
    step: Callable[[], torch.Tensor],
    synchronize: Callable[[], None],
    warmup: int,
    repeats: int,
    steps_per_repeat: int,
    meter=None,
    after_first: Callable[[], None] | None = None,
    warmup_seconds: float = 0.0,
    gc_off: bool = True,
    finite: Callable[[Any, str], float] = check_finite,
) -> Timing:
    """Time `repeats` blocks of `steps_per_repeat` steps; store seconds per step per block.

    The warm-up is at least `warmup` steps and lasts at least `warmup_seconds`: GPU clocks,
    allocator caches and autotuners settle by time, not by step count. With `gc_off`, Python's
    garbage collector is collected once and then off during the timed blocks (as pyperf and
    timeit do): a collection inside a block would count its pause as the step's time.

    `meter` (speedatlas.measure.hardware.energy.Meter) reads the energy counter around the timed
    blocks, outside each block's timed interval; if the region is too short for the counter it
    adds untimed blocks after the timed ones (energy only, never timing samples).

    `after_first` runs (untimed) once the first step has finished, e.g. the check of the dtype
    the model computed in (compute_dtype.py); an exception from it ends the cell.

    `finite(result, what)` reads a step's result back (untimed) and raises NonFiniteError when it
    is not finite; another framework's cells pass their own (speedatlas.measure.mlx.workload).
    """
    timing = Timing()
    synchronize()
    start = time.perf_counter()
    result = step()
    synchronize()
    timing.first_step_s = time.perf_counter() - start
    finite(result, "the first warm-up step's result")
    if after_first is not None:
        after_first()
    steps, warmup_start = 1, time.perf_counter()
    while steps < warmup or time.perf_counter() - warmup_start < warmup_seconds:
        result = step()
        steps += 1
        if steps >= warmup and warmup_seconds and steps % 4 == 0:
            synchronize()  # time passes on the device, not in the queue
    synchronize()
    timing.warmup_steps_run = steps
    finite(result, "the warm-up result")

    if gc_off:
        gc.collect()
        gc.disable()
        timing.gc_disabled = True
    try:
        timing.started_at = utcnow()
        if meter is not None:
            meter.begin()
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps_per_repeat):
                result = step()
            synchronize()
            timing.samples_s.append((time.perf_counter() - start) / steps_per_repeat)
            if meter is not None:
                meter.block(steps_per_repeat)
        timing.finished_at = utcnow()
    finally:
        if gc_off:
            gc.enable()
    while meter is not None and meter.needs_more():
        for _ in range(steps_per_repeat):
            result = step()
        synchronize()
        meter.block(steps_per_repeat, timed=False)
    if meter is not None:
        meter.end()
    timing.last_value = finite(result, "the last timed step's result")
    return timing
