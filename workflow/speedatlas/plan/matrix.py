"""Expand a validated config into cells: one benchmark job each, with only its own settings.

Pure Python on purpose (no torch, no snakemake) so the expansion is unit-testable and fast on
matrices of ten thousand cells.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from speedatlas import cellkey
from speedatlas.measure.mlx import MLX_PROTOCOL_VERSION, is_mlx
from speedatlas.plan import model_entries
from speedatlas.plan.config import MODEL_OVERRIDES
from speedatlas.plan.torch_envs import CURRENT

# Bump when the measurement itself changes (what is timed, how it is synchronised, how inputs
# are made): every cell's params carry it, so Snakemake reruns exactly the affected cells.
# 2: warm-up lasts at least timing.warmup_seconds, the garbage collector is off in timed blocks,
# and a cell's processes are separate jobs spread over the study in rounds (issue 23).
PROTOCOL_VERSION = 2
# The same for the mnist_epoch workload only (it is part of those cells' `data` settings, so a
# change of the epoch protocol never reruns a synthetic cell).
EPOCH_PROTOCOL_VERSION = 1

@dataclass(frozen=True, order=True)
class Cell:
    """What one job measures: its key (the path) and its own settings (the params)."""

    machine: str
    workload: str
    torch: str
    device: str
    model: str
    dtype: str
    mode: str
    variant: str
    batch: int
    input_size: int
    num_classes: int
    warmup: int
    repeats: int
    steps_per_repeat: int
    cpu_threads: int
    seed: int
    # Canonical JSON of the input pipeline's settings (mnist_epoch only; "" for synthetic, and
    # then left out of the spec, so synthetic specs are what they were before workloads existed).
    data: str = ""
    # Canonical JSON of how many fresh processes the cell's samples come from (speedatlas.plan.
    # matrix.sampling): {"processes": P}, or the precision rule's {"precision", "pilot",
    # "max_processes", "max_seconds", "confidence"}.
    sampling: str = '{"processes": 1}'
    # The warm-up lasts at least this long as well as `warmup` steps (clocks, allocator caches
    # and autotuners settle by time, not by step count).
    warmup_seconds: float = 0.0
    # Canonical JSON of the energy settings (config `energy`); "" leaves them out of the spec.
    energy: str = ""
    # Canonical JSON of what builds a model that is not torchvision's (a built-in transformer or
    # a factory with its file's sha256, its args and its input; speedatlas.plan.model_entries); "" for
    # torchvision models, then left out of the spec, so their specs are unchanged.
    model_source: str = ""
    # Canonical JSON of what an MLX cell's measurement depends on beyond the torch cell's settings
    # ({"protocol": MLX_PROTOCOL_VERSION}); "" for torch cells, then left out of the spec.
    mlx: str = ""
    # timing.time_limit_seconds: how long each process of the cell may hold the timing lock; 0 =
    # derived from the cell's settings by the supervisor (speedatlas.measure.process.time_limit),
    # then left out of the spec, so specs are what they were before the limit existed.
    time_limit_seconds: float = 0.0

    @property
    def key(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in cellkey.KEYS}

    @cached_property  # read some ten times per cell while the plan is built: 0.5 s at 10,800 cells
    def path(self) -> str:
        return cellkey.cell_path(self.key)

    @property
    def sampling_rule(self) -> dict[str, Any]:
        return json.loads(self.sampling)

    @property
    def process_jobs(self) -> int:
        """Process jobs of the cell: the fixed count, or the precision rule's most."""
        return cellkey.most_processes(self.sampling_rule)

    @property
    def pilot(self) -> int:
        """Processes that always run (the precision rule's pilot; every process of a fixed count)."""
        return cellkey.pilot_of(self.sampling_rule)

    def _measurement(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in _CELL_FIELDS}  # asdict() deep-copies: 3x slower
        del fields["sampling"]
        for name in ("data", "energy", "model_source", "mlx"):
            value = fields.pop(name)
            if value:
                fields[name] = json.loads(value)
        if not fields["time_limit_seconds"]:
            del fields["time_limit_seconds"]
        return {**fields, "protocol": PROTOCOL_VERSION}

    def spec(self) -> str:
        """Canonical JSON of everything that determines the cell (the params of its cell file):
        what each process measures, and how many processes the cell takes.

        Sorted keys, so the string (and with it Snakemake's params trigger) only changes when
        a value does.
        """
        return json.dumps({**self._measurement(), "sampling": self.sampling_rule}, sort_keys=True)

    def process_spec(self, process: int) -> str:
        """Canonical JSON of what process `process` of the cell measures (its job's params;
        cellkey.process_spec: a process after the pilot carries the precision rule)."""
        return json.dumps(cellkey.process_spec(json.loads(self.spec()), process), sort_keys=True)


