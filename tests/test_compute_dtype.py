"""compute_dtype and cpu_fallback_ops: the recorder, the check, the runner, a real tiny study."""

from __future__ import annotations

import contextlib
import json
import warnings

import pandas as pd
import pytest
import torch
from conftest import snakemake, write_config
from macos_fixtures import message_blocks

from speedatlas import cellkey
from speedatlas.measure.protocol import compute_dtype, steps
from speedatlas.measure.process.runner import measure

BLOCKS = message_blocks()
SPEC = {
    "machine": "t", "workload": "synthetic", "torch": "current", "device": "cpu", "model": "mobilenet_v3_small",
    "dtype": "float32", "mode": "infer", "variant": "eager", "batch": 2, "input_size": 32,
    "num_classes": 3, "warmup": 1, "repeats": 2, "steps_per_repeat": 1, "cpu_threads": 1, "seed": 0,
}


def tiny_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_recorder_sees_the_autocast_dtype_on_cpu(dtype):
    net = tiny_net()
    net(torch.randn(1, 3, 8, 8))  # materialise the lazy layer
    recorder = compute_dtype.DtypeRecorder().attach(net)
    with steps.autocast_context("cpu", dtype)():
        net(torch.randn(1, 3, 8, 8))
    recorder.detach()
    assert recorder.compute_dtype() == dtype and sum(recorder.counts.values()) == 2
    net(torch.randn(1, 3, 8, 8))
    assert sum(recorder.counts.values()) == 2  # hooks are off: timed steps never carry them


def test_compile_variant_records_an_untimed_eager_forward():
    net = tiny_net()
    images = torch.randn(2, 3, 8, 8)
    net(images)
    net.train()
    out: dict = {}
    log = compute_dtype.WarningLog([])
    check = compute_dtype.first_step_check(net, images, {"dtype": "bfloat16", "variant": "compile"},
                                           steps.autocast_context("cpu", "bfloat16"), log, out)
    net(images)  # the (compiled) first step: no hooks attached yet
    check()
    assert out == {"compute_dtype": "bfloat16"} and net.training  # train mode restored


def _silent_float32_autocast(device, dtype):
    """What torch 2.5's mps autocast does for bfloat16: warn, then run in float32."""

    @contextlib.contextmanager
    def disabled():
        warnings.warn(BLOCKS[7].split("UserWarning: ", 1)[1].strip())
        yield

    return contextlib.nullcontext if dtype == "float32" else disabled


def test_silent_autocast_fallback_becomes_unsupported(monkeypatch):
    monkeypatch.setattr(steps, "autocast_context", _silent_float32_autocast)
    rows = measure({**SPEC, "dtype": "bfloat16"}, cellkey.row_columns(SPEC, 1))
    assert len(rows) == 1 and rows[0]["status"] == "unsupported"
    assert rows[0]["compute_dtype"] == "float32"
    assert "asked for bfloat16, the model computed in float32" in rows[0]["error"]
    assert "In MPS autocast, but the target dtype is not supported. Disabling autocast." in rows[0]["error"]
    assert rows[0]["cpu_fallback_ops"] == "[]"


def test_cpu_fallback_warnings_become_op_names(monkeypatch):
    make_step = steps.make_step

    def warning_step(*args, **kwargs):
        step = make_step(*args, **kwargs)

        def step_with_fallback():
            # torch warns once per process (TORCH_WARN_ONCE in MPSFallback.mm); we warn every step
            warnings.warn(BLOCKS[2].split("UserWarning: ", 1)[1].splitlines()[0])
            warnings.warn(BLOCKS[3].split("UserWarning: ", 1)[1].splitlines()[0])
            return step()

        return step_with_fallback

    monkeypatch.setattr(steps, "make_step", warning_step)
    rows = measure(SPEC, cellkey.row_columns(SPEC, 1))
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert json.loads(rows[0]["cpu_fallback_ops"]) == ["aten::_upsample_bilinear2d_aa.out", "aten::sgn.out"]


def test_fallback_parser_on_every_recorded_message():
    assert compute_dtype.cpu_fallback_ops([BLOCKS[1], BLOCKS[2], BLOCKS[3], BLOCKS[4]]) == [
        "aten::_upsample_bilinear2d_aa.out", "aten::bitwise_and.Tensor_out", "aten::sgn.out"]


@pytest.mark.slow
def test_cpu_study_records_compute_dtype_fallback_ops_and_core_columns(tmp_path):
    """The issue's acceptance: a real CPU study over float32/float16/bfloat16."""
    config = {
        "machine": "test", "devices": ["cpu"], "baseline_device": "cpu",
        "models": [{"name": "mobilenet_v3_small", "modes": ["infer"]}],
        "batch_sizes": [2], "dtypes": ["float32", "float16", "bfloat16"], "modes": ["infer"],
        "input_size": 32, "num_classes": 3, "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 1, "processes": 1},
        "cpu_threads": 1, "dtype_support": {"enabled": False},
    }
    configfile = write_config(tmp_path, config)
    snakemake(tmp_path, configfile, "--cores", "1", "results/studies/config/tables/cells.parquet")
    raw = pd.concat(pd.read_parquet(path) for path in sorted((tmp_path / "results" / "cells").rglob("cell.parquet")))
    ok = raw[raw.status == "ok"]
    assert sorted(ok.dtype.unique()) == ["bfloat16", "float16", "float32"]
    assert (ok.compute_dtype == ok.dtype).all()
    assert (raw.cpu_fallback_ops == "[]").all()
    assert raw.cpu_performance_cores.isna().all() and raw.cpu_efficiency_cores.isna().all()  # not macOS
    assert raw.mps_driver_allocated_bytes.isna().all() and ok.peak_memory_bytes.notna().all()
    cells = pd.read_parquet(tmp_path / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert len(cells) == 3
