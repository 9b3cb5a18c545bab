"""concurrency: device on the CPU: the core split, the slot table, the locks, the resources and
what a cell records, with two fake accelerator slots (SPEEDATLAS_FAKE_GPUS)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time

from conftest import locked

from speedatlas import cellkey
from speedatlas.measure.process import gpu_slot as slots, machine_lock
from speedatlas.measure.process.gpu_slot import Slot
from speedatlas.plan.concurrency import split_cpus
from speedatlas.plan import concurrency

TWO = [Slot(0, "Fake GPU", "GPU-fake-0", cpus=(0,)), Slot(1, "Fake GPU", "GPU-fake-1", cpus=(1,))]


# --- cpulists and the split of host cores (pure) ---------------------------------------------


def test_cpulist_round_trip():
    assert slots.parse_cpulist("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert slots.format_cpulist([11, 10, 8, 3, 2, 1, 0]) == "0-3,8,10-11"
    assert slots.format_cpulist([]) == "" and slots.parse_cpulist("") == ()


def test_flat_split_is_even_contiguous_and_disjoint():
    shares = split_cpus(range(10), [None, None, None])
    assert shares == [(0, 1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert split_cpus([0, 1], [None, None]) == [(0,), (1,)]  # the 2-core test machine, 2 fake GPUs


def test_hyperthread_siblings_stay_in_one_slot():
    siblings = {i: (i % 4, i % 4 + 4) for i in range(8)}  # Linux numbering: cpu i and i+4 share a core
    assert split_cpus(range(8), [None, None], siblings=siblings) == [(0, 1, 4, 5), (2, 3, 6, 7)]


def test_numa_split_keeps_each_gpu_on_its_node():
    nodes = {0: range(0, 4), 1: range(4, 8)}
    # GPUs 0 and 2 sit on node 1, GPU 1 on node 0
    assert split_cpus(range(8), [1, 0, 1], nodes) == [(4, 5), (0, 1, 2, 3), (6, 7)]
    # cores of a node without GPUs stay free
    assert split_cpus(range(8), [0, 0], nodes) == [(0, 1), (2, 3)]


def test_numa_falls_back_to_a_flat_split():
    nodes = {0: range(0, 4), 1: range(4, 8)}
    assert split_cpus(range(8), [None, 1], nodes) == [(0, 1, 2, 3), (4, 5, 6, 7)]  # a node unknown
    assert split_cpus(range(8), [0, 1], {0: range(8)}) == [(0, 1, 2, 3), (4, 5, 6, 7)]  # one node
    assert split_cpus(range(4), [0, 1], nodes) == [(0, 1), (2, 3)]  # node 1 has no allowed core


def test_more_slots_than_cores_share():
    assert split_cpus([0, 1], [None] * 3) == [(0,), (1,), (0,)]


# --- what the machine has ---------------------------------------------------------------------


SMI = """0, NVIDIA H200, GPU-aaaa, 00000000:18:00.0
1, NVIDIA H200, GPU-bbbb, 00000000:9A:00.0
2, NVIDIA A10, GPU-cccc, 00000000:C1:00.0
"""


def test_nvidia_smi_and_cuda_visible_devices():
    gpus = concurrency.parse_nvidia_smi(SMI)
    assert [(g.index, g.name, g.uuid) for g in gpus][1] == (1, "NVIDIA H200", "GPU-bbbb")
    assert [g.uuid for g in concurrency.visible(gpus, None)] == ["GPU-aaaa", "GPU-bbbb", "GPU-cccc"]
    seen = concurrency.visible(gpus, "2,0")
    assert [(g.index, g.uuid) for g in seen] == [(0, "GPU-cccc"), (1, "GPU-aaaa")]
    assert [g.uuid for g in concurrency.visible(gpus, "GPU-bb,7,0")] == ["GPU-bbbb"]  # stops at 7
    assert concurrency.visible(gpus, "") == []


def test_numa_node_of_a_gpu_from_sysfs(tmp_path):
    assert concurrency.sysfs_pci_address("00000000:9A:00.0") == "0000:9a:00.0"
    device = tmp_path / "bus" / "pci" / "devices" / "0000:9a:00.0"
    device.mkdir(parents=True)
    (device / "numa_node").write_text("1\n")
    for node, cpus in ((0, "0-3"), (1, "4-7")):
        folder = tmp_path / "devices" / "system" / "node" / f"node{node}"
        folder.mkdir(parents=True)
        (folder / "cpulist").write_text(cpus + "\n")
    assert concurrency.pci_numa_node("00000000:9A:00.0", str(tmp_path)) == 1
    assert concurrency.pci_numa_node("00000000:18:00.0", str(tmp_path)) is None  # no such device
    (device / "numa_node").write_text("-1\n")
    assert concurrency.pci_numa_node("00000000:9A:00.0", str(tmp_path)) is None  # the kernel does not know
    assert concurrency.numa_nodes(str(tmp_path)) == {0: (0, 1, 2, 3), 1: (4, 5, 6, 7)}


def test_plan_slots_with_two_fake_gpus(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    table = concurrency.plan_slots({slots.FAKE_ENV: "2"}, sysfs=str(tmp_path))
    assert [(s.index, s.name, s.uuid, s.cpus) for s in table] == [
        (0, "Fake GPU", "GPU-fake-0", (0, 1)), (1, "Fake GPU", "GPU-fake-1", (2, 3))]
    assert slots.table_from_json(concurrency.table_json(table)) == table
    assert concurrency.plan_slots({slots.FAKE_ENV: "1"}, sysfs=str(tmp_path)) == []  # one GPU: no slots


def test_candidates():
    mixed = [Slot(0, "H200"), Slot(1, "A10"), Slot(2, "H200")]
    assert slots.candidates("cuda:1", mixed) == [mixed[1]]
    assert slots.candidates("cuda", mixed) == [mixed[0], mixed[2]]  # same model as cuda:0
    assert slots.candidates("cpu", mixed) == [] and slots.candidates("mps", mixed) == []
    assert slots.candidates("cuda:5", mixed) == []  # absent: whole machine, recorded unavailable
    assert slots.candidates("cuda:0", mixed[:1]) == []  # one GPU: as today


# --- Snakemake resources -----------------------------------------------------------------------


def test_machine_mode_is_todays_single_resource():
    assert concurrency.limits([]) == {}
    assert concurrency.rule_resources([], lambda w: "cuda:1") == {"speedatlas_timing": 1}
    assert concurrency.machine_resources([]) == {"speedatlas_timing": 1}
    assert concurrency.job_environment("device", []) == {}
    assert concurrency.cell_threads(0, 8, "cuda:1", []) == 8


def test_device_mode_resources():
    assert concurrency.limits(TWO) == {"speedatlas_slot_cuda0": 1, "speedatlas_slot_cuda1": 1, "speedatlas_gpus": 2}
    whole = {"speedatlas_timing": 1, "speedatlas_slot_cuda0": 1, "speedatlas_slot_cuda1": 1, "speedatlas_gpus": 2}
    assert concurrency.job_resources("cpu", TWO) == whole
    assert concurrency.machine_resources(TWO) == whole
    assert concurrency.job_resources("cuda:1", TWO) == {
        "speedatlas_timing": 0, "speedatlas_slot_cuda0": 0, "speedatlas_slot_cuda1": 1, "speedatlas_gpus": 1}
    assert concurrency.job_resources("cuda", TWO) == {
        "speedatlas_timing": 0, "speedatlas_slot_cuda0": 0, "speedatlas_slot_cuda1": 0, "speedatlas_gpus": 1}
    rules = concurrency.rule_resources(TWO, lambda wildcards: wildcards)
    assert {name: f("cuda:0") for name, f in rules.items()} == concurrency.job_resources("cuda:0", TWO)
    # a slot job counts its share of --cores, so two GPU cells fit beside each other
    assert concurrency.cell_threads(0, 4, "cuda:1", TWO) == 2
    assert concurrency.cell_threads(0, 4, "cpu", TWO) == 4
    assert concurrency.cores_warning(1, TWO).endswith("give --cores all (or at least 2)")
    assert concurrency.cores_warning(2, TWO) is None and concurrency.cores_warning(1, []) is None
    env = concurrency.job_environment("device", TWO)
    assert env[slots.CONCURRENCY_ENV] == "device" and slots.table_from_json(env[slots.SLOTS_ENV]) == TWO


# --- locks -------------------------------------------------------------------------------------


def device_env(table=TWO):
    return {slots.CONCURRENCY_ENV: "device", slots.SLOTS_ENV: concurrency.table_json(table)}


def test_two_slots_are_held_at_once_and_exclude_the_machine(tmp_path, monkeypatch):
    pinned = []
    monkeypatch.setattr(slots, "pin", pinned.append)
    machine = str(tmp_path / "timing.lock")
    with slots.hold("cuda:0", machine, device_env()) as first, slots.hold("cuda:1", machine, device_env()) as second:
        assert (first.slot.index, second.slot.index) == (0, 1)
        assert locked(machine)  # a whole-machine job (cpu cell, probe, machine mode) must wait
        assert locked(machine + ".cuda0") and locked(machine + ".cuda1")
        assert first.concurrency == "device"
    assert pinned == [(0,), (1,)]
    assert not locked(machine) and not locked(machine + ".cuda0")


def test_any_gpu_cell_takes_the_free_slot(tmp_path, monkeypatch):
    monkeypatch.setattr(slots, "pin", lambda cpus: None)
    machine = str(tmp_path / "timing.lock")
    with slots.hold("cuda:0", machine, device_env()):
        with slots.hold("cuda", machine, device_env()) as other:
            assert other.slot.index == 1
            assert slots.compute_device("cuda", other, {}) == "cuda:1"


def test_a_later_process_of_a_cell_prefers_its_first_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(slots, "pin", lambda cpus: None)
    machine = str(tmp_path / "timing.lock")
    with slots.hold("cuda", machine, device_env(), prefer=1) as held:
        assert held.slot.index == 1  # both free: the preferred one
    with slots.hold("cuda:0", machine, device_env(), prefer=1) as held:
        assert held.slot.index == 0  # a named GPU is never swapped


def test_any_gpu_cell_waits_for_a_slot(tmp_path, monkeypatch):
    monkeypatch.setattr(slots, "pin", lambda cpus: None)
    machine = str(tmp_path / "timing.lock")
    got = {}

    def late():
        with slots.hold("cuda", machine, device_env(), poll_s=0.01) as held:
            got["slot"], got["waited"] = held.slot.index, held.waited_s

    with slots.hold("cuda:0", machine, device_env()), slots.hold("cuda:1", machine, device_env()):
        thread = threading.Thread(target=late)
        thread.start()
        time.sleep(0.3)
        assert "slot" not in got  # both GPUs busy
    thread.join(5)
    assert got["slot"] in (0, 1) and got["waited"] >= 0.25


def test_cpu_cells_and_machine_mode_take_the_whole_machine(tmp_path):
    machine = str(tmp_path / "timing.lock")
    with slots.hold("cpu", machine, device_env()) as held:
        assert held.slot is None and locked(machine)
    with slots.hold("cuda:1", machine, {}) as held:  # concurrency machine: today's exclusive lock
        assert held.slot is None and held.concurrency == "machine" and locked(machine)
        assert slots.compute_device("cuda:1", held, {}) == "cuda:1"
    with open(machine, "a+") as handle:  # a slot job waits while a whole-machine job runs
        fcntl.flock(handle, fcntl.LOCK_EX)
        started = []
        thread = threading.Thread(target=lambda: started.append(slots.hold("cuda:0", machine, device_env()).__enter__()))
        thread.start()
        time.sleep(0.2)
        assert started == []
        fcntl.flock(handle, fcntl.LOCK_UN)
        thread.join(5)
    assert started and started[0].slot.index == 0


# --- what a cell records (runner, torch on the CPU) --------------------------------------------


SPEC = {
    "machine": "t", "workload": "synthetic", "torch": "current", "device": "cuda", "model": "resnet18",
    "dtype": "float32", "mode": "infer", "variant": "eager", "batch": 2, "input_size": 32,
    "num_classes": 3, "warmup": 1, "repeats": 2, "steps_per_repeat": 1, "cpu_threads": 1, "seed": 0,
}


def test_a_fake_gpu_cell_records_its_slot(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from speedatlas.measure.process import runner

    allowed = sorted(os.sched_getaffinity(0))
    table = [Slot(0, "Fake GPU", "GPU-fake-0", cpus=tuple(allowed)), Slot(1, "Fake GPU", "GPU-fake-1", cpus=tuple(allowed))]
    for key, value in {**device_env(table), slots.FAKE_ENV: "2", machine_lock.LOCK_ENV: str(tmp_path / "t.lock")}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "cell.parquet"
    with slots.hold("cuda:0", str(tmp_path / "t.lock"), device_env(table)):  # GPU 0 is busy
        assert runner.run_cell(SPEC, str(out), 1) == "ok"
    rows = pq.read_table(out).to_pylist()
    assert {(r["device"], r["gpu_index"], r["gpu_uuid"], r["device_name"], r["concurrency"]) for r in rows} == {
        ("cuda", 1, "GPU-fake-1", "Fake GPU", "device")}
    assert rows[0]["cpu_affinity"] == slots.format_cpulist(allowed)
    assert json.loads(os.environ[slots.SLOTS_ENV])[1]["uuid"] == "GPU-fake-1"


def test_machine_mode_records_the_mode_and_affinity(tmp_path, monkeypatch):
    from speedatlas.measure.process import runner

    monkeypatch.setenv(machine_lock.LOCK_ENV, str(tmp_path / "t.lock"))
    monkeypatch.delenv(slots.CONCURRENCY_ENV, raising=False)
    monkeypatch.delenv(slots.FAKE_ENV, raising=False)
    rows = runner.measure({**SPEC, "device": "cpu"}, cellkey.row_columns({**SPEC, "device": "cpu"}, 1))
    assert rows[0]["status"] == "ok" and rows[0]["concurrency"] == "machine" and "gpu_index" not in rows[0]
    assert rows[0]["cpu_affinity"] == slots.affinity()
