"""Which MLX device a study device means, and what MLX's failures mean for a cell's status.

    study device   MLX device                     needs
    cpu            mx.Device(mx.cpu, 0)           any MLX (on Linux the `mlx-cpu` backend)
    mps            mx.Device(mx.gpu, 0), Metal    macOS on Apple Silicon (`mlx-metal`)
    cuda[:N]       mx.Device(mx.gpu, N), CUDA     Linux with an NVIDIA driver (`mlx-cuda-12/13`)

A device MLX cannot use here is the cell's `unavailable` status with the reason. Every function
takes the `mlx.core` module as an argument, so the tests can hand in a fake one: this machine has
no Mac and no GPU (docs/mlx.md lists what only a Mac can show).

Availability: mx.metal.is_available(), mx.cuda.is_available() (python/src/metal.cpp, cuda.cpp) and
mx.device_count(mx.gpu) (mlx/device.cpp: is_available(Device) = backend present and index < count).
"""

from __future__ import annotations

import platform
from typing import Any

from speedatlas.measure.hardware import error_status

# MLX's own messages for memory it could not get (C++ runtime_error texts, lowercased):
#   mlx/backend/metal/allocator.cpp: "[metal::malloc] Attempting to allocate N bytes which is
#     greater than the maximum allowed buffer size of M bytes."
#   mlx/backend/metal/device.cpp: "[METAL] Command buffer execution failed: Insufficient Memory
#     (00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)." (Metal's localizedDescription)
#   mlx/backend/cuda/allocator.cpp, mlx/allocator.cpp: "[malloc] Unable to allocate N bytes."
OOM_MESSAGES = (
    "greater than the maximum allowed buffer size",
    "insufficient memory",
    "outofmemory",
    "unable to allocate",
)

INSTALL_HINT = {
    "mps": "MLX's Metal backend needs macOS on Apple Silicon (pip install mlx)",
    "cuda": "MLX's CUDA backend needs Linux with an NVIDIA driver (pip install 'mlx[cuda13]' or 'mlx[cuda12]')",
}


def gpu_backend(mx: Any) -> str | None:
    """'metal', 'cuda' or None: the GPU backend this MLX build runs."""
    for name in ("metal", "cuda"):
        module = getattr(mx, name, None)
        try:
            if module is not None and module.is_available():
                return name
        except Exception:  # noqa: BLE001 - a backend that cannot even say is not there
            continue
    return None


def gpu_count(mx: Any) -> int:
    try:
        return int(mx.device_count(mx.gpu))
    except Exception:  # noqa: BLE001 - MLX before device_count: one GPU when a backend exists
        return 1


def describe(mx: Any) -> str:
    """'mlx 0.32.4 on Linux x86_64, no GPU backend' (the context of an unavailable reason)."""
    backend = gpu_backend(mx)
    where = f"{platform.system()} {platform.machine()}"
    return f"mlx {getattr(mx, '__version__', '?')} on {where}, " + (f"{backend} backend" if backend else "no GPU backend")


def resolve(study_device: str, mx: Any) -> tuple[Any, str, str | None]:
    """(mx.Device or None, the mlx_device label, the unavailable reason or None)."""
    kind, _, index_text = study_device.partition(":")
    index = int(index_text or 0)
    if kind == "cpu":
        return mx.Device(mx.cpu, 0), "cpu:0", None
    wanted = {"mps": "metal", "cuda": "cuda"}[kind]
    backend = gpu_backend(mx)
    if backend != wanted:
        found = f"this MLX runs on {backend}" if backend else "this MLX has no GPU backend"
        reason = (f"study device {study_device} maps to MLX's {wanted.capitalize() if wanted == 'metal' else 'CUDA'} "
                  f"GPU, and {found} ({describe(mx)}); {INSTALL_HINT[kind]}")
        return None, "", reason
    count = gpu_count(mx)
    if index >= count:
        return None, "", f"MLX sees {count} {backend} GPU(s), so study device {study_device} is not one ({describe(mx)})"
    return mx.Device(mx.gpu, index), f"gpu:{index} ({backend})", None


def device_label(mx: Any, device: Any, label: str) -> str:
    """The mlx_device column: 'gpu:0 (metal, Apple M1 Max)', 'cpu:0 (AMD EPYC)' where MLX names it."""
    try:
        name = mx.device_info(device).get("device_name")
    except Exception:  # noqa: BLE001 - an older MLX, or a backend without device_info
        name = None
    if not name:
        return label
    return label[:-1] + f", {name})" if label.endswith(")") else f"{label} ({name})"


def import_reason(error: BaseException) -> str:
    """Why MLX cannot be imported in the cell's environment, with what to do about it."""
    text = f"{type(error).__name__}: {error}"
    hint = "install MLX into the interpreter running snakemake, or let the pipeline build its MLX environment (docs/mlx.md)"
    if ".so" in str(error):
        hint = ("MLX's CUDA backend needs the CUDA 13 libraries on LD_LIBRARY_PATH, e.g. torch's "
                "site-packages/nvidia/*/lib (docs/mlx.md, 'CUDA')")
    return f"MLX cannot be imported in this cell's environment ({text}); {hint}"


def status_of(exc: BaseException) -> str:
    """oom, unsupported or error for an exception of an MLX cell: MLX's allocation failures are
    oom, everything else as torch cells classify it (speedatlas.measure.hardware.error_status)."""
    texts = [str(link).lower() for link in error_status.chain(exc)]
    if any(message in text for text in texts for message in OOM_MESSAGES):
        return "oom"
    return error_status.status_of(exc)
