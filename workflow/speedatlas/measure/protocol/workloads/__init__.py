"""Workloads: what a cell does between its set-up and its rows. The runner looks one up by name.

Each workload is a module with one function,

    measure(spec: dict, base: dict, start: CellStart) -> list[dict]

that builds what it needs on `spec["device"]`, times it (warm-up never timed, every timed region
closed by a device synchronize) and returns one row per timed repeat, or one row with a status
other than "ok" when the cell cannot run. `base` already holds the key columns and the
environment. A new workload is a new module here plus its name in WORKLOADS (and the config schema).

Synthetic cells of a variant that runs in another framework (MLX: `mlx`, `mlx_compile`) are
timed by that framework's module, found by the variant's name in VARIANT_WORKLOADS: the runner
and the torch workloads never import it, and a torch cell never imports MLX.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

WORKLOADS = {
    "synthetic": "speedatlas.measure.protocol.workloads.synthetic",
    "mnist_epoch": "speedatlas.measure.protocol.workloads.mnist_epoch",
}
# Variants of the synthetic workload that another framework runs (same interface as a workload).
VARIANT_WORKLOADS = {
    "mlx": "speedatlas.measure.mlx.workload",
    "mlx_compile": "speedatlas.measure.mlx.workload",
}


@dataclass(frozen=True)
class CellStart:
    """When and how the cell's process started, so set-up time is measured from the right moment."""

    process_t0: float  # time.perf_counter() at the process start (a forked cell: at the fork)
    launcher: str  # "process" or "forkserver"
    lock_wait_s: float = 0.0  # time spent waiting for the machine lock, not part of set-up


def get(name: str) -> ModuleType:
    """The workload's module, imported on first use (a synthetic cell never imports the MNIST code)."""
    try:
        return importlib.import_module(WORKLOADS[name])
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}") from None


def for_variant(variant: str) -> ModuleType | None:
    """The module that times synthetic cells of this variant, if not the torch workload itself."""
    name = VARIANT_WORKLOADS.get(variant)
    return importlib.import_module(name) if name else None
