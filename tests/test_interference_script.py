"""benchmarks/interference.py without a GPU: its cells become runner specs, and it refuses to
measure on a machine with fewer than two GPUs (its figures need a multi-GPU machine)."""

from __future__ import annotations

import importlib.util
import json

from conftest import REPO

from speedatlas.measure.process import gpu_slot as slots


def load():
    spec = importlib.util.spec_from_file_location("interference", REPO / "benchmarks" / "interference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cells_become_runner_specs():
    bench = load()
    cell = bench.parse_cell("resnet50:train:bfloat16:128")
    assert cell == {"model": "resnet50", "mode": "train", "dtype": "bfloat16", "batch": 128}
    args = bench.argparse.Namespace(input_size=224, warmup=10, repeats=20, steps_per_repeat=5)
    spec = json.loads(bench.spec(cell, "cuda:1", args))
    assert spec["device"] == "cuda:1" and spec["batch"] == 128 and spec["cpu_threads"] == 0
    assert spec["repeats"] == 20 and spec["workload"] == "synthetic" and "protocol" in spec


def test_refuses_without_two_gpus(monkeypatch, capsys):
    bench = load()
    monkeypatch.setenv(slots.FAKE_ENV, "1")
    assert bench.main(["--cells", "resnet18:infer:float32:2"]) == 2
    assert "needs two or more GPUs" in capsys.readouterr().err
