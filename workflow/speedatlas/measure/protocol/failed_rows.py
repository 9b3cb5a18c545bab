"""What a cell records when it cannot run: its status and a short error text.

Shared by every workload and the dtype probes, so one exception is classified one way everywhere.
"""

from __future__ import annotations

import os
import traceback
from typing import Any


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

    The status comes from the device's own classifier (statuses.py: the whole cause chain)."""
    from speedatlas.measure.hardware import devices
    from speedatlas.measure.protocol import timing

    dev = devices.get(device)
    status = "nonfinite" if isinstance(exc, timing.NonFiniteError) else dev.classify(exc)
    dev.release_memory()
    return [{**base, "status": status, "error": error_text(exc)}]
