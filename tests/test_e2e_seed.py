"""The real workflow on a tiny seed study: both workloads, the published figures beside ours,
the dtype support matrix, and what a config change reruns."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from conftest import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

PUBLISHED_CSV = """\
# A made-up published study, for the test.
model,batch_size,device,epoch_time_s,speedup_pct
resnet18,4,cpu,42.05,
resnet18,4,mps,18.61,225
"""

SEED = {
    "machine": "seedtest",
    "devices": ["cpu", "mps"],
    "baseline_device": "cpu",
    "models": ["resnet18"],
    "batch_sizes": [4],
    "modes": ["train"],
    "workload": ["synthetic", "mnist_epoch"],
    "input_size": 32,
    "num_classes": 10,
    "timing": {"warmup": 1, "repeats": 3, "processes": 1},
    "cpu_threads": 1,
    "data": {"images": 12, "num_workers": 1, "epochs": 2},
    "published": "published.csv",
    "dtype_support": {"enabled": True, "input_size": 16, "methods": ["autocast"], "train_steps": 2},
}


@pytest.fixture(scope="module")
def seed_study(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("seed")
    (directory / "published.csv").write_text(PUBLISHED_CSV)
    snakemake(directory, write_config(directory, SEED), "--cores", "2")
    return directory


def test_epoch_cells_time_whole_epochs(seed_study):
    files = sorted((seed_study / "results" / "cells").rglob("cell.parquet"))
    assert len(files) == 4
    raw = ds.dataset([str(f) for f in files], format="parquet", partitioning=None).to_table().to_pandas()
    epochs = raw[(raw.workload == "mnist_epoch") & (raw.status == "ok")]
    assert len(epochs) == 2 and (epochs.device == "cpu").all()
    assert (epochs.dataset == "synthetic-mnist").all() and (epochs.images_per_epoch == 12).all()
    assert (epochs.steps_per_repeat == 3).all()
    assert ((epochs.step_time_s - epochs.epoch_time_s / 3).abs() < 1e-9).all()
    assert (epochs.data_wait_s > 0).all() and (epochs.data_wait_s < epochs.epoch_time_s).all()
    assert (epochs.first_epoch_s > 0).all()
    cells = pd.read_parquet(seed_study / "results" / "studies" / "config" / "tables" / "cells.parquet")
    epoch_cell = cells[(cells.workload == "mnist_epoch") & (cells.device == "cpu")].iloc[0]
    assert epoch_cell.items_per_s == pytest.approx(12 / (epoch_cell.median_s * 3))


def test_tables_and_report_sections(seed_study):
    results = seed_study / "results"
    side = pd.read_parquet(results / "studies" / "config" / "tables" / "seed_side_by_side.parquet").set_index("device")
    assert side.loc["cpu", "published_epoch_s"] == 42.05 and side.loc["cpu", "status"] == "ok"
    assert 0 < side.loc["cpu", "input_share"] < 1 and side.loc["cpu", "epoch_s"] > 0
    assert side.loc["cpu", "compute_only_epoch_s"] > 0
    assert side.loc["mps", "status"] == "unavailable"
    support = pd.read_parquet(results / "studies" / "config" / "tables" / "dtype_support.parquet")
    assert set(support.loc[support.device == "mps", "outcome"]) == {"unavailable"}
    cpu = support[support.device == "cpu"].set_index(["dtype", "mode"])
    assert len(cpu) == 6 and (cpu["outcome"] == "runs").all()
    report = (results / "studies" / "config" / "report.md").read_text()
    order = [report.index(h) for h in ("## Speed-ups", "## Seed study, side by side", "## Epoch workload (mnist_epoch)",
                                       "## dtype support (measured)", "## Plots")]
    assert order == sorted(order)
    assert "> A made-up published study, for the test." in report
    assert "| mnist_epoch | resnet18 | cpu |" in report  # the cells table names the workload


def test_rerun_rules(seed_study):
    configfile = seed_study / "config.yaml"
    assert planned_jobs(seed_study, configfile) == {}

    # the same study (its name would follow the config file's), one setting changed
    more = {**copy.deepcopy(SEED), "study": "config"}
    more["data"]["images"] = 16
    jobs = planned_jobs(seed_study, write_config(seed_study, more, "images.yaml"))
    assert jobs["bench"] == 2 and "dtype_support" not in jobs  # only the mnist_epoch cells

    probe = {**copy.deepcopy(SEED), "study": "config"}
    probe["dtype_support"]["train_steps"] = 3
    jobs = planned_jobs(seed_study, write_config(seed_study, probe, "probe.yaml"))
    assert jobs["dtype_support"] == 2 and "bench" not in jobs and "aggregate" not in jobs

    (seed_study / "published.csv").write_text(PUBLISHED_CSV.replace("42.05", "42.5"))
    try:
        jobs = planned_jobs(seed_study, configfile)
    finally:
        (seed_study / "published.csv").write_text(PUBLISHED_CSV)
    assert set(jobs) == {"seed_side_by_side", "report_md", "all"}
