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
from speedatlas.plan import model_entries
from speedatlas.plan.config import MODEL_OVERRIDES

# Bump when the measurement itself changes (what is timed, how it is synchronised, how inputs
# are made): every cell's params carry it, so Snakemake reruns exactly the affected cells.
PROTOCOL_VERSION = 1
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
    # Fresh processes the cell's samples come from (timing.processes); left out of the spec at 1,
    # so cells of one process keep the spec (and the files) they had before the key existed.
    processes: int = 1
    # Canonical JSON of the energy settings (config `energy`); "" leaves them out of the spec.
    energy: str = ""
    # Canonical JSON of what builds a model that is not torchvision's (a built-in transformer or
    # a factory with its file's sha256, its args and its input; speedatlas.plan.model_entries); "" for
    # torchvision models, then left out of the spec, so their specs are unchanged.
    model_source: str = ""

    @property
    def key(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in cellkey.KEYS}

    @cached_property  # read some ten times per cell while the plan is built: 0.5 s at 10,800 cells
    def path(self) -> str:
        return cellkey.cell_path(self.key)

    def spec(self) -> str:
        """Canonical JSON of everything that determines the measurement (Snakemake params).

        Sorted keys, so the string (and with it Snakemake's params trigger) only changes when
        a value does.
        """
        fields = {name: getattr(self, name) for name in _CELL_FIELDS}  # asdict() deep-copies: 3x slower
        data = fields.pop("data")
        if fields["processes"] == 1:
            del fields["processes"]
        if data:
            fields["data"] = json.loads(data)
        energy = fields.pop("energy")
        if energy:
            fields["energy"] = json.loads(energy)
        source = fields.pop("model_source")
        if source:
            fields["model_source"] = json.loads(source)
        return json.dumps({**fields, "protocol": PROTOCOL_VERSION}, sort_keys=True)


_CELL_FIELDS = tuple(field.name for field in fields(Cell))


def epoch_settings(workload: str, batch: int, timing: dict[str, int], data: dict[str, Any]) -> dict[str, Any]:
    """warmup/repeats/steps_per_repeat/data of a cell of this workload.

    synthetic: the timing block as configured. mnist_epoch: one timed block is one epoch, so
    steps_per_repeat = steps in an epoch (the last batch may be partial, as in the seed),
    repeats = timed epochs, warmup = the steps of the one untimed warm-up epoch; `data` holds
    what else changes the measurement (where the images come from, how many, the workers).
    """
    processes = timing.get("processes", 1)
    if workload != "mnist_epoch":
        return {"warmup": timing["warmup"], "repeats": timing["repeats"],
                "steps_per_repeat": timing["steps_per_repeat"], "data": "", "processes": processes}
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
            "data": json.dumps(pipeline, sort_keys=True), "processes": processes}


def _model_settings(entry: str | dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Study-wide settings with a model's own overrides on top."""
    overrides = {} if isinstance(entry, str) else entry
    settings = {key: overrides.get(key, config[key]) for key in MODEL_OVERRIDES}
    settings["timing"] = overrides.get("timing", {})
    settings["name"] = entry if isinstance(entry, str) else entry["name"]
    return settings


# Fresh processes per cell where the config names none (timing.processes). Chosen from two
# runs of the same cells on a lent H100 (README, "Honest intervals"): from one process a rerun
# landed inside the interval 8 times in 24, from three 21-22 times in 24 at about twice the
# wall time. cpu cells keep one: their steps are long and the study's default must stay quick
# on a 2-core laptop; mnist_epoch cells time whole epochs, already seconds each.
ACCELERATOR_PROCESSES = 3


def default_processes(device: str, workload: str) -> int:
    """timing.processes when the study, the device's overrides and the model name none."""
    if workload == "synthetic" and device.split(":")[0] != "cpu":
        return ACCELERATOR_PROCESSES
    return 1


def _timing(config: dict[str, Any], device: str, workload: str, model_timing: dict[str, int]) -> dict[str, int]:
    """Study timing, then the device's overrides (timing_by_device), then the model's; where
    none names `processes`, the device's default."""
    timing = {**config["timing"], **config.get("timing_by_device", {}).get(device, {}), **model_timing}
    timing.setdefault("processes", default_processes(device, workload))
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
            timing = _timing(config, device, workload, s["timing"])
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
                    **epoch_settings(workload, int(batch), timing, config["data"]),
                )
            )
    return sorted(cells)


def processes_per_cell(config: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(torch version, processes per cell, cells) for every group of cells alike in both, without
    making a cell: what size.py counts before expand() is asked to build them (milliseconds for
    72,000 cells, where expand takes seconds and a mistaken matrix could be far larger)."""
    groups: dict[tuple[str, int], int] = {}
    for entry in config["models"]:
        s = _model_settings(entry, config)
        per_device = len(s["dtypes"]) * len(s["modes"]) * len(s["variants"]) * len(s["batch_sizes"])
        for workload, torch_version, device in itertools.product(config["workload"], s["torch_versions"], s["devices"]):
            processes = _timing(config, device, workload, s["timing"])["processes"]
            groups[(torch_version, processes)] = groups.get((torch_version, processes), 0) + per_device
    return [(torch_version, processes, cells) for (torch_version, processes), cells in groups.items()]


def index_by_path(cells: list[Cell]) -> dict[str, Cell]:
    """Map each cell's output path to the cell, for Snakemake's input functions."""
    return {cell.path: cell for cell in cells}


def wildcard_values(cells: list[Cell]) -> dict[str, list[str]]:
    """Every value each path key takes, to build wildcard_constraints from the config."""
    return {k: sorted({str(getattr(c, k)) for c in cells}) for k in cellkey.KEYS}
