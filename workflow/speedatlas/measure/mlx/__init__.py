"""The same model in Apple's MLX, beside its torch cell (issue 24): ports, parity, the workload.

An MLX cell is a synthetic cell of variant `mlx` (eager MLX) or `mlx_compile` (`mx.compile`).
The synthetic workload hands such cells to `speedatlas.measure.mlx.workload`, which builds the
seeded torch model, copies its weights into an MLX port of the same architecture, proves on one
input that both compute the same function (`parity`), and only then times MLX's step.

This package is the only place that imports `mlx` (an import-linter contract in pyproject.toml),
and only inside its submodules' functions or in modules that the workload imports after MLX is
known to be importable. The names below are plain data, so the plan side can read them without
MLX installed.
"""

from __future__ import annotations

# Values of the `variant` axis that run in MLX: eager, and compiled with mx.compile.
VARIANTS = ("mlx", "mlx_compile")
# Models with an MLX port: torchvision's ResNets and the built-in transformers.
MODELS = ("resnet18", "resnet50", "bert_base", "gpt2_small")
# Bump when what an MLX cell measures changes (the port, the parity check, the step): it is part
# of MLX cells' specs only, so torch cells never rerun for it.
MLX_PROTOCOL_VERSION = 1


def is_mlx(variant: str) -> bool:
    """True for the variants that run in MLX."""
    return variant in VARIANTS
