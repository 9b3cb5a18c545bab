"""What a cell records when it cannot run: its status and a short error text.

Shared by every workload and the dtype probes, so one exception is classified one way everywhere.
"""

from __future__ import annotations

import os
import traceback
from typing import Any


def error_text(exc: BaseException) -> str:
    """Type, message and the innermost frame: enough to act on, short enough for a table."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}{where}"[:2000]


def failed_rows(base: dict[str, Any], exc: BaseException, device: str) -> list[dict[str, Any]]:
    """The one row of a cell whose measurement raised; frees the device's cached memory first."""
    from speedatlas.measure import devices, timing

    status = "nonfinite" if isinstance(exc, timing.NonFiniteError) else devices.classify(exc)
    devices.release_memory(device)
    return [{**base, "status": status, "error": error_text(exc)}]
