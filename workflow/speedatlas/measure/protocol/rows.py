"""The rows a cell writes: the columns every ok cell records, or the one row of a cell that
cannot run (its status and a short error text).

Shared by every workload (and the dtype probes, for failures), so an ok cell records the same
columns and one exception is classified one way everywhere.
"""

from __future__ import annotations

import os
import statistics
import traceback
from collections.abc import Sequence
from typing import Any


def ok_columns(base: dict[str, Any], samples_s: Sequence[float], *, setup_s: float, lock_wait_s: float,
               launcher: str, flops: float | None, compile_time_s: float | None, final_value: float | None,
               mode: str, cpu_fallback_ops: str) -> dict[str, Any]:
    """What every ok cell records beside its key and environment (`base`), whatever its
    workload: its status, the spread of its samples, set-up and lock wait, how it was started,
    the step's FLOPs, the compile time (variant compile), the last loss (training)."""
    mean = statistics.fmean(samples_s)
    return {
        **base,
        "status": "ok",
        "cv": statistics.stdev(samples_s) / mean if len(samples_s) > 1 and mean > 0 else None,
        "cpu_fallback_ops": cpu_fallback_ops,
        "flops_per_step": flops,
        "compile_time_s": compile_time_s,
        "setup_s": setup_s,
        "lock_wait_s": lock_wait_s,
        "launcher": launcher,
        "final_loss": final_value if mode == "train" else None,
    }


def error_text(exc: BaseException) -> str:
    """Type, message and the innermost frame of the root cause: enough to act on, short enough
    for a table. A chained exception keeps its innermost cause (torch.compile's
    "backend='inductor' raised:" says nothing by itself) and names the outer type after it."""
    from speedatlas.measure.hardware.error_status import innermost

    outer, exc = exc, innermost(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    via = f" [raised as {type(outer).__name__}]" if outer is not exc else ""
    return f"{type(exc).__name__}: {message}{where}{via}"[:2000]


def failed_rows(base: dict[str, Any], exc: BaseException, device: str) -> list[dict[str, Any]]:
    """The one row of a cell whose measurement raised; frees the device's cached memory first.

    The status comes from the device's own classifier (hardware/error_status.py: the whole cause chain)."""
    from speedatlas.measure.hardware import devices
    from speedatlas.measure.protocol import timing

    dev = devices.get(device)
    status = "nonfinite" if isinstance(exc, timing.NonFiniteError) else dev.status_of(exc)
    dev.release_memory()
    return [{**base, "status": status, "error": error_text(exc)}]
