"""Everything device-specific in one place: one small class per device kind.

    dev = devices.get("mps")            # CpuDevice | CudaDevice | MpsDevice
    dev.unavailable_reason()            # None, or one sentence saying why it cannot run here
    dev.synchronize()                   # wait for queued kernels (accelerators are asynchronous)
    dev.memory_probe().columns()        # this device's memory columns, never mixed across kinds
    dev.name(cpu_model)                 # the device's name, distinct for the CPU and GPU of one chip
    dev.autocast_problem("bfloat16")    # why autocast would silently fall back to float32, or None
    dev.status_of(exc)                   # ok-less status of an exception: oom | unsupported | error
    dev.release_memory()                # give cached blocks back after a failure

The thread policy (how many CPU threads `cpu_threads: 0` means) belongs to the host, not the
device: `default_threads()`; on macOS it is the performance-core count (see darwin.py).

Every class takes the `torch` module it talks to, so the mps one is tested on a Linux machine
against a fake `torch.mps` / `torch.backends.mps` (tests/test_devices.py).

Runner side: standard library and torch only. Works on torch 2.0 and newer, so optional
APIs are looked up with getattr.
"""

from __future__ import annotations

import gc
import os
import re
import resource
import sys
from typing import Any

import torch

from speedatlas.measure.hardware import error_status as statuses


def device_type(device: str) -> str:
    """'cuda:1' -> 'cuda' (what torch.autocast and the memory APIs take)."""
    return device.split(":", 1)[0]


def _rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


class MemoryProbe:
    """Memory of the measured work. Each device kind fills its own columns:

    cpu  -> peak_memory_bytes: growth of the process's peak RSS
    cuda -> peak_memory_bytes: torch.cuda.max_memory_allocated (a true peak of tensor memory)
    mps  -> mps_driver_allocated_bytes: torch.mps.driver_allocated_memory() at the end of the
            cell, i.e. everything Metal holds for the process (allocator caches included); it is
            neither a peak nor comparable with CUDA's figure, so it never goes into
            peak_memory_bytes (torch/mps/__init__.py documents both functions).
    """

    def __init__(self, device: "Device | str") -> None:
        self.device = get(device) if isinstance(device, str) else device
        self.rss_before = _rss_bytes()
        self.device._reset_peak()

    def peak_bytes(self) -> int | None:
        """The value of peak_memory_bytes (None on mps: see the class docstring)."""
        return self.columns().get("peak_memory_bytes")

    def columns(self) -> dict[str, Any]:
        return self.device._memory_columns(self)


class Device:
    """The cpu; the base of the accelerators."""

    kind = "cpu"

    def __init__(self, device: str = "cpu", torch_module: Any = None) -> None:
        self.device = device
        self.torch = torch_module if torch_module is not None else torch

    # -- availability -------------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        return None

    # -- timing ---------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """The CPU runs ops synchronously: nothing to wait for."""

    # -- memory --------------------------------------------------------------------------------
    def memory_probe(self) -> MemoryProbe:
        return MemoryProbe(self)

    def _reset_peak(self) -> None:
        pass

    def _memory_columns(self, probe: MemoryProbe) -> dict[str, Any]:
        return {"peak_memory_bytes": max(0, _rss_bytes() - probe.rss_before)}

    def release_memory(self) -> None:
        gc.collect()

    # -- naming ----------------------------------------------------------------------------------
    def name(self, cpu_model: str) -> str | None:
        """The CPU model ("Apple M1 Max"); the chip's GPU is named "... GPU (N cores)" by mps."""
        return cpu_model

    # -- dtypes ---------------------------------------------------------------------------------
    def autocast_dtypes(self) -> tuple[str, ...]:
        # torch/amp/autocast_mode.py: device_supported_dtypes = [torch.bfloat16, torch.float16]
        # for every device but privateuse1 (CPU float16 autocast exists from torch 2.1/2.2).
        return ("bfloat16", "float16")

    def autocast_problem(self, dtype: str) -> str | None:
        """Why torch.autocast would be disabled for this dtype here (it only warns), else None.

        Advisory: the cell's check of the dtype actually computed in (compute_dtype.py) is what
        decides the status; this is the reason shown when nothing better was captured.
        """
        if dtype == "float32" or dtype in self.autocast_dtypes():
            return None
        return f"{self.kind} autocast does not support {dtype} in torch {self.torch.__version__}"

    # -- errors ----------------------------------------------------------------------------------
    def status_of(self, exc: BaseException) -> str:
        return statuses.status_of(exc, self.kind, self.torch)


