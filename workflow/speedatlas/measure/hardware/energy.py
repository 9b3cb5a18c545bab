"""Energy of a cell's timed region, read from the hardware's own cumulative counters.

Measure side: standard library only (optional libraries imported inside try/except). One small
interface, `Meter`: `idle()` before the warm-up, `begin()` when timing starts, `block(steps)`
after each timed block (after its synchronize, outside the timed interval), `needs_more()` /
`block(steps, timed=False)` to extend a too-short region, `end()`, then `columns(i)` for the
i-th timed block's row. Readers, one per kind of device:

- cuda: NVML's total energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ since the
  driver loaded; Volta and newer), plus the enforced power limit and SM/memory clocks at the
  start and end. Through `pynvml` (PyPI `nvidia-ml-py`, pure Python, no dependencies) when it is
  importable, else through the driver's libnvidia-ml.so.1 directly with ctypes (the same C
  functions), so torch-version environments need nothing extra.
- cpu on Linux: RAPL through /sys/class/powercap (every package zone, and its dram subzone
  where present), unwrapping each counter with its max_energy_range_uj.
- mps/cpu on Apple Silicon: the IOReport energy channels through `zeus_apple_silicon` (PyPI
  `zeus-apple-silicon`, no sudo) when importable, else `powermetrics` when run as root.

Why not `zeus` (ML.ENERGY), which wraps all three: zeus 0.16 requires pandas, scikit-learn,
pydantic, httpx, amdsmi, rich and tyro, and `zeus.monitor` imports scikit-learn at import time
(zeus/monitor/power.py: `from sklearn.metrics import auc`). The runner runs inside every torch
environment (torch 2.0 with numpy<2 included) and may import only the standard library, torch,
torchvision, numpy and pyarrow; zeus would add a scientific stack to each environment and to
the timed process. We use what zeus itself uses underneath (NVML, powercap, zeus-apple-silicon).

Counters are coarse: NVML's advances every 20-100 ms on recent GPUs, so a reading is up to one
update period stale, and the energy of a window is off by at most that period's worth of energy
(under 10% for a 1 s window). Readings are therefore grouped into windows of at least
`min_window_s`; a timed region shorter than that is extended with untimed blocks (counted in the
energy, never in the timings), and a window that is still short, or in which the counter did not
move, is flagged `energy_window_short`. Nothing here ever fails a cell: any error turns the
meter `unavailable` with its reason.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import plistlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SOURCES = ("nvml", "rapl", "ioreport", "powermetrics", "unavailable")
POWERCAP_ROOT = "/sys/class/powercap"
DEFAULTS = {"enabled": True, "min_window_s": 1.0, "idle_s": 1.0, "extend": True}


class Unavailable(Exception):
    """No energy counter can be read for this device; the message says why and how to enable."""


# ---------------------------------------------------------------------------------------- NVML
class _CtypesNvml:
    """The few NVML calls we use, straight from libnvidia-ml.so.1 (the driver's library), with
    pynvml's names. Used only when `pynvml` is not importable."""

    NVML_CLOCK_SM = 1  # nvmlClockType_t: GRAPHICS=0, SM=1, MEM=2 (nvml.h)
    NVML_CLOCK_MEM = 2

    def __init__(self) -> None:
        name = ctypes.util.find_library("nvidia-ml") or "libnvidia-ml.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as error:
            raise Unavailable(f"no NVIDIA driver library ({name}: {error})") from error

    def _call(self, fn: str, *args: Any) -> None:
        code = getattr(self.lib, fn)(*args)
        if code != 0:
            raise RuntimeError(f"{fn} returned NVML error {code}")

    def nvmlInit(self) -> None:
        self._call("nvmlInit_v2")

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")

    def nvmlDeviceGetHandleByIndex(self, index: int) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        self._call("nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(index), ctypes.byref(handle))
        return handle

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: ctypes.c_void_p) -> int:
        value = ctypes.c_ulonglong()
        self._call("nvmlDeviceGetTotalEnergyConsumption", handle, ctypes.byref(value))
        return value.value

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: ctypes.c_void_p) -> int:
        value = ctypes.c_uint()
        self._call("nvmlDeviceGetEnforcedPowerLimit", handle, ctypes.byref(value))
        return value.value

    def nvmlDeviceGetClockInfo(self, handle: ctypes.c_void_p, kind: int) -> int:
        value = ctypes.c_uint()
        self._call("nvmlDeviceGetClockInfo", handle, ctypes.c_int(kind), ctypes.byref(value))
        return value.value


