"""How much of an accelerator step is the Python host issuing it (issue 14).

Runner side: standard library and torch (imported lazily, torch >= 2.0).

After the timed blocks (so the samples are untouched), a few extra steps run one at a time:

    synchronize; t0; [start event]; step(); [end event]; t1; synchronize; t2

t1 - t0 is the host's issue time: step() returns as soon as its kernels are queued, without
waiting for them. t2 - t0 is the synchronised step. Their ratio, the host share, is near 1 when
the device waits on the host (it then measures the CPU's kernel-launch speed, not the
accelerator) and small when the device is the bottleneck. The queue is empty at t0 (after a
synchronize), so the host never blocks on a full launch queue inside one step.

Device time per step comes from the device's own event timer where one exists: CUDA events
(torch.cuda.Event(enable_timing=True), elapsed_time in milliseconds, see
torch/cuda/streams.py) and mps events from torch 2.1 (torch.mps.event.Event, the same API,
torch/mps/event.py). elapsed_time is start.elapsed_time(end): the other order is negative
(the pitfall of a popular pip benchmark, see conventions.md), so it is checked to be positive.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Untimed steps measured after the timed blocks: few, so a slow cell (0.3 s/step) pays ~1.5 s.
STEPS = 5


@dataclass(frozen=True)
class HostShare:
    host_share: float | None  # median over steps of issue / synchronised step, clipped to [0, 1]
    device_step_time_s: float | None  # median device-clock seconds per step, None without events
    issue_s: float  # median host issue time
    step_s: float  # median synchronised step time


def event_factory(device: str) -> Callable[[], Any] | None:
    """A maker of timing events for the device, or None (cpu, a torch without mps events)."""
    import torch

    kind = device.split(":", 1)[0]
    if kind == "cuda":
        return lambda: torch.cuda.Event(enable_timing=True)
    if kind == "mps":
        event = getattr(getattr(torch, "mps", None), "event", None)
        if event is not None and hasattr(event, "Event"):  # torch >= 2.1
            return lambda: event.Event(enable_timing=True)
    return None


def measure(
    step: Callable[[], Any],
    synchronize: Callable[[], None],
    steps: int = STEPS,
    events: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> HostShare:
    """Host share (and device time where `events` is given) over `steps` single steps."""
    if steps < 1:
        raise ValueError("host share needs at least one step")
    shares, issues, totals, device = [], [], [], []
    for _ in range(steps):
        synchronize()
        start_event, end_event = (events(), events()) if events else (None, None)
        t0 = clock()
        if start_event is not None:
            start_event.record()
        step()
        if end_event is not None:
            end_event.record()
        t1 = clock()
        synchronize()
        t2 = clock()
        issue, total = t1 - t0, t2 - t0
        if total <= 0 or issue < 0:
            raise ValueError(f"implausible step times: issue {issue} s, step {total} s")
        issues.append(issue)
        totals.append(total)
        shares.append(min(1.0, issue / total))
        if start_event is not None:
            seconds = start_event.elapsed_time(end_event) / 1000.0  # milliseconds, start -> end
            if seconds > 0:
                device.append(seconds)
    return HostShare(
        host_share=statistics.median(shares),
        device_step_time_s=statistics.median(device) if device else None,
        issue_s=statistics.median(issues),
        step_s=statistics.median(totals),
    )


def columns(device: str, step: Callable[[], Any], synchronize: Callable[[], None]) -> dict[str, float | None]:
    """The cell's host_share / device_step_time_s: null on the cpu, where every step is
    synchronous (the host share would be 1 by construction and mean nothing)."""
    if device.split(":", 1)[0] == "cpu":
        return {"host_share": None, "device_step_time_s": None}
    result = measure(step, synchronize, events=event_factory(device))
    return {"host_share": result.host_share, "device_step_time_s": result.device_step_time_s}
