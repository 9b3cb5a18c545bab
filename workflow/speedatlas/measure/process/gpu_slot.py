"""Timing slots: with `concurrency: device` each accelerator is a slot of its own.

Today's rule (`concurrency: machine`) stays the default: a timing job holds the machine's lock
alone. With `device`, on a machine with two or more GPUs, a cell of `cuda:K` holds slot K, a cell
of `cuda` any free slot whose GPU is the same model as `cuda:0`, and everything else (cpu cells,
dtype probes, torch environment builds) still holds the whole machine. The locks are one file:

- the machine lock (machine_lock.py): a whole-machine job takes it exclusively (LOCK_EX, as
  today), a slot job takes it shared (LOCK_SH), so slot jobs run side by side and never beside a
  whole-machine job, also across separate snakemake runs and across the two modes;
- one lock per slot (`<machine lock>.cuda<K>`), taken exclusively by the slot's job (after the
  machine lock, so the order is always machine, then slot: no deadlock).

The slot table (which GPUs, which host cores each slot may use) is worked out once by the
snakemake process (speedatlas.plan.concurrency.plan_slots) and handed to the jobs in
SPEEDATLAS_SLOTS; a job only applies it (this module).
Each slot's job is pinned (os.sched_setaffinity) to its own share of the host's cores, on the
GPU's NUMA node where the machine has several, so host-bound cells do not compete for cores.

Runner side: standard library only (torch is handed in where a function needs it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from speedatlas.measure.process import machine_lock as lock_file

CONCURRENCY_ENV = "SPEEDATLAS_CONCURRENCY"  # "device" when the study asks for it
SLOTS_ENV = "SPEEDATLAS_SLOTS"  # JSON list of Slot (plan_slots), set by the snakemake process
# Test hook: SPEEDATLAS_FAKE_GPUS=N makes the machine look as if it had N GPUs ("Fake GPU"); cells
# of cuda devices then compute on the CPU but take their slot, lock and cores as a GPU's would.
# Never set in normal use (as runner.inject_fault).
FAKE_ENV = "SPEEDATLAS_FAKE_GPUS"
FAKE_NAME = "Fake GPU"


@dataclass(frozen=True)
class Slot:
    """One accelerator: its index as torch numbers it, and the host cores its jobs may use."""

    index: int
    name: str
    uuid: str | None = None
    pci_bus_id: str | None = None
    numa_node: int | None = None
    cpus: tuple[int, ...] = field(default=())

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"

    @property
    def resource(self) -> str:
        """The Snakemake resource that admits one job to this slot."""
        return f"speedatlas_slot_cuda{self.index}"


# ---------------------------------------------------------------------------------------------
# CPU lists in the kernel's format, and the slot table as the jobs receive it


def parse_cpulist(text: str) -> tuple[int, ...]:
    """'0-3,8,10-11' (the kernel's cpulist format) -> (0, 1, 2, 3, 8, 10, 11)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part.strip():
            continue
        low, _, high = part.strip().partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return tuple(sorted(cpus))


def format_cpulist(cpus: Iterable[int]) -> str:
    """(0, 1, 2, 3, 8) -> '0-3,8': the form the kernel, taskset and numactl print."""
    ordered = sorted(set(cpus))
    parts, i = [], 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def table_from_json(text: str | None) -> list[Slot]:
    if not text:
        return []
    return [Slot(**{**entry, "cpus": parse_cpulist(entry["cpus"])}) for entry in json.loads(text)]


# ---------------------------------------------------------------------------------------------
# Which slot a device may take (shared by the snakemake side and the job, so both agree)


def candidates(device: str, slots: Sequence[Slot]) -> list[Slot]:
    """The slots a cell of `device` may run on; [] = it takes the whole machine.

    `cuda:K` -> slot K; `cuda` -> every slot whose GPU has the name of cuda:0 (torch's `cuda` is
    cuda:0; a study written for it compares that model of GPU); anything else, or an index this
    machine lacks (the cell is recorded `unavailable`), or fewer than two slots -> the machine.
    """
    if len(slots) < 2:
        return []
    kind, _, index = device.partition(":")
    if kind != "cuda":
        return []
    if index:
        return [s for s in slots if s.index == int(index)]
    first = min(slots, key=lambda s: s.index)
    return [s for s in slots if s.name == first.name]


# ---------------------------------------------------------------------------------------------
# In the job: take the lock(s), pin to the slot's cores


@dataclass
class Held:
    """What a timing job holds: the whole machine (slot None) or one slot."""

    concurrency: str
    waited_s: float = 0.0
    slot: Slot | None = None


def slot_lock_path(machine_lock: str, slot: Slot) -> str:
    return f"{machine_lock}.cuda{slot.index}"


# Spec key (set by the supervisor, stripped by the runner): the GPU the cell's first process ran
# on, tried first by its later processes (timing.processes > 1), so a `cuda` cell stays on one GPU.
PREFER_KEY = "_prefer_gpu"


@contextlib.contextmanager
def hold(device: str, machine_lock: str, environ: Mapping[str, str] = os.environ,
         poll_s: float = 0.02, prefer: int | None = None) -> Iterator[Held]:
    """Hold what a cell of `device` needs for its whole measurement; yield a Held.

    Machine mode, or a job that takes the whole machine: the machine lock, exclusive (today's
    lock). A slot job: the machine lock shared, then its slot's lock exclusive; a `cuda` job
    tries its candidate slots without blocking, in index order (`prefer` first), until one is free. A slot job
    is pinned to its slot's cores before it returns (so torch's threads start there).
    """
    concurrency = environ.get(CONCURRENCY_ENV) or "machine"
    slots = table_from_json(environ.get(SLOTS_ENV)) if concurrency == "device" else []
    choices = sorted(candidates(device, slots), key=lambda slot: slot.index != prefer)
    start = time.perf_counter()
    with lock_file.held(machine_lock, shared=bool(choices)):
        if not choices:
            yield Held(concurrency, time.perf_counter() - start)
            return
        with _one_of(choices, machine_lock, poll_s) as slot:
            held = Held(concurrency, time.perf_counter() - start, slot)
            pin(slot.cpus)
            yield held


@contextlib.contextmanager
def _one_of(choices: Sequence[Slot], machine_lock: str, poll_s: float) -> Iterator[Slot]:
    handles = [lock_file.open_lock(slot_lock_path(machine_lock, slot)) for slot in choices]
    try:
        taken = None
        if len(handles) == 1:
            fcntl.flock(handles[0], fcntl.LOCK_EX)
            taken = 0
        while taken is None:
            for i, handle in enumerate(handles):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                taken = i
                break
            else:
                time.sleep(poll_s)
        try:
            yield choices[taken]
        finally:
            fcntl.flock(handles[taken], fcntl.LOCK_UN)
    finally:
        for handle in handles:
            handle.close()


def pin(cpus: Sequence[int]) -> None:
    """Restrict this process (and the threads and workers it starts) to `cpus`."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def affinity() -> str | None:
    """The CPUs this process may run on, as a cpulist ('0-7'); None where the OS does not say."""
    return format_cpulist(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def fake(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get(FAKE_ENV))


def compute_device(device: str, held: Held, environ: Mapping[str, str] = os.environ) -> str:
    """The device the cell computes on: its slot's `cuda:K` when it holds one (a `cuda` cell may
    get any free GPU of its model), the CPU for a fake GPU (test hook), else the device itself."""
    if fake(environ) and device.startswith("cuda"):
        return "cpu"
    return held.slot.device if held.slot is not None else device


def gpu_uuid(torch: Any, index: int) -> str | None:
    """The GPU's UUID as nvidia-smi prints it ('GPU-…').

    torch's own device properties first (`uuid`, torch >= 2.1: cudaDeviceProp.uuid of exactly the
    device torch calls `index`, whatever CUDA_DEVICE_ORDER/CUDA_VISIBLE_DEVICES say); else NVML
    (nvidia-ml-py) found by the PCI bus id torch reports, else by index (right when the CUDA order
    is PCI_BUS_ID, which device mode exports); else None.
    """
    props = torch.cuda.get_device_properties(index)
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        text = str(uuid)
        return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"
    try:
        import pynvml  # optional (nvidia-ml-py)

        pynvml.nvmlInit()
        bus = getattr(props, "pci_bus_id", None)
        if bus is not None:
            address = f"{getattr(props, 'pci_domain_id', 0):08x}:{bus:02x}:{getattr(props, 'pci_device_id', 0):02x}.0"
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(address)
        else:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        value = pynvml.nvmlDeviceGetUUID(handle)
        return value.decode() if isinstance(value, bytes) else str(value)
    except Exception:  # noqa: BLE001 - no NVML here: the UUID stays unknown
        return None


def columns(torch: Any, device: str, run_device: str, held: Held,
            environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """What the cell records about where it ran: the mode, the GPU actually used (index, UUID,
    and for a fake GPU its name) and the host CPUs it was allowed."""
    out: dict[str, Any] = {"concurrency": held.concurrency, "cpu_affinity": affinity()}
    if not device.startswith("cuda"):
        return out
    if fake(environ):
        index = held.slot.index if held.slot else int(device.partition(":")[2] or 0)
        return {**out, "gpu_index": index, "gpu_uuid": f"GPU-fake-{index}", "device_name": FAKE_NAME}
    if not torch.cuda.is_available():
        return out
    index = torch.device(run_device).index
    index = torch.cuda.current_device() if index is None else index
    if index >= torch.cuda.device_count():
        return out
    return {**out, "gpu_index": index, "gpu_uuid": gpu_uuid(torch, index)}
