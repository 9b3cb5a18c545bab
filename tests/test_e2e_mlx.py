"""PyTorch or MLX, end to end (issue 24): the real workflow on a tiny study with torch and MLX
cells of all four ported models, the MLX environment built by the pipeline where this
interpreter has no mlx."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import snakemake, write_config

from speedatlas.plan import mlx_env, torch_envs

CONFIG = {
    "machine": "test",
    "devices": ["cpu"],
    "baseline_device": "cpu",
    "models": [
        {"name": "resnet18", "variants": ["eager", "mlx", "mlx_compile"], "modes": ["train", "infer"]},
        {"name": "resnet50", "modes": ["infer"]},
        {"name": "bert_base", "args": {"layers": 1}, "input": {"length": 16}, "modes": ["train"]},
        {"name": "gpt2_small", "args": {"layers": 1}, "input": {"length": 16, "vocab": 1000}, "modes": ["infer"]},
    ],
    "variants": ["eager", "mlx"],
    "dtypes": ["float32"],
    "batch_sizes": [2],
    "input_size": 32,
    "num_classes": 4,
    # a fixed 2 processes: the precision rule's pilots (4 to 10 fresh MLX interpreters a cell) took
    # this test to 9 minutes of CI; the rule has its own end-to-end test (test_e2e_precision.py)
    "timing": {"warmup": 1, "repeats": 3, "steps_per_repeat": 1, "processes": 2},
    "cpu_threads": 1,
    "energy": {"enabled": False},
    "dtype_support": {"enabled": False},
}


@pytest.mark.slow
def test_torch_and_mlx_cells_side_by_side(tmp_path):
    if not mlx_env.importable() and torch_envs.find_uv() is None:
        pytest.skip("neither an installed mlx nor uv to build the MLX environment")
    configfile = write_config(tmp_path, CONFIG)
    snakemake(tmp_path, configfile, "--cores", "2")

    raw = pd.read_parquet(tmp_path / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert len(raw) == 12 and set(raw["status"]) == {"ok"}, raw[raw["status"] != "ok"][["model", "variant", "error"]]
    rows = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "results" / "cells").rglob("cell.parquet"))])
    mlx = rows[rows["variant"].isin(["mlx", "mlx_compile"])]
    assert mlx.groupby(["model", "mode", "variant"]).ngroups == 7
    assert (mlx["status"] == "ok").all()
    assert (mlx["parity_max_rel_err"] <= mlx["parity_tolerance"]).all() and (mlx["parity_max_rel_err"] < 1e-4).all()
    assert mlx["mlx_version"].notna().all() and mlx["mlx_device"].str.startswith("cpu:0").all()
    assert (mlx["compute_dtype"] == "float32").all() and mlx["host_share"].isna().all()
    assert rows["step_time_s"].between(1e-5, 60).all()
    assert rows[rows["variant"] == "eager"]["parity_max_rel_err"].isna().all()

    if not mlx_env.importable():  # built by the pipeline, layered on this environment
        marker = json.loads((tmp_path / ".speedatlas" / "envs" / "mlx-0.32.4" / "env.json").read_text())
        assert marker["status"] == "ok" and marker["mlx_version"] == "0.32.4"

    table = pd.read_parquet(tmp_path / "results" / "studies" / "config" / "tables" / "torch_vs_mlx.parquet")
    paired = table[table["speedup"].notna()]
    assert len(table) == 7 and len(paired) == 5  # mlx_compile has no torch.compile partner here
    assert (paired["ci_low"] <= paired["speedup"]).all() and (paired["speedup"] <= paired["ci_high"]).all()
    report = (tmp_path / "results" / "studies" / "config" / "report.md").read_text()
    assert "## PyTorch or MLX" in report and "MLX vs torch eager" in report
    assert "(plots/torch_vs_mlx.png)" in report and (tmp_path / "results" / "studies" / "config" / "plots" / "torch_vs_mlx.png").is_file()