class CpuDevice(Device):
    kind = "cpu"


class CudaDevice(Device):
    kind = "cuda"

    def _index(self) -> int:
        return int(self.device.split(":", 1)[1]) if ":" in self.device else 0

    def unavailable_reason(self) -> str | None:
        cuda = self.torch.cuda
        if not cuda.is_available():
            build = self.torch.version.cuda
            why = "this torch build has no CUDA support" if build is None else "no CUDA GPU is visible"
            return f"cuda is not available: {why} (torch {self.torch.__version__})"
        if self._index() >= cuda.device_count():
            return f"{self.device} is not available: only {cuda.device_count()} CUDA device(s) visible"
        return None

    def synchronize(self) -> None:
        self.torch.cuda.synchronize(self.device)

    def _reset_peak(self) -> None:
        self.torch.cuda.reset_peak_memory_stats(self.device)

    def _memory_columns(self, probe: MemoryProbe) -> dict[str, Any]:
        return {"peak_memory_bytes": int(self.torch.cuda.max_memory_allocated(self.device))}

    def release_memory(self) -> None:
        gc.collect()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()

    def name(self, cpu_model: str) -> str | None:
        if self.unavailable_reason() is not None:
            return None
        return self.torch.cuda.get_device_name(self.device)


# What the mps path needs today: the locked torch's macOS wheels are arm64 only and need
# macOS 14+ (docs/mac.md); MPS itself exists from macOS 12.3.
MPS_REQUIREMENT = "an Apple Silicon Mac with macOS 14 or newer and an arm64 (not x86_64/Rosetta) Python"


class MpsDevice(Device):
    kind = "mps"

    def _backend(self):
        return getattr(getattr(self.torch, "backends", None), "mps", None)

    def _mps(self):
        return getattr(self.torch, "mps", None)

    def unavailable_reason(self) -> str | None:
        backend = self._backend()
        if backend is None or not backend.is_built():
            return (f"mps is not available: this torch build has no MPS support (torch {self.torch.__version__}, "
                    f"{sys.platform}); it needs {MPS_REQUIREMENT}")
        if not backend.is_available():
            return f"mps is not available on this machine: it needs {MPS_REQUIREMENT}"
        return None

    def synchronize(self) -> None:
        self._mps().synchronize()

    def _call(self, name: str) -> int | None:
        """torch.mps.<name>() where this torch has it (recommended_max_memory: torch >= 2.5)."""
        function = getattr(self._mps(), name, None)
        if function is None:
            return None
        try:
            return int(function())
        except (RuntimeError, AttributeError):
            return None

    def _memory_columns(self, probe: MemoryProbe) -> dict[str, Any]:
        driver = self._call("driver_allocated_memory")
        recommended = self._call("recommended_max_memory")
        return {
            "peak_memory_bytes": None,
            "mps_driver_allocated_bytes": driver,
            "mps_current_allocated_bytes": self._call("current_allocated_memory"),
            "mps_recommended_max_bytes": recommended,
            # Past Metal's recommended working set, macOS pages GPU memory to swap long before
            # MPS raises "MPS backend out of memory": the cell's time then includes paging.
            "mps_over_recommended": (driver > recommended) if driver is not None and recommended else None,
        }

    def release_memory(self) -> None:
        gc.collect()
        empty = getattr(self._mps(), "empty_cache", None)
        if empty is not None:
            try:
                empty()
            except RuntimeError:
                pass

    def gpu_cores(self) -> int | None:
        """torch.backends.mps.get_core_count() (newer torch), else the IORegistry (darwin.py)."""
        count = getattr(self._backend(), "get_core_count", None)
        if count is not None:
            try:
                return int(count())
            except (RuntimeError, ValueError):
                pass
        from speedatlas.measure.hardware import darwin

        return darwin.gpu_core_count()

    def name(self, cpu_model: str) -> str | None:
        """"Apple M1 Max GPU (32 cores)": never the bare chip name, which names the CPU cell.

        torch.backends.mps.get_name() (newer torch) returns the Metal device name, which on
        Apple Silicon is the chip name ("Apple M1 Max"); the CPU's brand string is the fallback.
        """
        if self.unavailable_reason() is not None:
            return None
        chip = cpu_model
        get_name = getattr(self._backend(), "get_name", None)
        if get_name is not None:
            try:
                chip = str(get_name()) or cpu_model
            except RuntimeError:
                pass
        cores = self.gpu_cores()
        return f"{chip} GPU" + (f" ({cores} cores)" if cores else "")

    def autocast_dtypes(self) -> tuple[str, ...]:
        # torch/amp/autocast_mode.py, the "mps" branch of autocast.__init__: torch 2.5 accepts
        # only float16 (its warning wrongly names bfloat16); 2.6 adds bfloat16, but only on
        # macOS 14+ (torch.backends.mps.is_macos_or_newer(14, 0)); torch 2.4 has no mps autocast.
        version = tuple(int(p) for p in re.findall(r"\d+", self.torch.__version__)[:2])
        if version < (2, 5):
            return ()
        if version < (2, 6):
            return ("float16",)
        return ("bfloat16", "float16")

    def autocast_problem(self, dtype: str) -> str | None:
        problem = super().autocast_problem(dtype)
        if problem is None and dtype == "bfloat16":
            newer = getattr(self._backend(), "is_macos_or_newer", None)
            if newer is not None and not newer(14, 0):
                return "In MPS autocast, but the target dtype torch.bfloat16 is not supported on macOS versions below 14."
        return problem


