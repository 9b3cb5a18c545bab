"""Result sets of "other machines" written with speedatlas.measure.cellio: cells we control exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speedatlas import cellkey
from speedatlas.measure import cellio
from speedatlas.measure.process import receipts


def cell_rows(machine, device, model, mode, batch, seconds_per_step, cpu_model, device_name=None,
              repeats=6, status="ok", torch="current", seed=0, noise=0.02, error=None):
    """Rows of one cell: `repeats` samples spread ±noise around seconds_per_step (a cell whose
    status is not ok: one row with `error`, by default "<device> is not available")."""
    base = {
        "machine": machine, "workload": "synthetic", "torch_requested": torch, "device": device, "model": model,
        "dtype": "float32", "mode": mode, "variant": "eager", "batch_size": batch, "input_size": 32,
        "num_classes": 4, "warmup_steps": 1, "repeats": repeats, "steps_per_repeat": 1, "seed": 0, "protocol": 1,
        "status": status, "torch_version": "2.11.0", "torchvision_version": "0.26.0", "torch_build": "cuda 12.8",
        "device_name": device_name or (cpu_model if device == "cpu" else "NVIDIA H100 80GB HBM3"),
        "cpu_model": cpu_model, "threads": 16, "os": "Linux-6.8-x86_64", "python": "3.11.9", "host": machine,
        "pipeline_commit": "feedbeef",
    }
    if status != "ok":
        return [{**base, "error": error or f"{device} is not available"}]
    rng = np.random.default_rng(seed)
    times = seconds_per_step * np.linspace(1 - noise, 1 + noise, repeats)
    rng.shuffle(times)
    return [{**base, "repeat": i, "step_time_s": float(t), "items_per_s": batch / float(t)} for i, t in enumerate(times)]


def write_cell(root: Path, rows) -> Path:
    first = rows[0]
    key = dict(machine=first["machine"], workload=first["workload"], torch=first["torch_requested"],
               device=first["device"], model=first["model"], dtype=first["dtype"], mode=first["mode"],
               variant=first["variant"], batch=first["batch_size"])
    path = Path(root) / cellkey.CELL_PATTERN.removeprefix("results/cells/").format(**key)
    cellio.write_atomic(cellio.rows_to_table(rows), path)
    return path


def write_machine(root: Path, machine: str, seconds: dict, cpu_model: str = "Fake CPU 9000", **kwargs) -> list[Path]:
    """One cell per entry of `seconds`: {(device, model, mode, batch): seconds per step}."""
    return [
        write_cell(root, cell_rows(machine, device, model, mode, batch, s, cpu_model, seed=i, **kwargs))
        for i, ((device, model, mode, batch), s) in enumerate(sorted(seconds.items()))
    ]


def write_processes(results: Path, machine: str, seconds: dict, cpu_model: str = "Fake CPU 9000", **kwargs) -> list[Path]:
    """The cells of write_machine as a study's own bench jobs leave them (process 0's part and
    receipt under results/processes/): the study's cell_file jobs then make its cell files."""
    parts = []
    for i, ((device, model, mode, batch), s) in enumerate(sorted(seconds.items())):
        rows = [{**row, "process": 0} for row in cell_rows(machine, device, model, mode, batch, s, cpu_model, seed=i, **kwargs)]
        first = rows[0]
        key = dict(machine=machine, workload=first["workload"], torch=first["torch_requested"], device=device,
                   model=model, dtype=first["dtype"], mode=mode, variant=first["variant"], batch=batch)
        part = Path(results).parent / cellkey.PROCESS_PATTERN.format(**key, process=0)
        cellio.write_atomic(cellio.rows_to_table(rows), part)
        receipts.write(cellkey.receipt_path(str(part)), **receipts.of_rows(rows, 1.0))
        parts.append(part)
    return parts
