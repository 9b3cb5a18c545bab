"""concurrency: device through the real workflow, on the CPU, with two fake GPUs.

SPEEDATLAS_FAKE_GPUS=2 makes the snakemake process see two GPUs ("Fake GPU"); their cells compute
on the CPU but take their slot's resources, lock and cores exactly as on a multi-GPU machine.
The cells' recorded timed regions show what ran beside what.
"""

from __future__ import annotations

import itertools
import os

import pyarrow.dataset as ds
import pytest
from conftest import planned_jobs, snakemake, write_config

from speedatlas.measure.process import gpu_slot as slots
from speedatlas.plan import concurrency

pytestmark = pytest.mark.slow

CONFIG = {
    "machine": "fake2", "devices": ["cpu", "cuda:0", "cuda:1", "cuda"], "baseline_device": "cpu",
    "models": ["resnet18"], "batch_sizes": [1, 2], "dtypes": ["float32"], "modes": ["infer"],
    "input_size": 32, "num_classes": 4, "timing": {"warmup": 2, "repeats": 10, "steps_per_repeat": 10, "processes": 1},
    "cpu_threads": 1, "concurrency": "device", "dtype_support": {"enabled": False},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fake2")
    configfile = write_config(directory, CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(slots.FAKE_ENV, "2")
        patch.setenv("SPEEDATLAS_LOCK", str(directory / "timing.lock"))
        result = snakemake(directory, configfile, "--cores", "2", "--until", "cell_file")
    (directory / "run.log").write_text(result.stdout + result.stderr)
    files = sorted(str(p) for p in (directory / "results" / "cells").rglob("cell.parquet"))
    cells = ds.dataset(files, format="parquet").to_table().to_pandas()
    spans = cells.groupby(["device", "batch_size"]).agg(
        start=("started_at", "min"), end=("finished_at", "max"), status=("status", "first"),
        gpu_index=("gpu_index", "first"), gpu_uuid=("gpu_uuid", "first"), device_name=("device_name", "first"),
        cpu_affinity=("cpu_affinity", "first"), concurrency=("concurrency", "first"),
    ).reset_index()
    return directory, spans


def overlap(a, b) -> bool:
    return a.start < b.end and b.start < a.end


def test_every_cell_ran_on_the_slot_it_recorded(study):
    _, spans = study
    assert len(spans) == 8 and (spans.status == "ok").all() and (spans.concurrency == "device").all()
    gpu = spans[spans.device != "cpu"]
    assert (gpu.device_name == "Fake GPU").all()
    assert (gpu[gpu.device == "cuda:1"].gpu_index == 1).all() and (gpu[gpu.device == "cuda:0"].gpu_index == 0).all()
    assert set(gpu[gpu.device == "cuda"].gpu_index) <= {0, 1}
    assert (gpu.gpu_uuid == "GPU-fake-" + gpu.gpu_index.astype(int).astype(str)).all()
    assert spans[spans.device == "cpu"].gpu_index.isna().all()


def test_each_slot_ran_on_its_own_cores(study):
    _, spans = study
    allowed = sorted(os.sched_getaffinity(0))
    shares = [slots.format_cpulist(share) for share in concurrency.split_cpus(allowed, [None, None])]
    gpu = spans[spans.device != "cpu"]
    assert all(row.cpu_affinity == shares[int(row.gpu_index)] for row in gpu.itertuples())
    assert (spans[spans.device == "cpu"].cpu_affinity == slots.format_cpulist(allowed)).all()


def test_gpu_cells_overlap_and_cpu_cells_run_alone(study):
    _, spans = study
    rows = list(spans.itertuples())
    pairs = [(a, b) for a, b in itertools.combinations(rows, 2) if overlap(a, b)]
    assert pairs, "no two GPU cells ran side by side"
    for a, b in pairs:
        assert "cpu" not in (a.device, b.device), f"{a.device} overlapped {b.device}"
        assert a.gpu_index != b.gpu_index, "two cells timed on one GPU at once"


def test_the_cells_table_counts_busy_neighbours(study):
    from speedatlas.analyze import tables

    directory, spans = study
    files = sorted(str(p) for p in (directory / "results" / "cells").rglob("cell.parquet"))
    cells = tables.summarize_cells(tables.read_cells(files))
    assert (cells[cells.device == "cpu"].neighbours_busy == 0).all()
    side_by_side = cells[cells.neighbours_busy > 0]
    assert len(side_by_side) >= 2 and (side_by_side.device != "cpu").all()
    assert set(cells.gpu_index.dropna().astype(int)) == {0, 1}


def test_snakemake_ran_two_gpu_jobs_but_never_a_cpu_job_beside_another(study):
    directory, _ = study
    lines = (directory / "run.log").read_text().splitlines()
    in_flight: dict[str, str] = {}
    most, cpu_with_others = 0, False
    for i, line in enumerate(lines):
        if line.strip() in ("rule bench:", "localrule bench:"):
            block = lines[i:i + 12]
            jobid = next(l.split(":")[1].strip() for l in block if l.strip().startswith("jobid:"))
            device = next(l.split("device=")[1].split(",")[0] for l in block if "wildcards:" in l)
            in_flight[jobid] = device
            most = max(most, len(in_flight))
            cpu_with_others |= len(in_flight) > 1 and "cpu" in in_flight.values()
        elif line.startswith("Finished jobid:"):
            in_flight.pop(line.split()[2], None)
    assert most == 2 and not cpu_with_others


def test_switching_the_mode_reruns_no_cell(study):
    directory, _ = study
    machine = write_config(directory, {**CONFIG, "concurrency": "machine"}, "machine.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(slots.FAKE_ENV, "2")
        assert "bench" not in planned_jobs(directory, machine)
