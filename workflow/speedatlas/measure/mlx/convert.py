"""The seeded torch model's weights, as the MLX port's parameters.

Names: the ports use torch's module names (speedatlas.measure.mlx.resnet and .transformers), so a
state_dict key is the MLX parameter path. Layouts: torch convolution weights are
(out, in, kH, kW); MLX's are channels-last, (out, kH, kW, in) (mlx/nn/layers/convolution.py,
Conv2d.__init__), so 4-d weights are transposed by CONV_LAYOUT. Linear and Embedding weights have
the same layout in both. BatchNorm's `num_batches_tracked` has no MLX counterpart (MLX's
BatchNorm uses a fixed momentum, as torch's does by default) and a tied weight (GPT-2's head)
exists once in MLX.

Runner side: torch and numpy only (no mlx here: the arrays become mx.array in the workload).
"""

from __future__ import annotations

import numpy as np
import torch

# torch (out, in, kH, kW) -> MLX (out, kH, kW, in)
CONV_LAYOUT = (0, 2, 3, 1)
# Keys of torch's state_dict that name a weight stored elsewhere in the MLX port.
TIED = {"gpt2_small": {"head.weight": "tokens.weight"}}


class WeightMismatch(ValueError):
    """The torch model and the MLX port do not have the same parameters."""


def torch_weights(model: torch.nn.Module, name: str, layout: tuple[int, ...] = CONV_LAYOUT) -> dict[str, np.ndarray]:
    """Every parameter and buffer the MLX port needs, as float32 numpy arrays in MLX's layout.

    `layout` is the permutation applied to 4-d (convolution) weights; the tests pass a wrong one
    to prove that the parity check catches it.
    """
    tied = TIED.get(name, {})
    state = model.state_dict()
    out: dict[str, np.ndarray] = {}
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key in tied:
            if not torch.equal(tensor, state[tied[key]]):
                raise WeightMismatch(f"{key} is expected to be tied to {tied[key]} but differs from it")
            continue
        array = tensor.detach().to("cpu", torch.float32).numpy()
        out[key] = np.ascontiguousarray(array.transpose(layout) if array.ndim == 4 else array)
    return out


def check_same_names(expected: dict[str, tuple[int, ...]], given: dict[str, np.ndarray]) -> None:
    """Raise WeightMismatch naming what is missing, extra or of another shape."""
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    shapes = sorted(k for k in set(expected) & set(given) if tuple(expected[k]) != tuple(given[k].shape))
    problems = []
    if missing:
        problems.append(f"the MLX port has parameters torch lacks: {missing[:5]}")
    if extra:
        problems.append(f"torch has parameters the MLX port lacks: {extra[:5]}")
    if shapes:
        key = shapes[0]
        problems.append(f"{len(shapes)} shapes differ, e.g. {key}: MLX {tuple(expected[key])}, torch {given[key].shape}")
    if problems:
        raise WeightMismatch("; ".join(problems))
