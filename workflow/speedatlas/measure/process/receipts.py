"""A process's receipt: what later processes of its cell need to know without reading Parquet.

Each process job of a cell leaves its samples (a Parquet part) and, beside it, this small JSON:
its status, the median of its samples, how long the process took, the GPU it ran on. Later
processes of the cell read the receipts of earlier ones (process 0: does the cell run at all?
the pilot: how many processes does the precision rule want?), and the supervisor answers that
in ~50 ms with the standard library alone, where importing pyarrow to read the parts would cost
0.2 s of every process job. Standard library only.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from typing import Any

SKIPPED = "skipped"  # a receipt's status when the process was not run (the part is then empty)


def write(path: str, **fields: Any) -> None:
    """Write a receipt atomically (a temporary file in the same folder, then a rename)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as handle:
        json.dump(fields, handle, sort_keys=True)
    os.replace(tmp, path)


def read(path: str) -> dict[str, Any]:
    with open(path) as handle:
        return json.load(handle)


def of_rows(rows: Sequence[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """A measured process's receipt from its rows: the first row's status, the median step time
    of its samples (ok rows), its duration and the GPU it ran on."""
    times = [row["step_time_s"] for row in rows if row.get("status") == "ok" and row.get("step_time_s")]
    return {
        "status": rows[0]["status"] if rows else "error",
        "median_step_s": statistics.median(times) if times else None,
        "seconds": seconds,
        "gpu_index": rows[0].get("gpu_index") if rows else None,
    }
