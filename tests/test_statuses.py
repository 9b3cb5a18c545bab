"""Failure statuses from PyTorch's exact messages (tests/fixtures/macos/torch_mps_messages.txt)."""

from __future__ import annotations

import pytest
import torch
from macos_fixtures import message_blocks

from speedatlas.measure.hardware import devices, error_status as statuses
from speedatlas.measure.protocol.rows import error_text

BLOCKS = message_blocks()


def _exception(text: str) -> BaseException:
    """The recorded line as the exception torch raised ('RuntimeError: ...' -> RuntimeError)."""
    line = text.strip().splitlines()[0]
    for cls in (RuntimeError, TypeError):
        if line.startswith(cls.__name__ + ": "):
            return cls(line[len(cls.__name__) + 2:])
    return RuntimeError(line)


@pytest.mark.parametrize("block", [4, 5, 6])
def test_mps_out_of_memory_is_oom(block):
    assert devices.get("mps").status_of(_exception(BLOCKS[block])) == "oom"


def test_invalid_buffer_size_is_oom():
    # aten/src/ATen/mps/MPSAllocator.mm: TORCH_CHECK(size < m_max_buffer_size, "Invalid buffer size: ", ...)
    assert devices.get("mps").status_of(RuntimeError("Invalid buffer size: 5.00 GB")) == "oom"


def test_bfloat16_before_macos_14_is_unsupported():
    exc = _exception(BLOCKS[9])
    assert isinstance(exc, TypeError) and str(exc) == "MPS BFloat16 is only supported on MacOS 14 or newer"
    assert devices.get("mps").status_of(exc) == "unsupported"


@pytest.mark.parametrize(
    "message",
    [
        "Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64. "
        "Please use float32 instead.",
        "Trying to convert Double to the MPS backend but it does not have support for that dtype.",
        "Device mps not supported",
        "Torch not compiled with CUDA enabled",
    ],
)
def test_mps_unsupported_messages(message):
    assert devices.get("mps").status_of(RuntimeError(message)) == "unsupported"


def _compile_failure(cause: BaseException) -> BaseException:
    """What torch._dynamo raises: BackendCompilerFailed(...) from the real error."""

    class BackendCompilerFailed(RuntimeError):
        pass

    try:
        try:
            raise cause
        except Exception as inner:
            raise BackendCompilerFailed(f"backend='inductor' raised:\n{type(inner).__name__}: {inner}") from inner
    except BackendCompilerFailed as outer:
        return outer


def test_inductor_failure_on_mps_is_unsupported_and_keeps_its_cause():
    exc = _compile_failure(AssertionError("some lowering has no mps kernel"))
    assert devices.get("mps").status_of(exc) == "unsupported"
    assert devices.get("cuda").status_of(exc) == "error"  # on CUDA a compile failure is a bug to see
    text = error_text(exc)
    assert text.startswith("AssertionError: some lowering has no mps kernel")
    assert "[raised as BackendCompilerFailed]" in text


def test_a_chained_oom_is_oom():
    exc = _compile_failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert statuses.status_of(exc, "cuda") == "oom"
    assert statuses.innermost(exc).__class__ is torch.OutOfMemoryError


def test_autocast_warning_texts_of_every_torch_version_are_unsupported():
    # The exact strings of torch/amp/autocast_mode.py's mps branch, 2.5.1 .. 2.8.0 and newest.
    texts = [BLOCKS[7], BLOCKS[8],
             "In MPS autocast, but the target dtype torch.bfloat16 is not supported on macOS versions below 14. "
             "Disabling autocast."]
    for text in texts:
        assert statuses.status_of(RuntimeError(text.split("UserWarning: ", 1)[-1]), "mps") == "unsupported"


def test_plain_errors_stay_errors():
    assert devices.get("mps").status_of(ValueError("Expected more than 1 value per channel when training")) == "error"
