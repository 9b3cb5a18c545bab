"""The real workflow on a tiny study: cells, tables, report, and what a rerun does."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from conftest import REPO, TINY, TINY_CELLS, planned_jobs, write_config

from speedatlas.measure import cellio

pytestmark = pytest.mark.slow


def cell_files(directory: Path) -> list[Path]:
    return sorted((directory / "results" / "cells").rglob("cell.parquet"))


def test_one_parquet_per_cell_with_the_schema(tiny_study):
    files = cell_files(tiny_study)
    assert len(files) == TINY_CELLS
    raw = ds.dataset([str(f) for f in files], format="parquet").to_table().to_pandas()
    assert set(cellio.arrow_schema().names) <= set(raw.columns)
    ok = raw[raw.status == "ok"]
    assert len(ok) == 5 * TINY["timing"]["repeats"]  # resnet18: 4 cpu cells; mobilenet: 1
    assert (ok.step_time_s > 0).all() and (ok.step_time_s < 60).all()
    assert (ok.items_per_s - ok.batch_size / ok.step_time_s).abs().max() < 1e-6
    assert (ok.threads == 1).all()
    assert (ok.launcher == "forkserver").all()  # launcher: auto forks on Linux
    assert (ok.setup_s > 0).all() and (ok.lock_wait_s >= 0).all()
    assert ok.torch_version.notna().all() and ok.cpu_model.notna().all() and ok.pipeline_commit.notna().all()
    assert (ok.finished_at > ok.started_at).all()
    train = ok[ok["mode"] == "train"]
    assert train.final_loss.notna().all() and (train.final_loss >= 0).all()


def test_hive_path_matches_columns(tiny_study):
    dataset = ds.dataset(str(tiny_study / "results" / "cells"), format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["model", "batch", "batch_size", "device"]).to_pandas()
    assert (table["batch"].astype(int) == table["batch_size"]).all()


def test_unavailable_and_failing_cells_are_results(tiny_study):
    cells = pd.read_parquet(tiny_study / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert len(cells) == TINY_CELLS
    mps = cells[cells.device == "mps"]
    assert len(mps) == 5 and (mps.status == "unavailable").all()
    assert mps.error.str.contains("mps is not available").all()
    alexnet = cells[cells.model == "alexnet"].iloc[0]
    assert alexnet.status == "error" and "size" in alexnet.error.lower()
    report = (tiny_study / "results" / "studies" / "config" / "report.md").read_text()
    section = report.split("## Cells that did not run", 1)[1]
    # Grouped by device, status and reason: one row for the 5 unavailable mps cells.
    assert "| mps | unavailable | 5 | mobilenet_v3_small, resnet18 |" in section and "alexnet" in section


def test_tables_and_report(tiny_study):
    results = tiny_study / "results"
    speedups = pd.read_parquet(results / "studies" / "config" / "tables" / "speedups.parquet")
    scaling = speedups[speedups.axis == "batch_size"]
    assert len(scaling) == 2  # resnet18 train and infer, batch 2 over batch 1
    assert (scaling.ci_low <= scaling.speedup).all() and (scaling.speedup <= scaling.ci_high).all()
    assert (scaling.speedup > 0.5).all() and (scaling.speedup < 10).all()
    csv = pd.read_csv(results / "studies" / "config" / "tables" / "speedups.csv")
    assert len(csv) == len(speedups)
    report = (results / "studies" / "config" / "report.md").read_text()
    for heading in ("## Summary", "## Methodology", "## Environment", "## Speed-ups", "## Cells that did not run"):
        assert heading in report
    assert "![Throughput vs batch size](plots/throughput.png)" in report
    png = results / "studies" / "config" / "plots" / "throughput.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_timing_jobs_never_overlap(tiny_study):
    """The study ran with --cores 4: no two timed regions intersect, and Snakemake never had
    two bench jobs in flight at once (the speedatlas_timing resource)."""
    raw = ds.dataset([str(f) for f in cell_files(tiny_study)], format="parquet").to_table().to_pandas()
    spans = raw[raw.status == "ok"].groupby(["model", "device", "mode", "batch_size"]).agg(
        start=("started_at", "min"), end=("finished_at", "max")
    ).sort_values("start")
    assert (spans.start.iloc[1:].to_numpy() >= spans.end.iloc[:-1].to_numpy()).all()

    in_flight, most = set(), 0
    lines = (tiny_study / "run.log").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() in ("rule bench:", "localrule bench:"):
            jobid = next(l.split(":")[1].strip() for l in lines[i:] if l.strip().startswith("jobid:"))
            in_flight.add(jobid)
            most = max(most, len(in_flight))
        elif line.startswith("Finished jobid:"):
            in_flight.discard(line.split()[2])
    assert most == 1


def test_second_run_has_nothing_to_do(tiny_study):
    assert planned_jobs(tiny_study, tiny_study / "config.yaml") == {}


def test_adding_a_batch_size_schedules_only_new_cells(tiny_study):
    config = copy.deepcopy(TINY)
    config["batch_sizes"] = [1, 2, 3]
    jobs = planned_jobs(tiny_study, write_config(tiny_study, config, "more.yaml"))
    assert jobs["bench"] == 2 * 2  # resnet18 x {cpu, mps} x {train, infer} at batch 3
    assert jobs["aggregate"] == 1


def test_changing_one_models_override_reruns_only_its_cells(tiny_study):
    config = copy.deepcopy(TINY)
    config["models"][1]["timing"] = {"repeats": 5}
    jobs = planned_jobs(tiny_study, write_config(tiny_study, config, "override.yaml"))
    assert jobs["bench"] == 2  # mobilenet_v3_small on cpu and mps


def test_plot_code_change_reruns_no_cell(tiny_study):
    script = REPO / "workflow" / "scripts" / "plots.py"
    before = script.stat()
    try:
        os.utime(script)  # as if edited now
        jobs = planned_jobs(tiny_study, tiny_study / "config.yaml")
    finally:
        os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "bench" not in jobs and "cell_file" not in jobs
    assert jobs.get("plots") == 1
