"""The measured dtype support matrix: real probes on the CPU (float16/bfloat16 are real cases
there), crash isolation, and the table and report section from fake rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from speedatlas.present.report import dtype_support as dtype_support_report
from speedatlas.analyze import dtype_support_table
from speedatlas.measure import cellio, dtype_probe

SPEC = {
    "machine": "t", "torch": "current", "device": "cpu", "dtypes": ["float32", "float16", "bfloat16"],
    "model": "resnet18", "input_size": 32, "batch": 4, "num_classes": 10, "train_steps": 3, "seed": 0,
    "methods": ["autocast", "cast"], "cpu_threads": 0, "protocol": 1,
    "tolerance": {"infer": {"float32": 0.005, "float16": 0.01, "bfloat16": 0.05},
                  "train": {"float32": 0.01, "float16": 0.05, "bfloat16": 0.15}},
}


@pytest.fixture(scope="module")
def cpu_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "support.parquet"
    dtype_probe.run_job(SPEC, str(out))
    return pd.read_parquet(out).set_index(["dtype", "mode", "method"])


def test_float32_on_cpu_is_its_own_reference(cpu_rows):
    for mode in ("infer", "train"):
        row = cpu_rows.loc[("float32", mode, "native")]
        assert row["outcome"] == "runs" and row["drift"] == 0 and row["output_dtype"] == "float32"
    train = cpu_rows.loc[("float32", "train", "native")]
    assert train["value"] == train["reference"] and train["value"] < train["value_initial"]  # it learnt


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_on_cpu_runs_in_that_dtype_with_small_drift(cpu_rows, dtype):
    for method in ("autocast", "cast"):
        infer = cpu_rows.loc[(dtype, "infer", method)]
        assert infer["outcome"] == "runs" and infer["output_dtype"] == dtype
        assert 0 < infer["drift"] <= infer["tolerance"]
    autocast_train = cpu_rows.loc[(dtype, "train", "autocast")]
    assert autocast_train["outcome"] == "runs" and 0 < autocast_train["drift"] <= autocast_train["tolerance"]


def test_pure_float16_training_with_adam_goes_nonfinite(cpu_rows):
    row = cpu_rows.loc[("float16", "train", "cast")]
    assert row["outcome"] == "nonfinite" and "nan" in row["error"].lower()


def test_rows_follow_the_support_schema(cpu_rows):
    assert len(cpu_rows) == 2 + 4 + 4
    assert set(cellio.arrow_schema(dtype_probe.SCHEMA_FILE).names) == set(cpu_rows.reset_index().columns)
    assert cpu_rows["torch_version"].notna().all() and (cpu_rows["device_name"] != "").all()


@pytest.mark.slow
def test_a_crashing_dtype_costs_only_itself(tmp_path):
    out = tmp_path / "support.parquet"
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow"), "SPEEDATLAS_FAULT": "dtype_probe:float16:segv"}
    spec = {**SPEC, "methods": ["autocast"], "input_size": 16}
    subprocess.run([sys.executable, "-m", "speedatlas.measure.dtype_probe", "--python", sys.executable,
                    "--spec", json.dumps(spec), "--out", str(out)], env=env, check=True, timeout=600)
    rows = pd.read_parquet(out)
    outcome = rows.groupby("dtype")["outcome"].agg(set).to_dict()
    assert outcome == {"float32": {"runs"}, "float16": {"crashes"}, "bfloat16": {"runs"}}
    assert rows.loc[rows.dtype == "float16", "error"].str.contains("SIGSEGV while probing float16").all()


def fake(dtype, mode, method, outcome, device="mps", **extra):
    return {"machine": "m", "torch_requested": "current", "torch_version": "2.9.0", "device": device,
            "device_name": "Apple M1 Max GPU (mps)", "dtype": dtype, "mode": mode, "method": method,
            "outcome": outcome, "model": "resnet18", "input_size": 64, "batch_size": 4, "train_steps": 3,
            "tolerance": 0.01, **extra}


def test_matrix_and_claims_from_fake_rows():
    rows = [
        fake("float32", "infer", "native", "runs", drift=2e-6),
        fake("float32", "train", "native", "runs", drift=1e-4),
        fake("bfloat16", "infer", "autocast", "raises", error_kind="unsupported",
             error="TypeError: BFloat16 is not supported on MPS (at models.py:70)"),
        fake("bfloat16", "train", "autocast", "crashes", error="the probe's process was killed by SIGSEGV"),
        fake("float16", "infer", "autocast", "drift", drift=0.3),
        fake("float16", "train", "autocast", "nonfinite", error="the loss of training step 2 is nan"),
        fake("float16", "infer", "cast", "runs", drift=1e-3, device="cpu"),
    ]
    table = dtype_support_table.support_table(cellio.rows_to_table(rows, dtype_probe.SCHEMA_FILE).to_pandas())
    assert list(table["device"].unique()) == ["cpu", "mps"]  # cpu first, then by dtype
    text = dtype_support_report.support_markdown(table)
    assert text.startswith("## dtype support (measured)")
    assert "| 2.9.0 | mps | bfloat16 | autocast | **raises** (unsupported) | **crashes** |" in text
    assert "| 2.9.0 | mps | float16 | autocast | **drift 3.0e-01** > 1e-02 | **non-finite** |" in text
    assert "BFloat16 is not supported on MPS" in text  # errors in full
    assert "| bfloat16 | not supported | infer · autocast: raises; train · autocast: crashes |" in text
    assert "Outcomes: 3 runs, 1 drift, 1 nonfinite, 1 raises, 1 crashes." in text


def test_turned_off_section():
    assert "turned off" in dtype_support_report.support_markdown(dtype_support_table.support_table(pd.DataFrame()))