_KINDS = {"cpu": CpuDevice, "cuda": CudaDevice, "mps": MpsDevice}


class UnknownDevice(Device):
    kind = "unknown"

    def unavailable_reason(self) -> str | None:
        return f"unknown device {self.device!r}"

    def name(self, cpu_model: str) -> str | None:
        return None


def get(device: str, torch_module: Any = None) -> Device:
    """The Device object of 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    return _KINDS.get(device_type(device), UnknownDevice)(device, torch_module)


# -- module-level helpers kept for callers of the earlier function API -------------------------


def unavailable_reason(device: str) -> str | None:
    """None if the device can run here, else a sentence saying why not."""
    return get(device).unavailable_reason()


def synchronize(device: str) -> None:
    """Wait until every kernel queued on the device has finished (accelerators are async)."""
    get(device).synchronize()


def is_oom(exc: BaseException) -> bool:
    return statuses.status_of(exc) == "oom"


def status_of(exc: BaseException, device: str | None = None) -> str:
    """Map an exception raised inside a cell to its status."""
    return statuses.status_of(exc, device_type(device) if device else None)


def release_memory(device: str) -> None:
    """Return cached allocator blocks after a failure (e.g. OOM)."""
    get(device).release_memory()


def device_name(device: str, cpu_model: str) -> str | None:
    """GPU name, the Apple chip's GPU for mps, the CPU model for cpu; None where absent."""
    return get(device).name(cpu_model)


def apple_gpu_cores() -> int | None:
    from speedatlas.measure.hardware import darwin

    return darwin.gpu_core_count()


def default_threads() -> int:
    """What `cpu_threads: 0` means: the thread policy of this host.

    macOS on Apple Silicon: the performance cores only (hw.perflevel0.physicalcpu), which is
    torch's own default there (ATen's intraop_default_num_threads, aten/src/ATen/ParallelCommon.cpp):
    a parallel op waits for its slowest thread, and an efficiency core holds every one back.
    Elsewhere: all cores this process may use (respects cgroups/affinity, e.g. a SLURM allocation).

    Snakemake exports OMP_NUM_THREADS=<job threads> (1 with --cores 1), which would silently
    handicap the CPU in a CPU-vs-GPU comparison, so the runner always sets the count itself.
    """
    if sys.platform == "darwin":
        from speedatlas.measure.hardware import darwin

        performance = darwin.cpu_cores().get("cpu_performance_cores")
        if performance:
            return int(performance)
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def cudnn_benchmark(device: str) -> bool | None:
    """torch.backends.cudnn.benchmark (cuDNN autotuning: the first steps of each shape try
    kernels) on a cuda cell; None elsewhere. Recorded, because it changes what warm-up does."""
    if device_type(device) != "cuda":
        return None
    import torch

    return bool(torch.backends.cudnn.benchmark)
