"""Everything device-specific in one place: availability, synchronisation, memory, errors.

Runner side: standard library and torch only. Works on torch 2.0 and newer, so optional
APIs are looked up with getattr.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
from typing import Any

import torch


def device_type(device: str) -> str:
    """'cuda:1' -> 'cuda' (what torch.autocast and the memory APIs take)."""
    return device.split(":", 1)[0]


def unavailable_reason(device: str) -> str | None:
    """None if the device can run here, else a sentence saying why not."""
    kind = device_type(device)
    if kind == "cpu":
        return None
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = torch.version.cuda
            why = "this torch build has no CUDA support" if build is None else "no CUDA GPU is visible"
            return f"cuda is not available: {why} (torch {torch.__version__})"
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            return f"{device} is not available: only {torch.cuda.device_count()} CUDA device(s) visible"
        return None
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_built():
            return f"mps is not available: this torch build has no MPS support (torch {torch.__version__}, {sys.platform})"
        if not mps.is_available():
            return "mps is not available: it needs macOS 12.3+ on Apple Silicon or an AMD GPU"
        return None
    return f"unknown device {device!r}"


def synchronize(device: str) -> None:
    """Wait until every kernel queued on the device has finished (accelerators are async)."""
    kind = device_type(device)
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def _rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class MemoryProbe:
    """Peak memory of the measured work: CUDA max allocated, MPS driver allocated, CPU RSS growth."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.kind = device_type(device)
        self.rss_before = _rss_bytes()
        if self.kind == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def peak_bytes(self) -> int | None:
        if self.kind == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.kind == "mps":
            driver = getattr(torch.mps, "driver_allocated_memory", None)
            return int(driver()) if driver else None
        return max(0, _rss_bytes() - self.rss_before)


def is_oom(exc: BaseException) -> bool:
    """CUDA raises OutOfMemoryError (torch.OutOfMemoryError from 2.5); MPS a RuntimeError."""
    classes = tuple(
        cls
        for cls in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
        if cls is not None
    )
    text = str(exc).lower()
    return isinstance(exc, classes) or "out of memory" in text or "mps backend out of memory" in text


_UNSUPPORTED_HINTS = (
    "not implemented for",
    "not supported",
    "unsupported",
    "is not currently implemented",
    "currently only supports",
    "not yet supported",  # torch 2.0: "Python 3.11+ not yet supported for torch.compile"
    "only support ",  # torch 2.0: "AutocastCPU only support Bfloat16 as the autocast_cpu_dtype"
)


def classify(exc: BaseException) -> str:
    """Map an exception raised inside a cell to its status."""
    if is_oom(exc):
        return "oom"
    text = str(exc).lower()
    if isinstance(exc, NotImplementedError) or any(hint in text for hint in _UNSUPPORTED_HINTS):
        return "unsupported"
    return "error"


def release_memory(device: str) -> None:
    """Return cached allocator blocks after a failure (e.g. OOM)."""
    gc.collect()
    kind = device_type(device)
    if kind == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif kind == "mps" and hasattr(torch, "mps") and hasattr(torch.mps, "empty_cache"):
        try:
            torch.mps.empty_cache()
        except RuntimeError:
            pass


def device_name(device: str, cpu_model: str) -> str | None:
    """GPU name, the Apple chip for mps, the CPU model for cpu; None where the device is absent."""
    kind = device_type(device)
    if kind == "cpu":
        return cpu_model
    if unavailable_reason(device) is not None:
        return None
    if kind == "cuda":
        return torch.cuda.get_device_name(device)
    cores = apple_gpu_cores()
    return f"{cpu_model} GPU" + (f" ({cores} cores)" if cores else "")


def apple_gpu_cores() -> int | None:
    """GPU core count of an Apple chip (the M1 Max comes with 24 or 32), from the IORegistry."""
    import re
    import subprocess

    try:
        out = subprocess.run(
            ["ioreg", "-rc", "AGXAccelerator", "-d", "1"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'"gpu-core-count"\s*=\s*(\d+)', out)
    return int(match.group(1)) if match else None


def default_threads() -> int:
    """All cores this process may use (respects cgroups/affinity, e.g. a SLURM allocation).

    Snakemake exports OMP_NUM_THREADS=<job threads> (1 with --cores 1), which would silently
    handicap the CPU in a CPU-vs-GPU comparison, so the runner always sets the count itself.
    """
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)

