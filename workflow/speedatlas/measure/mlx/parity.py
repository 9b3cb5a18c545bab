"""Same function, proven per cell: the MLX port's output against torch's, before any timing.

Both get the same weights and the same input. Both run the inference forward (BatchNorm with its
running statistics, dropout off): that is the function the weights define, and it is
well-conditioned. (A training-mode forward normalises with the batch's own statistics; at the
small batches and 1x1 feature maps of quick studies those are a handful of values, and two correct
implementations then differ by tens of percent: resnet50 at 32 px, batch 2, differed by 0.39 on
this project's CPU with weights that agree to 1e-6 in inference.)

torch runs on the cell's device in the cell's dtype as its timed cell does (float16/bfloat16
under autocast); MLX runs in the cell's dtype (parameters and inputs cast, MLX has no autocast).
On CUDA, TF32 is turned off for torch's side (torch.backends.cuda.matmul.allow_tf32 and
torch.backends.cudnn.allow_tf32, restored afterwards), so torch's reference is full float32;
MLX's CUDA backend runs float32 matmuls and convolutions in TF32 by default (MLX_ENABLE_TF32,
mlx/utils.h; docs/src/usage/precision.rst), which the float32 tolerance on cuda allows for.

The figure: parity_max_rel_err = max |mlx - torch| / max |torch| over the output (logits), in
float64. A relative error per element would be dominated by logits near zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

# Largest parity_max_rel_err still counted as the same function, per dtype and device kind.
# float32: 1e-6 was measured for all four ports on a Linux CPU (tiny sizes); Metal and CUDA
# (TF32 on MLX's side) get more room. float16/bfloat16: both frameworks round to 11 / 8 bits
# along different paths (torch's autocast keeps norms and softmax in float32, MLX computes in the
# cast dtype): 1e-3 / 1e-2 were measured on the CPU. A broken port (a transposed kernel, a
# missing residual) differs by order 1.
TOLERANCE = {
    "float32": {"cpu": 1e-4, "mps": 1e-3, "cuda": 1e-2},
    "float16": {"cpu": 2e-2, "mps": 2e-2, "cuda": 2e-2},
    "bfloat16": {"cpu": 1e-1, "mps": 1e-1, "cuda": 1e-1},
}


class ParityError(RuntimeError):
    """The MLX port does not compute the torch model's function: the cell is an error, untimed."""

    speedatlas_status = "error"

    def __init__(self, error: float, tolerance: float, dtype: str, device: str) -> None:
        self.max_rel_err, self.tolerance = error, tolerance
        super().__init__(
            f"MLX port differs from torch: parity_max_rel_err {error:.3g} > tolerance {tolerance:g} "
            f"({dtype} on {device}); the cell was not timed"
        )


def tolerance(dtype: str, device: str) -> float:
    """The cell's tolerance (device 'cuda:1' counts as cuda)."""
    return TOLERANCE[dtype][device.split(":")[0]]


def max_rel_err(candidate: np.ndarray, reference: np.ndarray) -> float:
    """max |candidate - reference| / max |reference|, in float64; inf where shapes differ or a
    value is not finite (so such a port can never pass)."""
    candidate = np.asarray(candidate, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if candidate.shape != reference.shape:
        return float("inf")
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    error = float(np.max(np.abs(candidate - reference))) if reference.size else 0.0
    if not (np.isfinite(scale) and np.isfinite(error)):
        return float("inf")
    return error / scale if scale > 0 else (0.0 if error == 0 else float("inf"))


def check(candidate: np.ndarray, reference: np.ndarray, dtype: str, device: str) -> float:
    """The figure, or ParityError when it exceeds the tolerance."""
    error = max_rel_err(candidate, reference)
    limit = tolerance(dtype, device)
    if not error <= limit:
        raise ParityError(error, limit, dtype, device)
    return error


@contextlib.contextmanager
def full_float32(torch_module, device: str) -> Iterator[None]:
    """torch's CUDA float32 without TF32 for the reference forward, restored afterwards."""
    if device.split(":")[0] != "cuda":
        yield
        return
    backends = torch_module.backends
    saved = backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32
    backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = saved
