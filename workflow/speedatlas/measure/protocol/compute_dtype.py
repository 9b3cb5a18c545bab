"""Which dtype a cell's model really computed in, and which ops silently ran on the CPU.

torch.autocast never fails for a dtype it cannot do: it warns "... Disabling autocast" and the
model runs in float32 (torch/amp/autocast_mode.py, autocast.__init__: torch 2.5's mps branch
accepts only float16; 2.6-2.8 refuse bfloat16 below macOS 14; every device refuses dtypes outside
device_supported_dtypes). A "bfloat16" cell would then time float32 and be reported ok. So every
cell records, after its first untimed step, the dtype its Conv/Linear layers produced
(`compute_dtype`), and a mismatch with the requested dtype makes the cell `unsupported`, with
the captured warning as its error.

Likewise ops missing on mps fall back to the CPU with one warning per process
(aten/src/ATen/mps/MPSFallback.mm: "The operator 'aten::X' is not currently supported on the
MPS backend and will fall back to run on the CPU."); `cpu_fallback_ops` lists them per cell.

Runner side: standard library and torch only.
"""

from __future__ import annotations

import collections
import json
import re
import warnings
from collections.abc import Callable

import torch

# Layers whose output dtype is the compute dtype: autocast runs conv/linear/matmul in the lower
# precision on every device (the "lower_precision_fp" op lists of autocast_mode.cpp).
_LEAVES = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)

_FALLBACK = re.compile(r"The operator '([^']+)' is not currently supported on the MPS backend")
_AUTOCAST = re.compile(r"autocast", re.IGNORECASE)


class UnsupportedComputeDtype(RuntimeError):
    """The model computed in another dtype than the cell asked for."""

    speedatlas_status = "unsupported"  # error_status.status_of reads this


class DtypeRecorder:
    """Forward hooks on the model's Conv/Linear leaves that count their output dtypes."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._handles: list = []

    def attach(self, model: torch.nn.Module) -> "DtypeRecorder":
        for module in model.modules():
            if isinstance(module, _LEAVES):
                self._handles.append(module.register_forward_hook(self._hook))
        return self

    def _hook(self, module, inputs, output) -> None:
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            self.counts[str(output.dtype).removeprefix("torch.")] += 1

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def compute_dtype(self) -> str | None:
        """The dtype most Conv/Linear outputs had; None when no such layer ran."""
        return self.counts.most_common(1)[0][0] if self.counts else None


def check(requested: str, computed: str | None, captured: list[str]) -> None:
    """Raise UnsupportedComputeDtype when the model computed in another dtype than requested."""
    if computed is None or computed == requested:
        return
    said = [text for text in captured if _AUTOCAST.search(text)]
    why = " ".join(said[0].split()) if said else "no warning was raised"
    raise UnsupportedComputeDtype(f"asked for {requested}, the model computed in {computed}: {why}")


class WarningLog:
    """Every distinct warning raised while the cell runs (also the once-per-process C++ ones
    that torch turns into Python warnings), in order."""

    def __init__(self, caught: list) -> None:
        self._caught = caught

    @property
    def messages(self) -> list[str]:
        return list(dict.fromkeys(str(item.message) for item in self._caught))

    def fallback_ops(self) -> list[str]:
        return cpu_fallback_ops(self.messages)

    def fallback_ops_json(self) -> str:
        """The cpu_fallback_ops column: a JSON list, '[]' when none."""
        return json.dumps(self.fallback_ops())


class WarningCapture(WarningLog):
    """Records every warning from start() to stop(), then shows each distinct one once in the
    cell's log. Not a context manager on purpose: the runner starts it before its `try` and stops
    it in both branches, so the measured block keeps its place (and its diff stays small)."""

    def __init__(self) -> None:
        super().__init__([])
        self._catcher: warnings.catch_warnings | None = None

    def start(self) -> "WarningCapture":
        self._catcher = warnings.catch_warnings(record=True)
        self._caught = self._catcher.__enter__()
        # "default": each distinct warning is recorded once per code location, so a warning
        # raised on every step costs a registry lookup in the timed region, not a new record.
        warnings.simplefilter("default")
        return self

    def stop(self) -> None:
        if self._catcher is None:
            return
        messages = self.messages
        self._catcher.__exit__(None, None, None)
        self._catcher = None
        self._caught = [warnings.WarningMessage(text, UserWarning, "", 0) for text in messages]
        for text in messages:
            warnings.warn(text, UserWarning, stacklevel=2)


def capture() -> WarningCapture:
    """Start recording the warnings of a cell (stop() ends it)."""
    return WarningCapture().start()


def cpu_fallback_ops(messages: list[str]) -> list[str]:
    """'aten::X' names from MPS CPU-fallback warnings, sorted, each once."""
    return sorted({match.group(1) for text in messages for match in _FALLBACK.finditer(text)})


def first_step_check(eager: torch.nn.Module, images: torch.Tensor, spec: dict, autocast, log: WarningLog,
                     out: dict) -> Callable[[], None]:
    """The `after_first` callback of timing.run for one cell.

    eager / channels_last: hooks on the model record its first (untimed) step, then come off,
    so no timed step carries them. compile: hooks inside the compiled graph would be traced into
    it, so the first step runs unhooked and one extra untimed forward of the eager module (same
    inputs, same autocast, eval mode so no BatchNorm statistics move) is recorded instead.
    Writes out["compute_dtype"]; raises UnsupportedComputeDtype on a mismatch.
    """
    recorder = DtypeRecorder()
    compiled = spec["variant"] == "compile"
    if not compiled:
        recorder.attach(eager)

    def after_first() -> None:
        if compiled:
            recorder.attach(eager)
            was_training = eager.training
            eager.eval()
            try:
                with torch.no_grad(), autocast():
                    eager(images)
            finally:
                eager.train(was_training)
        recorder.detach()
        out["compute_dtype"] = recorder.compute_dtype()
        check(spec["dtype"], out["compute_dtype"], log.messages)

    return after_first
