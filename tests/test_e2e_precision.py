"""The precision rule through the real pipeline (issue 23): a pilot, rounds, the processes the
pilot's spread asks for and no more, the plan and the interval in the cell file and the tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import snakemake, write_config

from speedatlas.measure.protocol import precision

pytestmark = pytest.mark.slow

CONFIG = {
    "machine": "prec", "devices": ["cpu", "mps"], "baseline_device": "cpu",
    "models": [{"name": "resnet18", "batch_sizes": [1, 2], "modes": ["infer"]}],
    "input_size": 32, "num_classes": 4, "cpu_threads": 1, "dtype_support": {"enabled": False},
    # a loose target, so quiet cells stop at their pilot, and a budget small enough to show a cap
    "timing": {"warmup": 1, "repeats": 4, "steps_per_repeat": 1, "precision": 0.5, "pilot_processes": 2,
               "max_processes": 4, "warmup_seconds": 0.0},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("precision")
    result = snakemake(directory, write_config(directory, CONFIG), "--cores", "1")
    (directory / "run.log").write_text(result.stdout + result.stderr)
    return directory


def receipts_of(folder: Path) -> dict[int, dict]:
    return {int(p.stem.split("-")[1]): json.loads(p.read_text()) for p in folder.glob("process-*.json")}


def test_each_cell_ran_the_processes_its_pilot_asked_for_and_no_more(study):
    cells = sorted((study / "results" / "cells").rglob("cell.parquet"))
    assert len(cells) == 4
    checked = 0
    for cell in cells:
        rows = pq.read_table(cell).to_pandas()
        folder = Path(str(cell.parent).replace("/results/cells/", "/results/processes/"))
        receipts = receipts_of(folder)
        assert sorted(receipts) == [0, 1, 2, 3]  # one job per process the budget allows
        if rows["device"].iloc[0] == "mps":  # unavailable here: process 0 says so, the rest do not run
            assert rows["status"].tolist() == ["unavailable"]
            assert all(receipts[k]["status"] == "skipped" and "process 0" in receipts[k]["reason"] for k in (1, 2, 3))
            continue
        pilot = [math.log(receipts[k]["median_step_s"]) for k in (0, 1)]
        plan = precision.plan(pilot, 0.5, 0.95, 4, (receipts[0]["seconds"] + receipts[1]["seconds"]) / 2, 120)
        ran = sorted(rows["process"].unique())
        assert ran == list(range(plan.processes))  # exactly the rule's number, in process order
        for k in range(plan.processes, 4):
            assert receipts[k]["status"] == "skipped" and receipts[k]["reason"].startswith("not needed")
        assert rows["planned_processes"].iloc[0] == plan.processes and rows["wanted_processes"].iloc[0] == plan.wanted
        assert rows["precision_target"].iloc[0] == 0.5 and rows["pilot_processes"].iloc[0] == 2
        assert (rows["gc_disabled"]).all() and (rows["step_time_s"] > 0).all() and rows["rounds"].all()
        checked += 1
    assert checked == 2


def test_processes_ran_in_rounds(study):
    """Process 1 of every cell starts after process 0 of every cell has finished."""
    rows = pq.read_table(sorted((study / "results" / "cells").rglob("cell.parquet"))[0]).to_pandas()
    assert "process" in rows  # sanity: the cells carry the column
    frames = [pq.read_table(p).to_pandas() for p in (study / "results" / "cells").rglob("cell.parquet")]
    ok = pd.concat([f for f in frames if (f["status"] == "ok").all()])
    spans = ok.groupby(["batch_size", "process"]).agg(start=("started_at", "min"), end=("finished_at", "max"))
    last_of_round0 = spans.xs(0, level="process")["end"].max()
    first_of_round1 = spans.xs(1, level="process")["start"].min()
    assert first_of_round1 > last_of_round0


def test_the_tables_carry_the_interval_and_the_precision_reached(study):
    cells = pd.read_parquet(study / "results" / "studies" / "config" / "tables" / "cells.parquet")
    ok = cells[cells["status"] == "ok"]
    assert len(ok) == 2
    assert ((ok["ci_low_s"] < ok["median_s"]) & (ok["median_s"] < ok["ci_high_s"])).all()
    for row in ok.itertuples():
        half = math.log(row.ci_high_s / row.median_s)
        assert row.precision == pytest.approx(math.expm1(half), rel=1e-6)
        assert row.precision_met == (row.precision <= 0.5 + 1e-9)
        assert row.precision_met or row.precision_limited_by in ("max_processes", "max_seconds")
    report = (study / "results" / "studies" / "config" / "report.md").read_text()
    assert "took the precision rule (target ±50%)" in report


def test_a_study_too_large_for_rounds_runs_each_cell_in_one_job_by_the_same_rule(tmp_path, monkeypatch):
    """Above matrix.ROUNDS_MAX_CELLS cells (moved to 1 here) a cell's processes run back to back
    in one job: the same receipts, the same precision rule, the cell file says rounds: false."""
    monkeypatch.setenv("SPEEDATLAS_ROUNDS_MAX_CELLS", "1")
    config = {**CONFIG, "devices": ["cpu"]}
    result = snakemake(tmp_path, write_config(tmp_path, config), "--cores", "1")
    assert "rule cell_file" not in result.stdout + result.stderr
    for cell in sorted((tmp_path / "results" / "cells").rglob("cell.parquet")):
        rows = pq.read_table(cell).to_pandas()
        folder = Path(str(cell.parent).replace("/results/cells/", "/results/processes/"))
        receipts = receipts_of(folder)
        pilot = [math.log(receipts[k]["median_step_s"]) for k in (0, 1)]
        plan = precision.plan(pilot, 0.5, 0.95, 4, (receipts[0]["seconds"] + receipts[1]["seconds"]) / 2, 120)
        assert sorted(rows["process"].unique()) == list(range(plan.processes))
        assert not rows["rounds"].any() and rows["planned_processes"].iloc[0] == plan.processes