_CELL_FIELDS = tuple(field.name for field in fields(Cell))


def epoch_settings(workload: str, batch: int, timing: dict[str, int], data: dict[str, Any]) -> dict[str, Any]:
    """warmup/repeats/steps_per_repeat/data of a cell of this workload.

    synthetic: the timing block as configured. mnist_epoch: one timed block is one epoch, so
    steps_per_repeat = steps in an epoch (the last batch may be partial, as in the seed),
    repeats = timed epochs, warmup = the steps of the one untimed warm-up epoch; `data` holds
    what else changes the measurement (where the images come from, how many, the workers).
    """
    if workload != "mnist_epoch":
        return {"warmup": timing["warmup"], "repeats": timing["repeats"],
                "steps_per_repeat": timing["steps_per_repeat"], "data": ""}
    steps = math.ceil(data["images"] / batch)
    pipeline = {
        "mnist_root": data["mnist_root"],
        "download": data["download"],
        "images": data["images"],
        "num_workers": data["num_workers"],
        "persistent_workers": data.get("persistent_workers", True),
        "epoch_protocol": EPOCH_PROTOCOL_VERSION,
    }
    return {"warmup": steps, "repeats": data["epochs"], "steps_per_repeat": steps,
            "data": json.dumps(pipeline, sort_keys=True)}


