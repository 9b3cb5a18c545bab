"""A failed cell's status, from the exception it raised: oom | unsupported | error.

The messages matched here are PyTorch's own (tests/fixtures/macos/torch_mps_messages.txt holds
recorded examples, tests/test_statuses.py checks each one):

oom
  - torch.OutOfMemoryError (torch >= 2.5) / torch.cuda.OutOfMemoryError: "CUDA out of memory"
  - "MPS backend out of memory (MPS allocated: ..., max allowed: ...)": a plain RuntimeError
    raised by aten/src/ATen/mps/MPSAllocator.mm when an allocation passes the high watermark
  - "Invalid buffer size: 5.00 GB": MPSAllocator.mm, an allocation larger than the Metal
    device's maxBufferLength (one buffer too large for the GPU, not a bug of the model)
unsupported
  - "MPS BFloat16 is only supported on MacOS 14 or newer" (aten/src/ATen/mps, raised as
    TypeError when a bfloat16 tensor reaches mps on macOS 13)
  - "... to the MPS backend but it does not have support for that dtype." and "... as the MPS
    framework doesn't support float64" (float64 and other dtypes Metal lacks)
  - torch.compile on mps: "Device mps not supported", "Torch not compiled with CUDA enabled"
    (inductor picking a CUDA code path), and any BackendCompilerFailed ("backend='inductor'
    raised:") on mps: inductor's mps backend is incomplete in the torch versions we run
  - autocast that would silently run in float32 (compute_dtype.UnsupportedComputeDtype)
  - the generic "not implemented for 'Half'", "not supported", ... hints below

A chained exception (`raise X from Y`, or an exception raised while handling another) is judged
on every message of its chain, and `innermost()` gives the root cause for the cell's `error`
text: torch.compile wraps the real failure as "backend='inductor' raised:" + the cause's text.

Runner side: standard library only (torch is passed in where a class check needs it).
"""

from __future__ import annotations

from typing import Any

_OOM_MESSAGES = (
    "out of memory",  # "CUDA out of memory", "MPS backend out of memory"
    "invalid buffer size",  # MPSAllocator.mm: larger than the device's maxBufferLength
)

_UNSUPPORTED_MESSAGES = (
    "mps bfloat16 is only supported on macos 14 or newer",
    "does not have support for that dtype",
    "mps framework doesn't support",  # "Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64"
    "device mps not supported",
    "torch not compiled with cuda enabled",
    "autocast, but the target dtype",  # torch/amp/autocast_mode.py's "Disabling autocast" warning
    "not implemented for",
    "not supported",
    "unsupported",
    "is not currently implemented",
    "currently only supports",
    "not yet supported",  # torch 2.0: "Python 3.11+ not yet supported for torch.compile"
    "only support ",  # torch 2.0: "AutocastCPU only support Bfloat16 as the autocast_cpu_dtype"
)

# torch._dynamo.exc.BackendCompilerFailed's message starts with this (torch/_dynamo/exc.py).
_COMPILE_FAILURE = "backend='inductor' raised"


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (cycles cut)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return seen


def innermost(exc: BaseException) -> BaseException:
    """The root cause of a chained exception (the exception itself when it has none)."""
    return chain(exc)[-1]


def _oom_classes(torch_module: Any) -> tuple[type, ...]:
    if torch_module is None:
        return ()
    return tuple(
        cls
        for cls in (getattr(torch_module, "OutOfMemoryError", None),
                    getattr(getattr(torch_module, "cuda", None), "OutOfMemoryError", None))
        if isinstance(cls, type)
    )


def status_of(exc: BaseException, device_kind: str | None = None, torch_module: Any = None) -> str:
    """oom, unsupported or error for an exception raised inside a cell on `device_kind`."""
    if torch_module is None:
        import sys

        torch_module = sys.modules.get("torch")
    links = chain(exc)
    texts = [str(link).lower() for link in links]
    oom_classes = _oom_classes(torch_module)
    if any(isinstance(link, oom_classes) for link in links) or any(m in t for t in texts for m in _OOM_MESSAGES):
        return "oom"
    if any(getattr(link, "speedatlas_status", None) == "unsupported" for link in links):
        return "unsupported"
    if any(isinstance(link, NotImplementedError) for link in links):
        return "unsupported"
    if any(m in t for t in texts for m in _UNSUPPORTED_MESSAGES):
        return "unsupported"
    compile_failed = any(type(link).__name__ == "BackendCompilerFailed" or _COMPILE_FAILURE in t
                         for link, t in zip(links, texts))
    if device_kind == "mps" and compile_failed:
        return "unsupported"
    return "error"
