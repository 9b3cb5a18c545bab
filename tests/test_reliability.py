"""Guarantees: bad input is refused before anything runs and destroys nothing; a failing or
crashing cell costs only itself; an interrupted study completes on the next run."""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import SNAKEFILE, TINY, snakemake, write_config

pytestmark = pytest.mark.slow


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file below root."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mutate(path, value):
    config = copy.deepcopy(TINY)
    target = config
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return config


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        (mutate(["bach_sizes"], [1]), ["bach_sizes", "batch_sizes"]),
        (mutate(["batch_sizes"], [0]), ["batch_sizes[0]", "0"]),
        (mutate(["timing", "repeats"], -1), ["timing.repeats", "-1"]),
        (mutate(["devices"], ["cpu", "tpu"]), ["devices[1]", "'tpu'", "cpu, mps, cuda"]),
        (mutate(["dtypes"], ["fp8"]), ["dtypes[0]", "'fp8'"]),
        (mutate(["modes"], ["eval"]), ["modes[0]", "'eval'"]),
        (mutate(["models"], ["resnet19"]), ["models[0]", "resnet19", "resnet18"]),
        (mutate(["models"], []), ["models", "empty"]),
        (mutate(["devices"], ["cpu", "cpu"]), ["devices", "duplicate"]),
        (mutate(["baseline_device"], "cuda"), ["baseline_device", "'cuda'"]),
        (mutate(["machine"], "a/../../b"), ["machine", "'a/../../b'"]),
        (mutate(["input_size"], "big"), ["input_size", "'big'"]),
    ],
    ids=["typo", "zero-batch", "negative-repeats", "device", "dtype", "mode", "model", "empty-models",
         "duplicate", "baseline", "machine-path", "type"],
)
def test_bad_config_is_refused_and_destroys_nothing(tiny_study, config, fragments):
    before = tree_digest(tiny_study / "results")
    result = snakemake(tiny_study, write_config(tiny_study, config, "bad.yaml"), "--cores", "4", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "speedatlas config error" in output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output[-2000:]}"
    assert tree_digest(tiny_study / "results") == before


SMALL = {
    "machine": "small",
    "devices": ["cpu"],
    "models": ["resnet18", "mobilenet_v3_small"],
    "batch_sizes": [1, 2],
    "modes": ["infer", "train"],
    "input_size": 64,
    "num_classes": 4,
    "timing": {"warmup": 1, "repeats": 3, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1,
    "dtype_support": {"enabled": False},
}


@pytest.mark.parametrize("launcher", ["process", "forkserver"])
def test_a_crashing_cell_costs_only_itself(tmp_path, launcher):
    config = {**SMALL, "models": ["resnet18", "mobilenet_v3_small"], "batch_sizes": [2], "modes": ["infer"],
              "launcher": launcher}
    env = {**os.environ, "SPEEDATLAS_FAULT": "resnet18:segv"}
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path),
               "--configfile", str(write_config(tmp_path, config)), "--cores", "1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    cells = pd.read_parquet(tmp_path / "results" / "studies" / "config" / "tables" / "cells.parquet").set_index("model")
    assert cells.loc["resnet18", "status"] == "error"
    assert "SIGSEGV" in cells.loc["resnet18", "error"]
    assert cells.loc["mobilenet_v3_small", "status"] == "ok"
    assert cells.loc["mobilenet_v3_small", "launcher"] == launcher
    assert "SIGSEGV" in (tmp_path / "results" / "studies" / "config" / "report.md").read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_an_interrupted_study_completes_on_rerun(tmp_path, sig):
    # fresh processes (seconds per cell): with the fork server the eight cells can all finish
    # between two polls, and the interruption would land on a study that is already done
    configfile = write_config(tmp_path, {**SMALL, "launcher": "process"})
    cells_dir = tmp_path / "results" / "cells"
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path),
               "--configfile", str(configfile), "--cores", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(cells_dir.rglob("cell.parquet"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, sig)  # the whole group, as a terminal's Ctrl-C does
    process.wait(timeout=120)
    done_before = len(list(cells_dir.rglob("cell.parquet")))
    assert 2 <= done_before < 8

    if sig == signal.SIGKILL:  # a killed snakemake leaves its lock behind
        snakemake(tmp_path, configfile, "--unlock", "--cores", "1")
    snakemake(tmp_path, configfile, "--cores", "1")
    files = sorted(cells_dir.rglob("cell.parquet"))
    assert len(files) == 8
    for path in files:
        table = pq.read_table(path)
        assert table.column("status").to_pylist()[0] == "ok"
        assert table.num_rows == SMALL["timing"]["repeats"]
    assert not [p for p in cells_dir.rglob("*") if p.name.endswith(".tmp")]
    cells = pd.read_parquet(tmp_path / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert len(cells) == 8 and (cells.status == "ok").all()
