"""`concurrency: machine | device`: which Snakemake resources a timing job holds.

machine (the default): every timing job (cells, dtype probes, torch environment builds) holds
`speedatlas_timing=1` with limit 1, so at most one runs on the machine, as always.

device, on a machine with two or more GPUs (see speedatlas.measure.process.gpu_slot for the locks):
- `speedatlas_slot_cuda<K>` (limit 1 each): a `cuda:K` cell holds its slot's unit;
- `speedatlas_gpus` (limit = number of slots): every GPU cell holds 1, so no more GPU cells run
  than there are GPUs, also when a `cuda` cell (any free GPU of its model) holds no named slot;
- a whole-machine job (cpu cells, probes, builds, cells of a GPU this machine lacks) holds
  `speedatlas_timing=1`, every slot and every GPU unit: it never runs beside anything.
With fewer than two GPUs there are no slots and device means exactly machine.
Pure Python (the slot table comes in), so it is unit-tested without snakemake.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from speedatlas.measure.process import gpu_slot
from speedatlas.measure.process.gpu_slot import Slot, format_cpulist, parse_cpulist

TIMING = "speedatlas_timing"
GPUS = "speedatlas_gpus"


def study_slots(concurrency: str, environ=os.environ) -> list[Slot]:
    """The slot table of this machine when the study asks for device concurrency, else []."""
    return plan_slots(environ) if concurrency == "device" else []


def limits(slots: Sequence[Slot]) -> dict[str, int]:
    """Global resource limits beside speedatlas_timing=1 (none in machine mode)."""
    if not slots:
        return {}
    return {**{slot.resource: 1 for slot in slots}, GPUS: len(slots)}


def job_resources(device: str | None, slots: Sequence[Slot]) -> dict[str, int]:
    """The units a job of `device` holds (None: a job that is no cell, e.g. a torch build)."""
    if not slots:
        return {TIMING: 1}
    choices = gpu_slot.candidates(device or "", slots)
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
    if not gpu_slot.candidates(device, slots):
        return wanted
    return max(1, min(wanted, cores // len(slots)))


def job_environment(concurrency: str, slots: Sequence[Slot]) -> dict[str, str]:
    """What jobs inherit: the mode and the slot table; CUDA numbered in PCI bus order, as
    nvidia-smi numbers the GPUs of the table (CUDA's default puts the fastest first)."""
    if not slots:
        return {}
    return {
        gpu_slot.CONCURRENCY_ENV: concurrency,
        gpu_slot.SLOTS_ENV: table_json(slots),
        "CUDA_DEVICE_ORDER": os.environ.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
    }


def cores_warning(cores: int | None, slots: Sequence[Slot]) -> str | None:
    """A sentence for the log when --cores lets fewer GPU cells run at once than there are GPUs
    (each job counts at least one core, so `--cores 1` times one cell at a time)."""
    if slots and (cores or 1) < len(slots):
        return (f"speedatlas: concurrency: device found {len(slots)} GPUs but --cores {cores} runs at most "
                f"{cores or 1} timing job(s) at once; give --cores all (or at least {len(slots)})")
    return None


# ---------------------------------------------------------------------------------------------
# The slot table: which GPUs this machine has and which host cores each slot may use (read by the
# snakemake process once; the jobs only apply it, speedatlas.measure.process.gpu_slot)


def core_groups(allowed: Iterable[int], siblings: Mapping[int, Iterable[int]] | None = None) -> list[tuple[int, ...]]:
    """The allowed logical CPUs grouped by physical core (hyperthread siblings stay together),
    ordered by their lowest CPU number."""
    allowed = set(allowed)
    groups = {tuple(sorted(set((siblings or {}).get(cpu, (cpu,))) & allowed | {cpu})) for cpu in allowed}
    return sorted(groups)


def _deal(groups: Sequence[tuple[int, ...]], parts: int) -> list[tuple[int, ...]]:
    """Split `groups` into `parts` contiguous runs whose sizes differ by at most one. With fewer
    groups than parts, parts share: part i gets group i mod len(groups)."""
    if not groups:
        return [() for _ in range(parts)]
    if len(groups) < parts:
        return [groups[i % len(groups)] for i in range(parts)]
    size, extra = divmod(len(groups), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(tuple(cpu for group in groups[start:end] for cpu in group))
        start = end
    return out


def split_cpus(
    allowed: Iterable[int],
    slot_nodes: Sequence[int | None],
    node_cpus: Mapping[int, Iterable[int]] | None = None,
    siblings: Mapping[int, Iterable[int]] | None = None,
) -> list[tuple[int, ...]]:
    """Each slot's share of the `allowed` host CPUs, one tuple per slot, in slot order.

    NUMA-aware when the machine has several nodes and every slot's node is known: a node's
    cores are dealt among the slots of that node only (cores of GPU-less nodes stay free for
    the OS and snakemake). Otherwise all cores are dealt among all slots. Whole physical cores
    are dealt (hyperthread siblings never land in two slots), in contiguous runs, so shares
    are disjoint whenever there are at least as many cores as slots.
    """
    allowed = set(allowed)
    groups = core_groups(allowed, siblings)
    nodes = {node: set(cpus) & allowed for node, cpus in (node_cpus or {}).items()}
    numa = len(nodes) > 1 and all(node in nodes and nodes[node] for node in slot_nodes)
    if not numa:
        return [tuple(sorted(share)) for share in _deal(groups, len(slot_nodes))]
    shares: list[tuple[int, ...]] = [() for _ in slot_nodes]
    for node in sorted({n for n in slot_nodes if n is not None}):
        members = [i for i, n in enumerate(slot_nodes) if n == node]
        local = [group for group in groups if set(group) <= nodes[node]]
        for i, share in zip(members, _deal(local, len(members))):
            shares[i] = tuple(sorted(share))
    return shares


# ---------------------------------------------------------------------------------------------
# What the machine has (read by the snakemake process once)


def parse_nvidia_smi(text: str) -> list[Slot]:
    """Lines of `nvidia-smi --query-gpu=index,name,uuid,pci.bus_id --format=csv,noheader`."""
    slots = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 4 and fields[0].isdigit():
            slots.append(Slot(int(fields[0]), fields[1], fields[2], fields[3]))
    return slots


def visible(slots: Sequence[Slot], cuda_visible_devices: str | None) -> list[Slot]:
    """The GPUs a CUDA program sees, renumbered as it numbers them (CUDA_VISIBLE_DEVICES: indices
    or UUID prefixes; the list stops at the first entry that names no GPU, as CUDA's does)."""
    if cuda_visible_devices is None:
        return [replace(slot, index=i) for i, slot in enumerate(sorted(slots, key=lambda s: s.index))]
    chosen: list[Slot] = []
    for entry in cuda_visible_devices.split(","):
        entry = entry.strip()
        match = [s for s in slots if (entry.isdigit() and s.index == int(entry))
                 or (entry and not entry.isdigit() and (s.uuid or "").startswith(entry))]
        if not match or match[0] in chosen:
            break
        chosen.append(match[0])
    return [replace(slot, index=i) for i, slot in enumerate(chosen)]


def sysfs_pci_address(bus_id: str) -> str:
    """nvidia-smi's '00000000:18:00.0' -> sysfs's '0000:18:00.0'."""
    domain, _, rest = bus_id.strip().partition(":")
    return f"{int(domain, 16):04x}:{rest.lower()}"


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def pci_numa_node(bus_id: str | None, sysfs: str = "/sys") -> int | None:
    """The NUMA node of a PCI device (None where unknown: no sysfs, or the kernel says -1)."""
    if not bus_id:
        return None
    text = _read(os.path.join(sysfs, "bus", "pci", "devices", sysfs_pci_address(bus_id), "numa_node"))
    try:
        node = int(text) if text is not None else -1
    except ValueError:
        return None
    return node if node >= 0 else None


def numa_nodes(sysfs: str = "/sys") -> dict[int, tuple[int, ...]]:
    """NUMA node -> its CPUs, from /sys/devices/system/node/node*/cpulist ({} where absent)."""
    root = os.path.join(sysfs, "devices", "system", "node")
    try:
        names = os.listdir(root)
    except OSError:
        return {}
    nodes = {}
    for name in names:
        if name.startswith("node") and name[4:].isdigit():
            text = _read(os.path.join(root, name, "cpulist"))
            if text:
                nodes[int(name[4:])] = parse_cpulist(text)
    return nodes


def thread_siblings(cpus: Iterable[int], sysfs: str = "/sys") -> dict[int, tuple[int, ...]]:
    """CPU -> the logical CPUs of its physical core (itself alone where sysfs does not say)."""
    out = {}
    for cpu in cpus:
        text = _read(os.path.join(sysfs, "devices", "system", "cpu", f"cpu{cpu}", "topology", "thread_siblings_list"))
        out[cpu] = parse_cpulist(text) if text else (cpu,)
    return out


def detect_gpus(environ: Mapping[str, str] = os.environ) -> list[Slot]:
    """The NVIDIA GPUs this process's CUDA programs would see ([] where there are none)."""
    fake = environ.get(gpu_slot.FAKE_ENV)
    if fake:
        return [Slot(i, gpu_slot.FAKE_NAME, f"GPU-fake-{i}") for i in range(int(fake))]
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,uuid,pci.bus_id", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if result.returncode != 0:
        return []
    return visible(parse_nvidia_smi(result.stdout), environ.get("CUDA_VISIBLE_DEVICES"))


def plan_slots(environ: Mapping[str, str] = os.environ, sysfs: str = "/sys") -> list[Slot]:
    """The slot table of this machine: its GPUs, each with its NUMA node and share of cores.

    Fewer than two GPUs: no slots ([]), and every job takes the whole machine as today.
    """
    gpus = detect_gpus(environ)
    if len(gpus) < 2:
        return []
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    gpus = [replace(g, numa_node=pci_numa_node(g.pci_bus_id, sysfs)) for g in gpus]
    shares = split_cpus(allowed, [g.numa_node for g in gpus], numa_nodes(sysfs), thread_siblings(allowed, sysfs))
    return [replace(g, cpus=share) for g, share in zip(gpus, shares)]


def table_json(slots: Sequence[Slot]) -> str:
    return json.dumps([{**asdict(s), "cpus": format_cpulist(s.cpus)} for s in slots], sort_keys=True)