def _nvml_module() -> Any:
    try:
        import pynvml  # PyPI nvidia-ml-py

        return pynvml
    except ImportError:
        return _CtypesNvml()


class NvmlReader:
    source = "nvml"
    scope = "gpu (the whole board as NVML reports it; excludes the host CPU and memory)"

    def __init__(self, index: int, nvml: Any = None) -> None:
        self.nvml = nvml if nvml is not None else _nvml_module()
        self.index = index
        try:
            self.nvml.nvmlInit()
            self.handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
            self.read_j()  # NVML_ERROR_NOT_SUPPORTED before Volta
        except Unavailable:
            raise
        except Exception as error:  # noqa: BLE001 - pynvml.NVMLError and friends
            raise Unavailable(f"NVML energy counter of GPU {index} not readable: {error}") from error
        self.note = f"NVML GPU index {index} via {'pynvml' if not isinstance(self.nvml, _CtypesNvml) else 'libnvidia-ml (ctypes)'}"

    def read_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0  # mJ

    def facts(self) -> dict[str, Any]:
        """Power limit and clocks now (a clock that fell by the end shows throttling)."""
        out: dict[str, Any] = {}
        for key, call in (
            ("power_limit_w", lambda: self.nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0),
            ("sm_clock_mhz", lambda: self.nvml.nvmlDeviceGetClockInfo(self.handle, self.nvml.NVML_CLOCK_SM)),
            ("mem_clock_mhz", lambda: self.nvml.nvmlDeviceGetClockInfo(self.handle, self.nvml.NVML_CLOCK_MEM)),
        ):
            try:
                out[key] = call()
            except Exception:  # noqa: BLE001 - a missing fact is not a failed measurement
                out[key] = None
        return out

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def nvml_index(device: str) -> int:
    """NVML's index of a torch CUDA device. torch numbers devices after CUDA_VISIBLE_DEVICES;
    torch.cuda._get_nvml_device_index maps back (torch/cuda/__init__.py, used by
    torch.cuda.utilization since 1.13); private, so fall back to torch's own index."""
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    try:
        return int(torch.cuda._get_nvml_device_index(index))
    except Exception:  # noqa: BLE001
        return index


# ---------------------------------------------------------------------------------------- RAPL
@dataclass
class _Zone:
    path: str
    name: str
    max_uj: int
    last_uj: int = 0
    total_uj: int = 0


