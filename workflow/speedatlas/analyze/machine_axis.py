"""Speed-ups across machines: each machine/device against configured machine/device baselines.

`tables.speedup_table` compares values of one key with every other key equal, and the machine
is one of those keys, so it never compares two machines. Readers of a multi-machine study ask
"how much faster is h100/cuda than m1max/mps for resnet50 training at batch 64": the axis
`machine_device` answers it. Its values are `machine/device` labels; every label is compared
with each configured baseline label (`cross_machine_baselines`, default: this machine's
`baseline_device`), all other keys equal (workload, torch as requested, model, dtype, mode,
variant, batch size). Rows follow the speed-up table's columns: `machine` and `device` are the
candidate's, `baseline`/`candidate` the two labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from speedatlas import cellkey
from speedatlas.analyze import tables
from speedatlas.plan.comparisons import SEPARATOR, split

AXIS = "machine_device"


def compare_machines(
    raw: pd.DataFrame,
    baselines: Sequence[str],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Speed-up of every other machine's devices over each baseline label; empty with one machine.

    The comparison reuses `tables.compare_along` on the device column rewritten to
    `machine/device` with one shared machine, so intervals are computed exactly as for every
    other axis.
    """
    ok = raw[raw["status"] == "ok"]
    if ok["machine"].nunique() < 2:
        return pd.DataFrame(columns=_columns())
    merged = raw.assign(device=raw["machine"].astype(str) + SEPARATOR + raw["device"].astype(str), machine="*")
    frames = []
    earlier: list[str] = []
    for baseline in dict.fromkeys(baselines):
        frame = tables.compare_along(merged, "device", tables.baseline_value(baseline), confidence, resamples, seed)
        # Within one machine the device axis already answers; an earlier baseline against this
        # one is the inverse of a row already there.
        machine = split(baseline)[0]
        frame = frame[(frame["candidate"].map(lambda c: split(c)[0]) != machine) & ~frame["candidate"].isin(earlier)]
        earlier.append(baseline)
        if frame.empty:
            continue
        frame = frame.copy()
        machines_devices = frame["candidate"].map(split)
        frame["machine"] = [m for m, _ in machines_devices]
        frame["device"] = [d for _, d in machines_devices]
        frame["axis"] = AXIS
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=_columns())
    return pd.concat(frames, ignore_index=True)[_columns()]


def _columns() -> list[str]:
    return list(tables.compare_along(raw_columns_only(), "device", tables.baseline_value("cpu")).columns)


def raw_columns_only() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*cellkey.KEY_COLUMNS, "status", "step_time_s")})
