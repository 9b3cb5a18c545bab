"""Columns that tell a table's rows apart.

A report table names model, device, dtype, mode and batch; a key that takes several values among
its rows (the variant, the machine, the torch version, the workload) needs a column too, or two
cells that differ only there print as two identical rows."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# Row keys in reading order, with the header each gets (the speed-up tables use them all).
ROW_KEYS = {
    "machine": "machine",
    "workload": "workload",
    "torch_requested": "torch",
    "device": "device",
    "dtype": "dtype",
    "variant": "variant",
    "model": "model",
    "mode": "mode",
}


def varying(frame: pd.DataFrame, keys: Sequence[str]) -> dict[str, pd.Series]:
    """{header: column} for each of `keys` (in that order) with more than one value in `frame`."""
    return {ROW_KEYS[key]: frame[key] for key in keys if key in frame and frame[key].nunique() > 1}
