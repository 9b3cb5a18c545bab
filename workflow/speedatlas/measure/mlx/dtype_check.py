"""Which dtype the MLX port really computed in (the cell's `compute_dtype`).

MLX has no autocast and casts silently: an op's result takes the promoted dtype of its inputs,
so one float32 array left among bfloat16 parameters would make the layers compute in float32 and
the cell would time float32 while calling itself bfloat16. As torch cells do
(speedatlas.measure.protocol.compute_dtype), the check records the dtype that the model's
Linear and Conv layers produced in one untimed forward after the first step and compares it with
the requested dtype; a mismatch is the cell's `unsupported` status.

MLX modules have no forward hooks: the recorder swaps each Linear/Conv instance's class for a
subclass that counts its output dtype, and swaps it back afterwards (instances are plain Python
objects; the compiled step is never traced through the recorder).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import mlx.nn as nn

_LEAVES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def dtype_name(dtype: Any) -> str:
    """'mlx.core.bfloat16' -> 'bfloat16' (torch cells' spelling)."""
    return str(dtype).rsplit(".", 1)[-1]


@contextmanager
def recording(model: nn.Module) -> Iterator[collections.Counter]:
    """Count the output dtypes of the model's Linear/Conv layers while inside the block."""
    counts: collections.Counter[str] = collections.Counter()
    swapped: list[tuple[nn.Module, type]] = []
    subclasses: dict[type, type] = {}

    def recorder_for(cls: type) -> type:
        if cls not in subclasses:
            def __call__(self, x, _cls=cls):
                out = _cls.__call__(self, x)
                counts[dtype_name(out.dtype)] += 1
                return out

            subclasses[cls] = type(f"Recorded{cls.__name__}", (cls,), {"__call__": __call__})
        return subclasses[cls]

    for _, module in model.named_modules():
        if isinstance(module, _LEAVES):
            swapped.append((module, type(module)))
            module.__class__ = recorder_for(type(module))
    try:
        yield counts
    finally:
        for module, cls in swapped:
            module.__class__ = cls


def compute_dtype(model: nn.Module, forward: Callable[[], mx.array]) -> str | None:
    """The dtype most Linear/Conv outputs had in one inference forward (None: no such layer ran).

    The model is put in eval mode for the forward (no BatchNorm statistics move, no dropout) and
    back in its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with recording(model) as counts:
            mx.eval(forward())
    finally:
        model.train(was_training)
    return counts.most_common(1)[0][0] if counts else None
