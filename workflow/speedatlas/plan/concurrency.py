"""`concurrency: machine | device`: which Snakemake resources a timing job holds.

machine (the default): every timing job (cells, dtype probes, torch environment builds) holds
`speedatlas_timing=1` with limit 1, so at most one runs on the machine, as always.

device, on a machine with two or more GPUs (see speedatlas.measure.slots for the locks):
- `speedatlas_slot_cuda<K>` (limit 1 each): a `cuda:K` cell holds its slot's unit;
- `speedatlas_gpus` (limit = number of slots): every GPU cell holds 1, so no more GPU cells run
  than there are GPUs, also when a `cuda` cell (any free GPU of its model) holds no named slot;
- a whole-machine job (cpu cells, probes, builds, cells of a GPU this machine lacks) holds
  `speedatlas_timing=1`, every slot and every GPU unit: it never runs beside anything.
With fewer than two GPUs there are no slots and device means exactly machine.
Pure Python (the slot table comes in), so it is unit-tested without snakemake.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from speedatlas.measure import slots as slot_locks
from speedatlas.measure.slots import Slot

TIMING = "speedatlas_timing"
GPUS = "speedatlas_gpus"


def study_slots(concurrency: str, environ=os.environ) -> list[Slot]:
    """The slot table of this machine when the study asks for device concurrency, else []."""
    return slot_locks.plan_slots(environ) if concurrency == "device" else []


def limits(slots: Sequence[Slot]) -> dict[str, int]:
    """Global resource limits beside speedatlas_timing=1 (none in machine mode)."""
    if not slots:
        return {}
    return {**{slot.resource: 1 for slot in slots}, GPUS: len(slots)}


def job_resources(device: str | None, slots: Sequence[Slot]) -> dict[str, int]:
    """The units a job of `device` holds (None: a job that is no cell, e.g. a torch build)."""
    if not slots:
        return {TIMING: 1}
    choices = slot_locks.candidates(device or "", slots)
    if not choices:
        return {TIMING: 1, **{slot.resource: 1 for slot in slots}, GPUS: len(slots)}
    named = {slot.resource: 1 for slot in choices} if len(choices) == 1 and ":" in (device or "") else {}
    return {TIMING: 0, **{slot.resource: named.get(slot.resource, 0) for slot in slots}, GPUS: 1}


def rule_resources(slots: Sequence[Slot], device_of: Callable[[Any], str | None]) -> dict[str, Any]:
    """The `resources:` of a rule whose jobs time on a device: {name: value or function of wildcards}.

    Machine mode gives exactly today's `speedatlas_timing=1`.
    """
    if not slots:
        return {TIMING: 1}
    def units(name: str) -> Callable[[Any], int]:
        def of_job(wildcards: Any) -> int:
            return job_resources(device_of(wildcards), slots)[name]

        return of_job

    return {name: units(name) for name in [TIMING, *(slot.resource for slot in slots), GPUS]}


def machine_resources(slots: Sequence[Slot]) -> dict[str, int]:
    """The `resources:` of a job that takes the whole machine (torch builds, dtype probes)."""
    return job_resources(None, slots)


def cell_threads(cpu_threads: int, cores: int, device: str, slots: Sequence[Slot]) -> int:
    """Snakemake threads of a cell: as today, except that a slot job counts only its slot's
    share of the cores (else `--cores` would let only one GPU cell run at a time)."""
    wanted = cpu_threads or cores
    if not slot_locks.candidates(device, slots):
        return wanted
    return max(1, min(wanted, cores // len(slots)))


def job_environment(concurrency: str, slots: Sequence[Slot]) -> dict[str, str]:
    """What jobs inherit: the mode and the slot table; CUDA numbered in PCI bus order, as
    nvidia-smi numbers the GPUs of the table (CUDA's default puts the fastest first)."""
    if not slots:
        return {}
    return {
        slot_locks.CONCURRENCY_ENV: concurrency,
        slot_locks.SLOTS_ENV: slot_locks.table_json(slots),
        "CUDA_DEVICE_ORDER": os.environ.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
    }


def cores_warning(cores: int | None, slots: Sequence[Slot]) -> str | None:
    """A sentence for the log when --cores lets fewer GPU cells run at once than there are GPUs
    (each job counts at least one core, so `--cores 1` times one cell at a time)."""
    if slots and (cores or 1) < len(slots):
        return (f"speedatlas: concurrency: device found {len(slots)} GPUs but --cores {cores} runs at most "
                f"{cores or 1} timing job(s) at once; give --cores all (or at least {len(slots)})")
    return None
