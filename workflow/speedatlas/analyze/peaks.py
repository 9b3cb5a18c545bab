"""Peak throughput of chips, and how close each cell got to it.

"mps is 5x faster than cpu" says nothing about whether either is used well; achieved TFLOP/s
against the chip's peak does. FLOPs per step are counted once per cell by the runner
(FlopCounterMode on the eager model); peaks come from config/devices.yaml (and a study's
`device_peaks`, which take precedence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

DEVICES_FILE = Path(__file__).resolve().parents[3] / "config" / "devices.yaml"


def load_peaks(path: Path = DEVICES_FILE, extra: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Study-specific entries first, then the shipped table."""
    with open(path) as handle:
        shipped = yaml.safe_load(handle) or []
    return [*extra, *shipped]


_CORES = re.compile(r"\((\d+) cores\)")


def lookup(
    peaks: list[dict[str, Any]], device_name: str | None, dtype: str, device: str | None = None
) -> tuple[str | None, float | None]:
    """(entry name, peak FLOP/s) of the first entry matching device_name; None where unknown.

    An entry of `kind: gpu` never matches a cpu cell: on a Mac the CPU cell's name is the chip
    ("Apple M1 Max") and only the mps cell's says "GPU". An entry with `gpu_cores` is scaled by
    the core count in the name ("Apple M1 Max GPU (24 cores)" gets 24/32 of the 32-core peak).
    """
    if not isinstance(device_name, str) or not device_name:
        return None, None
    is_cpu = isinstance(device, str) and device.split(":", 1)[0] == "cpu"
    for entry in peaks:
        if is_cpu and entry.get("kind") == "gpu":
            continue
        if re.search(entry["match"], device_name, flags=re.IGNORECASE):
            tflops = entry.get("peak_tflops", {}).get(dtype)
            name = entry.get("name", entry["match"])
            cores = _CORES.search(device_name)
            if tflops and entry.get("gpu_cores") and cores and int(cores.group(1)) != entry["gpu_cores"]:
                tflops = tflops * int(cores.group(1)) / entry["gpu_cores"]
                name = f"{name}, scaled to {cores.group(1)} cores"
            return name, (tflops * 1e12 if tflops else None)
    return None, None


def add_efficiency(cells: pd.DataFrame, peaks: list[dict[str, Any]]) -> pd.DataFrame:
    """Add achieved_tflops, peak_tflops, pct_of_peak and peak_source to the per-cell table."""
    out = cells.copy()
    devices = out["device"] if "device" in out else [None] * len(out)
    pairs = list(zip(out["device_name"], out["dtype"], devices))
    known = {pair: lookup(peaks, *pair) for pair in dict.fromkeys(pairs)}  # a few chips, many cells
    found = [known[pair] for pair in pairs]
    out["peak_source"] = [name for name, _ in found]
    peak = pd.Series([value for _, value in found], index=out.index, dtype="float64")
    achieved = out["flops_per_step"].astype("float64") / out["median_s"].astype("float64")
    out["achieved_tflops"] = achieved / 1e12
    out["peak_tflops"] = peak / 1e12
    out["pct_of_peak"] = 100 * achieved / peak
    return out
