"""What macOS tells us about the machine's CPU cores, memory and power/thermal state.

Every probe runs a command through an injectable `run` (argv -> stdout, or None when the command
is missing or fails), with absolute paths (a user's PATH, or a venv's shims, must not decide
which `sysctl` answers), and hands the text to a pure parser. The parsers are tested on real
outputs recorded on Apple Silicon Macs (tests/fixtures/macos/, see its README).

Off macOS every column is None: speedatlas records "not applicable", never a guess.

Runner side: standard library only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

SYSCTL = "/usr/sbin/sysctl"
PMSET = "/usr/bin/pmset"
IOREG = "/usr/sbin/ioreg"

Runner = Callable[[list[str]], "str | None"]


def run_command(argv: list[str], timeout: float = 5.0) -> str | None:
    """stdout of argv, or None when it cannot run or exits non-zero."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


# -- sysctl -------------------------------------------------------------------------------------


def parse_sysctl(text: str) -> dict[str, str]:
    """'key: value' lines (sysctl's default output) -> {key: value}."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key and " " not in key.strip():
            values[key.strip()] = value.strip()
    return values


def perf_levels(values: Mapping[str, str]) -> list[tuple[str, int]]:
    """[(name, physical cores)] per performance level, fastest first (hw.perflevelN).

    Level names: "Performance"/"Efficiency" from macOS 13; macOS 12 has no .name keys (we then
    say "level0"/"level1"); M5-family chips call their fastest level "Super", and the M5 Max has
    "Super" + "Performance" with no "Efficiency" level at all.
    """
    levels = []
    count = int(values.get("hw.nperflevels", "0") or 0)
    index = 0
    while f"hw.perflevel{index}.physicalcpu" in values or index < count:
        cores = values.get(f"hw.perflevel{index}.physicalcpu")
        if cores is None:
            break
        levels.append((values.get(f"hw.perflevel{index}.name", f"level{index}"), int(cores)))
        index += 1
    return levels


def core_columns(values: Mapping[str, str]) -> dict[str, Any]:
    """cpu_performance_cores = the fastest level (hw.perflevel0), whatever its name; every other
    level counts as efficiency cores.

    That mirrors torch's own default thread count on Apple Silicon (ATen's
    intraop_default_num_threads reads hw.perflevel0.physicalcpu, aten/src/ATen/ParallelCommon.cpp),
    so `cpu_threads: 0` gives the CPU the threads torch itself would use.
    """
    levels = perf_levels(values)
    if not levels:
        return {"cpu_performance_cores": None, "cpu_efficiency_cores": None, "cpu_perf_levels": None}
    return {
        "cpu_performance_cores": levels[0][1],
        "cpu_efficiency_cores": sum(cores for _, cores in levels[1:]),
        "cpu_perf_levels": ", ".join(f"{name}: {cores}" for name, cores in levels),
    }


@functools.lru_cache(maxsize=1)
def _sysctl_hw() -> dict[str, str]:
    return parse_sysctl(run_command([SYSCTL, "hw"]) or "")


def cpu_cores(run: Runner | None = None) -> dict[str, Any]:
    """The P/E core columns of this Mac (all None off macOS)."""
    if run is None and sys.platform != "darwin":
        return core_columns({})
    values = parse_sysctl(run([SYSCTL, "hw"]) or "") if run is not None else _sysctl_hw()
    return core_columns(values)


# -- pmset --------------------------------------------------------------------------------------


def parse_pmset_batt(text: str) -> dict[str, Any]:
    """`pmset -g batt`: "Now drawing from 'AC Power'" + the battery line ("16%; discharging")."""
    source = re.search(r"drawing from '([^']+)'", text)
    percent = re.search(r"(\d+)%;\s*([^;]+?)(?:;|\s+present:|$)", text, flags=re.MULTILINE)
    return {
        "power_source": source.group(1) if source else None,
        "battery_percent": int(percent.group(1)) if percent else None,
        "battery_state": percent.group(2).strip() if percent else None,
    }


def parse_pmset_lowpower(text: str) -> dict[str, Any]:
    """`pmset -g`: `lowpowermode 0|1` (most Macs), or `powermode 0|1|2` (Macs with High Power
    Mode: 0 automatic, 1 low power, 2 high power). Unknown: None."""
    low = re.search(r"^\s*lowpowermode\s+(\d+)", text, flags=re.MULTILINE)
    mode = re.search(r"^\s*powermode\s+(\d+)", text, flags=re.MULTILINE)
    power_mode = {0: "automatic", 1: "low power", 2: "high power"}.get(int(mode.group(1))) if mode else None
    if low:
        low_power = low.group(1) != "0"
    elif mode:
        low_power = mode.group(1) == "1"
    else:
        low_power = None
    return {"low_power_mode": low_power, "power_mode": power_mode}


def parse_pmset_therm(text: str) -> dict[str, Any]:
    """`pmset -g therm`: Apple Silicon normally prints three "Note: No ... has been recorded"
    lines (nominal); under pressure a warning level and/or "CPU_Speed_Limit = N" appear.

    Only the nominal form was found recorded on Apple Silicon (fixtures README): the warning
    forms are parsed by their documented keywords, which no real output here has confirmed.
    """
    if not text.strip():
        return {"thermal_state": None, "cpu_speed_limit": None}
    limit = re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", text)
    speed = int(limit.group(1)) if limit else None
    warnings = [line.strip() for line in text.splitlines()
                if re.search(r"warning level", line, re.IGNORECASE) and not re.search(r"\bNo\b", line)]
    if warnings:
        state = "; ".join(warnings)
    elif speed is not None and speed < 100:
        state = f"CPU speed limited to {speed}%"
    elif "has been recorded" in text or speed == 100:
        state = "nominal"
    else:
        state = text.strip().splitlines()[0][:200]
    return {"thermal_state": state, "cpu_speed_limit": speed}


# -- ioreg --------------------------------------------------------------------------------------


def parse_gpu_cores(text: str) -> int | None:
    """"gpu-core-count" = 32 from the AGXAccelerator node (the M1 Max comes with 24 or 32)."""
    match = re.search(r'"gpu-core-count"\s*=\s*(\d+)', text)
    return int(match.group(1)) if match else None


def gpu_core_count(run: Runner | None = None) -> int | None:
    if run is None and sys.platform != "darwin":
        return None
    return parse_gpu_cores((run or run_command)([IOREG, "-rc", "AGXAccelerator", "-d", "1"]) or "")


# -- all columns ----------------------------------------------------------------------------------

STATE_COLUMNS = (
    "cpu_performance_cores", "cpu_efficiency_cores", "cpu_perf_levels", "hw_memsize",
    "power_source", "battery_percent", "low_power_mode", "power_mode", "thermal_state",
    "cpu_speed_limit", "pytorch_mps_env",
)


def mps_environment(environ: Mapping[str, str]) -> str | None:
    """PYTORCH_MPS_* variables (e.g. PYTORCH_MPS_HIGH_WATERMARK_RATIO) as canonical JSON, or
    None when none is set; PYTORCH_ENABLE_MPS_FALLBACK has its own column (mps_fallback)."""
    found = {k: v for k, v in sorted(environ.items()) if k.startswith("PYTORCH_MPS_")}
    return json.dumps(found, sort_keys=True) if found else None


def collect(run: Runner | None = None, platform: str | None = None,
            environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The machine-state columns of one cell; all None off macOS (except pytorch_mps_env)."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    columns: dict[str, Any] = dict.fromkeys(STATE_COLUMNS)
    columns["pytorch_mps_env"] = mps_environment(environ)
    if platform != "darwin":
        return columns
    run = run or run_command
    values = parse_sysctl(run([SYSCTL, "hw"]) or "")
    columns.update(core_columns(values))
    columns["hw_memsize"] = int(values["hw.memsize"]) if values.get("hw.memsize", "").isdigit() else None
    columns.update(parse_pmset_batt(run([PMSET, "-g", "batt"]) or ""))
    columns.pop("battery_state", None)
    columns.update(parse_pmset_lowpower(run([PMSET, "-g"]) or ""))
    columns.update(parse_pmset_therm(run([PMSET, "-g", "therm"]) or ""))
    return columns


def pressure(columns: Mapping[str, Any]) -> list[str]:
    """What about this machine's state makes its times slower than they would be: battery,
    Low Power Mode, thermal pressure. Empty when nothing (or nothing known)."""
    found = []
    if columns.get("power_source") == "Battery Power":
        found.append("on battery")
    if columns.get("low_power_mode"):
        found.append("Low Power Mode on")
    state = columns.get("thermal_state")
    if state not in (None, "nominal"):
        found.append(f"thermal pressure ({state})")
    return found
