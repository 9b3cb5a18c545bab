"""Runner pieces on the CPU: timing protocol, failure classification, atomic writes."""

from __future__ import annotations

import math

import pytest
import torch

from speedatlas import cellkey
from speedatlas.measure import cellio
from speedatlas.measure.hardware import devices
from speedatlas.measure.protocol import timing
from speedatlas.measure.process.runner import measure
from speedatlas.measure.supervisor import exit_reason


def test_timing_counts_and_synchronises():
    calls = {"step": 0, "sync": 0}

    def step():
        calls["step"] += 1
        return torch.tensor(1.0)

    def sync():
        calls["sync"] += 1

    result = timing.run(step, sync, warmup=3, repeats=5, steps_per_repeat=2)
    assert calls["step"] == 3 + 5 * 2  # the first step is one of the warm-up steps
    assert calls["sync"] >= 5 + 2  # one per timed block, plus around the warm-up
    assert len(result.samples_s) == 5 and all(s > 0 for s in result.samples_s)
    assert result.started_at < result.finished_at


def test_every_timed_block_ends_with_a_synchronize():
    events = []
    timing.run(lambda: events.append("step") or torch.tensor(1.0), lambda: events.append("sync"), 1, 3, 2)
    assert events[-9:] == ["step", "step", "sync"] * 3  # three timed blocks of two steps
    assert events[-10] == "sync"  # the clock starts only after the warm-up has finished


def test_nonfinite_loss_is_detected():
    with pytest.raises(timing.NonFiniteError):
        timing.run(lambda: torch.tensor(math.nan), lambda: None, 1, 2, 1)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
        (RuntimeError("MPS backend out of memory (MPS allocated: 10 GB)"), "oom"),
        (NotImplementedError("aten::foo is not implemented for the MPS device"), "unsupported"),
        (RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\''), "unsupported"),
        (ValueError("Expected more than 1 value per channel when training"), "error"),
    ],
)
def test_failure_classification(exc, status):
    assert devices.status_of(exc) == status


def test_unavailable_devices_have_reasons():
    assert devices.unavailable_reason("cpu") is None
    if not torch.cuda.is_available():
        assert "cuda is not available" in devices.unavailable_reason("cuda")
    if not torch.backends.mps.is_available():
        assert "mps is not available" in devices.unavailable_reason("mps")


SPEC = {
    "machine": "t", "workload": "synthetic", "torch": "current", "device": "cpu", "model": "resnet18",
    "dtype": "float32", "mode": "infer", "variant": "eager", "batch": 2, "input_size": 32,
    "num_classes": 3, "warmup": 1, "repeats": 3, "steps_per_repeat": 1, "cpu_threads": 1, "seed": 0,
}


@pytest.mark.parametrize(("dtype", "mode"), [("float32", "train"), ("bfloat16", "infer"), ("float32", "infer")])
def test_measure_on_cpu(dtype, mode):
    rows = measure({**SPEC, "dtype": dtype, "mode": mode}, cellkey.row_columns(SPEC, 1))
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert all(r["step_time_s"] > 0 and r["items_per_s"] > 0 for r in rows)
    assert rows[0]["threads"] == 1 and rows[0]["flops_per_step"] > 0
    # CPU memory: growth of the process's peak RSS while building and running the model
    assert rows[0]["peak_memory_bytes"] is not None and 0 <= rows[0]["peak_memory_bytes"] < 8 << 30
    table = cellio.rows_to_table(rows)
    assert table.num_rows == 3


def test_flops_of_a_training_step_are_about_three_forwards():
    from speedatlas.measure.models.zoo import count_flops

    forward = count_flops("resnet18", 10, 2, 64, "infer")
    train = count_flops("resnet18", 10, 2, 64, "train")
    assert forward > 1e8 and 2.5 < train / forward < 3.5


def test_write_atomic_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "cell.parquet"
    table = cellio.rows_to_table([{**cellkey.row_columns(SPEC, 1), "status": "error", "error": "x"}])

    def broken_write(table, where, **options):
        open(where, "wb").write(b"PAR1 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(cellio.pq, "write_table", broken_write)
    with pytest.raises(KeyboardInterrupt):
        cellio.write_atomic(table, target)
    assert list(tmp_path.iterdir()) == []


def test_exit_reasons():
    assert "SIGSEGV" in exit_reason(-11)
    assert "code 3" in exit_reason(3)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["channels_last", "compile"])
def test_variants_on_cpu(variant):
    spec = {**SPEC, "model": "mobilenet_v3_small", "variant": variant, "warmup": 2}
    rows = measure(spec, cellkey.row_columns(spec, 1))
    assert rows[0]["status"] == "ok", rows[0].get("error")
    assert all(r["step_time_s"] > 0 for r in rows)
    if variant == "compile":
        # the first step compiles: it is stored apart and is far slower than a compiled step
        assert rows[0]["compile_time_s"] > 10 * min(r["step_time_s"] for r in rows)
    else:
        assert rows[0]["compile_time_s"] is None


def test_peak_lookup_and_efficiency():
    import pandas as pd

    from speedatlas.analyze import peaks

    table = peaks.load_peaks(extra=[{"match": "EPYC 9654", "name": "my cpu", "peak_tflops": {"float32": 2.0}}])
    assert peaks.lookup(table, "NVIDIA H100 80GB HBM3", "bfloat16") == ("NVIDIA H100 SXM5", 989.4e12)
    assert peaks.lookup(table, "NVIDIA H100 PCIe", "float32")[0] == "NVIDIA H100 PCIe"
    assert peaks.lookup(table, "Apple M1 Max GPU (24 cores)", "float32")[1] == pytest.approx(7.8e12)
    assert peaks.lookup(table, "Apple M1 Max GPU (32 cores)", "float32")[1] == pytest.approx(10.4e12)
    assert peaks.lookup(table, "Apple M1 GPU (8 cores)", "bfloat16") == ("Apple M1 GPU (8 cores)", None)
    assert peaks.lookup(table, "AMD EPYC 9654 96-Core Processor", "float32") == ("my cpu", 2.0e12)
    assert peaks.lookup(table, "Some Unknown Chip", "float32") == (None, None)
    cells = pd.DataFrame({"device_name": ["NVIDIA H200", "Unknown"], "dtype": ["bfloat16", "float32"],
                          "flops_per_step": [989.4e12 * 0.01, 1e9], "median_s": [0.02, 0.1]})
    out = peaks.add_efficiency(cells, table)
    assert out.pct_of_peak.iloc[0] == pytest.approx(50.0)
    assert out.achieved_tflops.iloc[1] == pytest.approx(0.01) and pd.isna(out.pct_of_peak.iloc[1])


def test_flop_count_matches_a_hand_count():
    from speedatlas.measure.models.zoo import step_flops

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel_size=3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 10)
    )
    images, labels = torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    conv = 2 * (8 * 8 * 8) * (3 * 3 * 3)  # 2 FLOPs per multiply-add, per output element
    linear = 2 * 512 * 10
    assert step_flops(model, images, labels, "infer") == 2 * (conv + linear)
    # backward: the linear layer needs grad_input and grad_weight (2 x its forward), the first
    # convolution only grad_weight (its input needs no gradient: 1 x its forward)
    assert step_flops(model, images, labels, "train") == 2 * (conv + linear + 2 * linear + conv)