def _model_settings(entry: str | dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Study-wide settings with a model's own overrides on top."""
    overrides = {} if isinstance(entry, str) else entry
    settings = {key: overrides.get(key, config[key]) for key in MODEL_OVERRIDES}
    settings["timing"] = overrides.get("timing", {})
    settings["name"] = entry if isinstance(entry, str) else entry["name"]
    return settings


def sampling(workload: str, timing: dict[str, Any], confidence: float) -> str:
    """How many processes a cell takes, as canonical JSON (the Cell's `sampling`).

    Synthetic cells take the precision rule (speedatlas.measure.protocol.precision) while
    `timing.precision` is set, as it is by default: a pilot of `pilot_processes`, then as many
    processes as the pilot's spread asks for, within `max_processes` and `max_seconds`. With
    `precision: null`, and always for mnist_epoch cells (each process times whole epochs,
    seconds to minutes), a fixed count: `processes` (default 1).
    """
    if workload == "mnist_epoch" or timing.get("precision") is None:
        return json.dumps({"processes": timing.get("processes") or 1})
    pilot = timing["pilot_processes"]
    rule = {"precision": timing["precision"], "pilot": pilot, "max_processes": max(pilot, timing["max_processes"]),
            "max_seconds": timing.get("max_seconds"), "confidence": confidence}
    return json.dumps(rule, sort_keys=True)


# Up to this many cells, each process of a cell is a job of its own, run in rounds across the
# study; above it, one job per cell runs its processes back to back. Snakemake plans about 1.6 ms
# a job (a 10,800-cell study of 10 process jobs a cell: 195 s, 3.2 GB, measured on the 2-core
# machine), so rounds cost planning time in proportion; 1,000 cells stay under ~20 s.
ROUNDS_MAX_CELLS = 1000

# The precision wanted where the config names neither `precision` nor `processes`: see
# docs/timing.md for the measurements it was chosen from.
DEFAULT_PRECISION = 0.05


def _timing(config: dict[str, Any], device: str, model_timing: dict[str, Any]) -> dict[str, Any]:
    """Study timing, then the device's overrides (timing_by_device), then the model's.

    The most specific level that names `precision` or `processes` decides between the precision
    rule and a fixed count; where none does, the rule with DEFAULT_PRECISION.
    """
    timing: dict[str, Any] = {"precision": DEFAULT_PRECISION}
    for level in (config["timing"], config.get("timing_by_device", {}).get(device, {}), model_timing):
        if "processes" in level and "precision" not in level:
            timing["precision"] = None
        if level.get("precision") is not None:
            timing.pop("processes", None)
        timing.update(level)
    return timing


def expand(config: dict[str, Any], cwd: Path | None = None) -> list[Cell]:
    """All cells of a validated config, sorted, without duplicates.

    `cwd`: where relative factory files are (the working directory by default).
    """
    cells = set()
    for entry in config["models"]:
        s = _model_settings(entry, config)
        source = model_entries.model_source(entry, config, cwd or Path.cwd())
        size = model_entries.input_size(entry, config)
        axes = itertools.product(
            config["workload"],
            s["torch_versions"],
            s["devices"],
            s["dtypes"],
            s["modes"],
            s["variants"],
            s["batch_sizes"],
        )
        for workload, torch_version, device, dtype, mode, variant, batch in axes:
            if is_mlx(variant) and not mlx_cell_planned(workload, torch_version):
                continue
            timing = _timing(config, device, s["timing"])
            cells.add(
                Cell(
                    machine=config["machine"],
                    workload=workload,
                    torch=torch_version,
                    device=device,
                    model=s["name"],
                    dtype=dtype,
                    mode=mode,
                    variant=variant,
                    batch=int(batch),
                    input_size=size,
                    num_classes=s["num_classes"],
                    cpu_threads=s["cpu_threads"],
                    seed=config["seed"],
                    energy=json.dumps(config["energy"], sort_keys=True) if "energy" in config else "",
                    model_source=source,
                    sampling=sampling(workload, timing, config["confidence"]),
                    warmup_seconds=float(timing.get("warmup_seconds", 0.0)) if workload == "synthetic" else 0.0,
                    mlx=MLX_SETTINGS if is_mlx(variant) else "",
                    time_limit_seconds=float(timing.get("time_limit_seconds") or 0.0),
                    **epoch_settings(workload, int(batch), timing, config["data"]),
                )
            )
    return sorted(cells)


MLX_SETTINGS = json.dumps({"protocol": MLX_PROTOCOL_VERSION}, sort_keys=True)


def mlx_cell_planned(workload: str, torch_version: str) -> bool:
    """MLX cells time synthetic steps beside the torch that runs snakemake (`current`: the MLX
    environment sees that environment's packages, docs/mlx.md); the other torch versions and the
    mnist_epoch workload keep their torch variants only."""
    return workload == "synthetic" and torch_version == CURRENT


def processes_per_cell(config: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(torch version, processes per cell, cells) for every group of cells alike in both (the
    precision rule's cells count their pilot: the fewest processes they take), without
    making a cell: what size.py counts before expand() is asked to build them (milliseconds for
    72,000 cells, where expand takes seconds and a mistaken matrix could be far larger)."""
    groups: dict[tuple[str, int], int] = {}
    for entry in config["models"]:
        s = _model_settings(entry, config)
        per_device = len(s["dtypes"]) * len(s["modes"]) * len(s["variants"]) * len(s["batch_sizes"])
        for workload, torch_version, device in itertools.product(config["workload"], s["torch_versions"], s["devices"]):
            rule = json.loads(sampling(workload, _timing(config, device, s["timing"]), config["confidence"]))
            processes = rule.get("processes") or rule["pilot"]  # the precision rule: at least its pilot
            groups[(torch_version, processes)] = groups.get((torch_version, processes), 0) + per_device
    return [(torch_version, processes, cells) for (torch_version, processes), cells in groups.items()]


def index_by_path(cells: list[Cell]) -> dict[str, Cell]:
    """Map each cell's output path to the cell, for Snakemake's input functions."""
    return {cell.path: cell for cell in cells}


def wildcard_values(cells: list[Cell]) -> dict[str, list[str]]:
    """Every value each path key takes, to build wildcard_constraints from the config."""
    return {k: sorted({str(getattr(c, k)) for c in cells}) for k in cellkey.KEYS}
