"""Timing slots: with `concurrency: device` each accelerator is a slot of its own.

Today's rule (`concurrency: machine`) stays the default: a timing job holds the machine's lock
alone. With `device`, on a machine with two or more GPUs, a cell of `cuda:K` holds slot K, a cell
of `cuda` any free slot whose GPU is the same model as `cuda:0`, and everything else (cpu cells,
dtype probes, torch environment builds) still holds the whole machine. The locks are one file:

- the machine lock (machine_lock.lock_path(), opened as machine_lock says: never through a link): a whole-machine job takes it exclusively (LOCK_EX, as
  today), a slot job takes it shared (LOCK_SH), so slot jobs run side by side and never beside a
  whole-machine job, also across separate snakemake runs and across the two modes;
- one lock per slot (`<machine lock>.cuda<K>`), taken exclusively by the slot's job (after the
  machine lock, so the order is always machine, then slot: no deadlock).

The slot table (which GPUs, which host cores each slot may use) is worked out once by the
snakemake process (`plan_slots`) and handed to the jobs in SPEEDATLAS_SLOTS; a job only applies it.
Each slot's job is pinned (os.sched_setaffinity) to its own share of the host's cores, on the
GPU's NUMA node where the machine has several, so host-bound cells do not compete for cores.

Runner side: standard library only (torch is handed in where a function needs it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from speedatlas.measure import machine_lock as lock_file

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
# CPU lists and the split of host cores between slots (pure)


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
    fake = environ.get(FAKE_ENV)
    if fake:
        return [Slot(i, FAKE_NAME, f"GPU-fake-{i}") for i in range(int(fake))]
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
