"""The torch-version axis for real: uv builds a torch 2.0 environment and a cell runs in it.

Downloads torch 2.0 from PyPI on a cold uv cache (about 2.5 GB, 20-30 s here); afterwards uv
hardlinks it from its cache in seconds. "2.99" does not exist: its build must fail softly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
import torch
from conftest import REPO, planned_jobs, snakemake, write_config

pytestmark = [pytest.mark.slow, pytest.mark.torch_env]

OLDEST = "2.0"  # the oldest torch the runner supports; installs from PyPI on Python 3.11 x86_64
STUDY = {
    "machine": "test",
    "devices": ["cpu"],
    "torch_versions": ["current", OLDEST, "2.99"],
    "models": ["mobilenet_v3_small"],
    "batch_sizes": [2],
    "modes": ["train", "infer"],
    "input_size": 32,
    "num_classes": 4,
    "timing": {"warmup": 1, "repeats": 5, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1,
}


@pytest.fixture(scope="module")
def versions_study(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("torch_versions")
    configfile = write_config(directory, STUDY)
    result = snakemake(directory, configfile, "--cores", "2")
    (directory / "run.log").write_text(result.stdout + result.stderr)
    return directory


def cells_of(directory: Path) -> pd.DataFrame:
    files = sorted(str(p) for p in (directory / "results" / "cells").rglob("cell.parquet"))
    return ds.dataset(files, format="parquet").to_table().to_pandas()


def test_each_version_ran_in_its_own_environment(versions_study):
    marker = json.loads((versions_study / ".speedatlas/envs/torch-2.0/env.json").read_text())
    assert marker["status"] == "ok" and marker["torch_version"].startswith("2.0.")
    assert marker["python"].rsplit(".", 1)[0] == ".".join(map(str, __import__("sys").version_info[:2]))
    raw = cells_of(versions_study)
    ok = raw[raw.status == "ok"]
    assert set(ok.torch_requested) == {"current", OLDEST}
    old = ok[ok.torch_requested == OLDEST]
    assert len(old) == 2 * STUDY["timing"]["repeats"]
    assert old.torch_version.str.startswith("2.0.").all() and old.torchvision_version.str.startswith("0.15.").all()
    assert (old.torch_version == marker["torch_version"]).all() and old.torch_build.notna().all()
    current = ok[ok.torch_requested == "current"]
    assert (current.torch_version == torch.__version__).all()
    assert (ok.step_time_s > 0).all() and (ok.step_time_s < 10).all()
    assert ok[ok["mode"] == "train"].final_loss.notna().all()


def test_a_version_that_cannot_be_installed_is_unavailable(versions_study):
    marker = json.loads((versions_study / ".speedatlas/envs/torch-2.99/env.json").read_text())
    assert marker["status"] == "failed" and "torch 2.99" in marker["error"] and "2.99" in marker["error"][30:]
    cells = pd.read_parquet(versions_study / "results" / "studies" / "config" / "tables" / "cells.parquet")
    missing = cells[cells.torch_requested == "2.99"]
    assert len(missing) == 2 and (missing.status == "unavailable").all()
    assert missing.error.str.startswith("torch 2.99 environment could not be built: ").all()
    report = (versions_study / "results" / "studies" / "config" / "report.md").read_text()
    assert "## Torch versions" in report and "torch 2.99 environment could not be built" in report
    assert "--forcerun .speedatlas/envs/torch-<version>/env.json" in report


def test_version_speedups_name_the_actual_builds(versions_study):
    results = versions_study / "results"
    speedups = pd.read_parquet(results / "studies" / "config" / "tables" / "speedups.parquet")
    version = speedups[speedups.axis == "torch_requested"]
    assert len(version) == 2  # mobilenet train and infer: 2.0 over current
    assert (version.baseline == "current").all() and (version.candidate == OLDEST).all()
    assert (version.baseline_torch_version == torch.__version__).all()
    assert version.candidate_torch_version.str.startswith("2.0.").all()
    assert (version.ci_low <= version.speedup).all() and (version.speedup <= version.ci_high).all()
    assert (version.speedup > 0.1).all() and (version.speedup < 10).all()
    actual = version.candidate_torch_version.iloc[0]
    assert f"{actual} (2.0) vs {torch.__version__} (current)" in (results / "studies" / "config" / "tables" / "speedups.md").read_text()
    report = (results / "studies" / "config" / "report.md").read_text()
    assert "### Torch-version speed-ups" in report and f"{actual} (2.0) vs" in report
    assert "![Throughput by torch version](plots/torch_versions.png)" in report
    for suffix in ("png", "svg"):
        assert (results / "studies" / "config" / "plots" / f"torch_versions.{suffix}").stat().st_size > 5_000


def test_environments_are_reused(versions_study):
    assert planned_jobs(versions_study, versions_study / "config.yaml") == {}
    results, moved = versions_study / "results", versions_study / "results.moved"
    results.rename(moved)
    try:  # rm -r results: every cell again, no environment
        jobs = planned_jobs(versions_study, versions_study / "config.yaml")
    finally:
        moved.rename(results)
    assert "torch_env" not in jobs and jobs["bench"] == 6


def test_a_new_version_schedules_only_its_own_cells(versions_study):
    config = copy.deepcopy(STUDY)
    config["torch_versions"] = [*STUDY["torch_versions"], "2.5"]
    jobs = planned_jobs(versions_study, write_config(versions_study, config, "more.yaml"))
    assert jobs["torch_env"] == 1 and jobs["bench"] == 2


def test_a_new_spec_rebuilds_its_environment_and_reruns_only_its_cells(versions_study):
    explicit = REPO / "envs" / f"torch-{OLDEST}.txt"
    assert not explicit.exists()
    template = (REPO / "envs" / "torch-default.txt").read_text()
    explicit.write_text(template + "pillow<12\n")
    try:
        jobs = planned_jobs(versions_study, versions_study / "config.yaml")
    finally:
        explicit.unlink()
    assert jobs["torch_env"] == 1 and jobs["bench"] == 2  # the 2.0 cells; current is untouched
    assert planned_jobs(versions_study, versions_study / "config.yaml") == {}


def test_a_failed_build_is_retried_on_request(versions_study, tmp_path):
    jobs = planned_jobs(versions_study, versions_study / "config.yaml", "--forcerun",
                        ".speedatlas/envs/torch-2.99/env.json")
    assert jobs["torch_env"] == 1 and jobs["bench"] == 2