class RaplReader:
    """Sum of the package (and dram) RAPL counters under `root` (injectable for tests)."""

    source = "rapl"

    def __init__(self, root: str = POWERCAP_ROOT) -> None:
        self.zones: list[_Zone] = []
        seen = set()
        # intel-rapl:N is a package, intel-rapl:N:M its subzones (core, uncore, dram), also
        # linked at the top level; intel-rapl-mmio repeats the package counter, psys overlaps.
        for path in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            name = _read_text(os.path.join(path, "name"))
            if name is None or not (name.startswith("package") or name == "dram"):
                continue
            self.zones.append(_Zone(path, name, int(_read_text(os.path.join(path, "max_energy_range_uj")) or 0)))
        for sub in sorted(glob.glob(os.path.join(root, "intel-rapl:*", "intel-rapl:*:*"))):
            real = os.path.realpath(sub)
            if real not in seen and _read_text(os.path.join(sub, "name")) == "dram":
                seen.add(real)
                self.zones.append(_Zone(sub, "dram", int(_read_text(os.path.join(sub, "max_energy_range_uj")) or 0)))
        if not self.zones:
            raise Unavailable(
                f"no RAPL package zone under {root} (this kernel, VM or container does not expose "
                "powercap; on bare-metal Linux load the intel_rapl_common/intel_rapl_msr modules)"
            )
        for zone in self.zones:
            try:
                zone.last_uj = int(open(os.path.join(zone.path, "energy_uj")).read())
            except PermissionError as error:
                raise Unavailable(
                    f"{zone.path}/energy_uj is readable by root only (Linux 5.10+, CVE-2020-8694); "
                    "run `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
                    "/sys/class/powercap/intel-rapl:*/intel-rapl:*/energy_uj` before the study"
                ) from error
        packages = sum(z.name.startswith("package") for z in self.zones)
        drams = sum(z.name == "dram" for z in self.zones)
        self.scope = f"cpu packages ({packages})" + (f" + dram ({drams})" if drams else ", no dram counter") + \
            " (the whole socket: every process, not the GPU)"
        self.note = "RAPL " + ", ".join(os.path.basename(z.path) + "=" + z.name for z in self.zones)

    def read_j(self) -> float:
        for zone in self.zones:
            now = int(open(os.path.join(zone.path, "energy_uj")).read())
            delta = now - zone.last_uj
            if delta < 0:  # the counter wrapped at max_energy_range_uj (and restarted at 0)
                delta += zone.max_uj
            zone.total_uj += delta
            zone.last_uj = now
        return sum(z.total_uj for z in self.zones) / 1e6

    def facts(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def _read_text(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


# ------------------------------------------------------------------------------- Apple Silicon
IOREPORT_PARTS = ("cpu_total_mj", "gpu_mj", "ane_mj", "dram_mj")


class IOReportReader:
    """IOReport energy channels through zeus-apple-silicon (cumulative mJ, no sudo)."""

    source = "ioreport"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            try:
                import zeus_apple_silicon as module  # PyPI zeus-apple-silicon
            except ImportError as error:
                raise Unavailable("zeus-apple-silicon is not installed (pip install zeus-apple-silicon)") from error
        self.monitor = module.AppleEnergyMonitor()
        first = self.monitor.get_cumulative_energy()
        self.parts = [p for p in IOREPORT_PARTS if getattr(first, p, None) is not None]
        if not self.parts:
            raise Unavailable("IOReport reported no energy channel on this Mac")
        self.scope = "soc: " + " + ".join(p.replace("_total", "").replace("_mj", "") for p in self.parts)
        self.start = {p: getattr(first, p) for p in self.parts}
        self.last = dict(self.start)
        self.note = "IOReport via zeus-apple-silicon"

    def read_j(self) -> float:
        now = self.monitor.get_cumulative_energy()
        self.last = {p: getattr(now, p) or 0 for p in self.parts}
        return sum(self.last.values()) / 1000.0

    def split(self) -> str:
        """How the energy since the reader opened divides among CPU, GPU, ANE and DRAM."""
        used = {p: self.last[p] - self.start[p] for p in self.parts}
        total = sum(used.values())
        if total <= 0:
            return ""
        return ", ".join(f"{p.replace('_total', '').replace('_mj', '')} {100 * v / total:.0f}%" for p, v in used.items())

    def facts(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def powermetrics_energy_j(stream: bytes) -> tuple[float, int]:
    """Joules and samples in the complete plist samples of a `powermetrics -f plist` stream
    (NUL-separated documents): each sample's processor combined_power (mW) times its elapsed_ns."""
    joules, samples = 0.0, 0
    documents = stream.split(b"\0")
    for document in documents[:-1]:  # the last one may still be being written
        document = document.strip()
        if not document:
            continue
        sample = plistlib.loads(document)
        power_mw = sample.get("processor", {}).get("combined_power")
        if power_mw is None:
            continue
        joules += power_mw / 1000.0 * sample.get("elapsed_ns", 0) / 1e9
        samples += 1
    return joules, samples


class PowermetricsReader:
    """`powermetrics` (root only) sampling CPU+GPU+ANE power every `interval_ms` into a file;
    the energy at a reading is that of the samples completed so far."""

    source = "powermetrics"
    scope = "soc: cpu + gpu + ane (powermetrics combined power)"

    def __init__(self, interval_ms: int = 100) -> None:
        if shutil.which("powermetrics") is None:
            raise Unavailable("powermetrics not found (macOS only)")
        if os.geteuid() != 0:
            raise Unavailable("powermetrics needs root and zeus-apple-silicon is not installed "
                              "(pip install zeus-apple-silicon reads the same counters without sudo)")
        fd, self.path = tempfile.mkstemp(prefix="speedatlas-powermetrics-", suffix=".plist")
        os.close(fd)
        self.process = subprocess.Popen(
            ["powermetrics", "-i", str(interval_ms), "--samplers", "cpu_power,gpu_power,ane_power",
             "-f", "plist", "-o", self.path],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(3 * interval_ms / 1000)
        self.note = f"powermetrics every {interval_ms} ms"

    def read_j(self) -> float:
        with open(self.path, "rb") as handle:
            return powermetrics_energy_j(handle.read())[0]

    def facts(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=5)
        os.unlink(self.path)


# ---------------------------------------------------------------------------------- selection
def open_reader(device: str, root: str | None = None) -> Any:
    """The reader for a cell's device; raises Unavailable with the reason."""
    import platform

    kind = device.split(":")[0]
    if kind == "cuda":
        return NvmlReader(nvml_index(device))
    if platform.system() == "Darwin" and kind in ("mps", "cpu"):
        try:
            return IOReportReader()
        except Unavailable as first:
            try:
                return PowermetricsReader()
            except Unavailable as second:
                raise Unavailable(f"{first}; {second}") from second
    if kind == "cpu" and platform.system() == "Linux":
        return RaplReader(root or POWERCAP_ROOT)
    raise Unavailable(f"no energy counter is known for device {device} on {platform.system()}")


# ------------------------------------------------------------------------------------- meter
@dataclass
class Window:
    steps: int = 0
    seconds: float = 0.0
    joules: float = 0.0


@dataclass
class Meter:
    """Energy windows around a cell's timed blocks. Build with `open_meter`."""

    reader: Any = None
    reason: str | None = None
    min_window_s: float = 1.0
    idle_s: float = 1.0
    extend: bool = True
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    windows: list[Window] = field(default_factory=list)
    block_window: list[int] = field(default_factory=list)
    idle_power_w: float | None = None
    extra_steps: int = 0
    start_facts: dict[str, Any] = field(default_factory=dict)
    end_facts: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.reader is not None

    def _fail(self, what: str, error: Exception) -> None:
        self.reason = f"reading the {self.reader.source} counter failed {what}: {type(error).__name__}: {error}"
        self.close()
        self.reader, self.windows, self.block_window = None, [], []

    def idle(self, synchronize: Callable[[], None] = lambda: None) -> None:
        """Average power over `idle_s` with nothing running in this process."""
        if not self.available or self.idle_s <= 0:
            return
        try:
            synchronize()
            e0, t0 = self.reader.read_j(), self.clock()
            self.sleep(self.idle_s)
            e1, t1 = self.reader.read_j(), self.clock()
            self.idle_power_w = (e1 - e0) / (t1 - t0) if t1 > t0 else None
        except Exception as error:  # noqa: BLE001
            self._fail("while measuring idle power", error)

    def begin(self) -> None:
        if not self.available:
            return
        try:
            self.start_facts = self.reader.facts()
            self._e, self._t = self.reader.read_j(), self.clock()
            self._steps = 0
            self._open: list[int] = []  # timed blocks of the open window
        except Exception as error:  # noqa: BLE001
            self._fail("at the start", error)

    def block(self, steps: int, timed: bool = True) -> None:
        """A block of `steps` steps ended (after its synchronize)."""
        if not self.available:
            return
        if timed:
            self.block_window.append(len(self.windows))
        else:
            self.extra_steps += steps
        self._steps += steps
        if self.clock() - self._t >= self.min_window_s:
            try:
                self._close()
            except Exception as error:  # noqa: BLE001
                self._fail("between blocks", error)

    def _close(self) -> None:
        e, t = self.reader.read_j(), self.clock()
        self.windows.append(Window(self._steps, t - self._t, e - self._e))
        self._e, self._t, self._steps = e, t, 0

    def needs_more(self) -> bool:
        """True while the timed region has not yet filled one window of min_window_s."""
        return self.available and self.extend and not self.windows

    def end(self) -> None:
        if not self.available:
            return
        try:
            if self._steps:
                if self.windows and self.clock() - self._t < self.min_window_s:
                    # a short tail joins the last window instead of becoming a short one
                    e, t = self.reader.read_j(), self.clock()
                    last = self.windows[-1]
                    last.steps, last.seconds, last.joules = (
                        last.steps + self._steps, last.seconds + t - self._t, last.joules + e - self._e)
                    self.block_window = [min(w, len(self.windows) - 1) for w in self.block_window]
                else:
                    self._close()
            self.end_facts = self.reader.facts()
        except Exception as error:  # noqa: BLE001
            self._fail("at the end", error)

    @property
    def short(self) -> bool:
        return any(w.seconds < self.min_window_s or w.joules <= 0 for w in self.windows)

    def note(self) -> str:
        if not self.available:
            return self.reason or "energy not measured"
        parts = [self.reader.note]
        if self.extra_steps:
            parts.append(f"timed region extended by {self.extra_steps} untimed steps to fill a "
                         f"{self.min_window_s:g} s window")
        if self.short:
            shortest = min(self.windows, key=lambda w: w.seconds) if self.windows else None
            parts.append(
                f"window too short for the counter: {shortest.seconds:.3f} s, {shortest.joules:.3f} J "
                f"(wanted >= {self.min_window_s:g} s and a moving counter)" if shortest else "no window")
        if isinstance(self.reader, IOReportReader):
            parts.append("split " + self.reader.split())
        return "; ".join(p for p in parts if p)

    def columns(self, block: int | None = None) -> dict[str, Any]:
        """The energy columns of a row: the cell's facts, and the window of timed block `block`."""
        if not self.available:
            return {"energy_source": "unavailable", "energy_note": self.note()}
        out: dict[str, Any] = {
            "energy_source": self.reader.source,
            "energy_scope": self.reader.scope,
            "energy_note": self.note(),
            "energy_window_short": self.short,
            "idle_power_w": self.idle_power_w,
            "power_limit_w": self.start_facts.get("power_limit_w"),
            "sm_clock_start_mhz": self.start_facts.get("sm_clock_mhz"),
            "sm_clock_end_mhz": self.end_facts.get("sm_clock_mhz"),
            "mem_clock_start_mhz": self.start_facts.get("mem_clock_mhz"),
            "mem_clock_end_mhz": self.end_facts.get("mem_clock_mhz"),
        }
        if block is not None and block < len(self.block_window) and self.windows:
            index = self.block_window[block]
            window = self.windows[index]
            out.update(
                energy_window=index,
                energy_window_steps=window.steps,
                energy_window_s=window.seconds,
                energy_j=window.joules / window.steps if window.steps else None,
                avg_power_w=window.joules / window.seconds if window.seconds > 0 else None,
            )
        return out

    def close(self) -> None:
        if self.reader is not None:
            try:
                self.reader.close()
            except Exception:  # noqa: BLE001
                pass


def open_meter(device: str, settings: dict[str, Any] | None = None, root: str | None = None,
               reader: Any = None) -> Meter:
    """A meter for the device; an unavailable one (with the reason) when nothing can be read."""
    settings = {**DEFAULTS, **(settings or {})}
    options = {k: settings[k] for k in ("min_window_s", "idle_s", "extend")}
    if not settings["enabled"]:
        return Meter(reason="energy measurement is off (energy: {enabled: false})", **options)
    if reader is None:
        try:
            reader = open_reader(device, root)
        except Unavailable as error:
            return Meter(reason=str(error), **options)
        except Exception as error:  # noqa: BLE001 - never fail the cell over energy
            return Meter(reason=f"opening an energy counter failed: {type(error).__name__}: {error}", **options)
    return Meter(reader=reader, **options)
