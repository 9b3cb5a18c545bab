"""Columns that tell a table's rows apart.

A report table names model, device, dtype, mode and batch; a key that takes several values among
its rows (the variant, the machine, the torch version, the workload) needs a column too, or two
cells that differ only there print as two identical rows."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# (column of the tables, its header), in reading order.
KEYS = (("machine", "machine"), ("workload", "workload"), ("torch_requested", "torch"), ("variant", "variant"))


def varying(frame: pd.DataFrame, keys: Sequence[str] = tuple(key for key, _ in KEYS)) -> dict[str, pd.Series]:
    """{header: column} for each of `keys` with more than one value in `frame`."""
    return {name: frame[key] for key, name in KEYS if key in keys and key in frame and frame[key].nunique() > 1}
