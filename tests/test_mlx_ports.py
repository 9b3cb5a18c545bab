"""The MLX ports compute the torch models' functions, and a cell that does not is never timed.

On the CPU at tiny sizes (issue 24). MLX comes from tests/mlx_fixture.py (the pipeline's own MLX
environment when this interpreter has none).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from mlx_fixture import ensure_mlx
from speedatlas.measure.mlx import convert, parity
from speedatlas.measure.protocol.workloads import CellStart


@pytest.fixture(scope="module")
def mx():
    return ensure_mlx()


def spec_of(model: str, dtype: str = "float32", mode: str = "infer", variant: str = "mlx", **extra) -> dict:
    spec = {"machine": "test", "workload": "synthetic", "torch": "current", "device": "cpu", "model": model,
            "dtype": dtype, "mode": mode, "variant": variant, "batch": 2, "input_size": 32, "num_classes": 4,
            "warmup": 1, "repeats": 2, "steps_per_repeat": 1, "cpu_threads": 1, "seed": 0, "protocol": 1,
            "energy": {"enabled": False}}
    if model in ("bert_base", "gpt2_small"):
        spec["model_source"] = {"builtin": model, "args": {"layers": 1, "width": 64, "heads": 4},
                                "input": {"kind": "tokens", "length": 8, "vocab": 97}}
        spec["input_size"] = 8
    return {**spec, **extra}


def test_conv_weights_become_channels_last_and_extras_are_dropped():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 5, kernel_size=(2, 3)), torch.nn.BatchNorm2d(5))
    weights = convert.torch_weights(model, "any")
    assert weights["0.weight"].shape == (5, 2, 3, 3)  # (out, kH, kW, in)
    assert np.array_equal(weights["0.weight"][1, 0, 2, :], model[0].weight.detach().numpy()[1, :, 0, 2])
    assert "1.num_batches_tracked" not in weights and "1.running_var" in weights


def test_the_tied_head_is_copied_once_and_checked():
    from speedatlas.measure.models import transformers

    model = transformers.gpt2_small(num_classes=2, vocab=11, length=4, layers=1, width=8, heads=2)
    assert "head.weight" not in convert.torch_weights(model, "gpt2_small")
    model.head.weight = torch.nn.Parameter(model.head.weight.detach().clone() + 1)  # untied
    with pytest.raises(convert.WeightMismatch, match="tied"):
        convert.torch_weights(model, "gpt2_small")


def test_a_port_with_other_parameters_is_refused():
    with pytest.raises(convert.WeightMismatch, match="lacks"):
        convert.check_same_names({"a": (2,)}, {"a": np.zeros(2), "b": np.zeros(1)})
    with pytest.raises(convert.WeightMismatch, match="shapes differ"):
        convert.check_same_names({"a": (2,)}, {"a": np.zeros(3)})


@pytest.mark.parametrize("model", ["resnet18", "resnet50", "bert_base", "gpt2_small"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_each_port_computes_the_torch_models_function(mx, model, dtype):
    from speedatlas.measure.mlx import ports, workload

    spec = spec_of(model, dtype)
    side = ports.torch_side(spec)
    port = ports.port_of(spec, side)
    inputs, _ = ports.mlx_batch(side, dtype)
    port.eval()
    output = port(inputs).astype(mx.float32)
    error = parity.max_rel_err(np.array(output), workload.torch_reference(side, spec))
    assert error <= (1e-5 if dtype == "float32" else 0.05), error
    assert error <= parity.tolerance(dtype, "cpu")


def test_the_max_relative_error_never_passes_a_broken_output():
    reference = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert parity.max_rel_err(reference + 0.02, reference) == pytest.approx(0.01)
    assert parity.max_rel_err(reference.T[:1], reference) == float("inf")
    assert parity.max_rel_err(reference * np.nan, reference) == float("inf")
    with pytest.raises(parity.ParityError, match=r"parity_max_rel_err 0\.01 > tolerance 0\.0001"):
        parity.check(reference + 0.02, reference, "float32", "cpu")
    assert parity.tolerance("float32", "cuda:1") == parity.TOLERANCE["float32"]["cuda"]


def run_cell(spec: dict, monkeypatch, timed: list) -> list[dict]:
    from speedatlas.measure.mlx import workload
    from speedatlas.measure.protocol import timing

    real = timing.run

    def recording(*args, **kwargs):
        timed.append(spec["model"])
        return real(*args, **kwargs)

    monkeypatch.setattr(timing, "run", recording)
    return workload.measure(spec, {"model": spec["model"]}, CellStart(0.0, "process"))


def test_a_mistransposed_port_is_an_error_with_the_figure_and_never_timed(mx, monkeypatch):
    from speedatlas.measure.mlx import ports

    # (out, kW, kH, in) instead of (out, kH, kW, in): same shapes for square kernels, wrong function
    monkeypatch.setattr(ports, "port_of", functools.partial(ports.port_of, layout=(0, 3, 2, 1)))
    timed: list = []
    rows = run_cell(spec_of("resnet18"), monkeypatch, timed)
    assert len(rows) == 1 and rows[0]["status"] == "error", rows
    assert rows[0]["parity_max_rel_err"] > rows[0]["parity_tolerance"]
    assert "parity_max_rel_err" in rows[0]["error"] and "not timed" in rows[0]["error"]
    assert f"{rows[0]['parity_max_rel_err']:.3g}" in rows[0]["error"]
    assert timed == []


@pytest.mark.parametrize("variant,mode", [("mlx", "train"), ("mlx_compile", "infer")])
def test_a_correct_port_is_timed_and_records_what_mlx_ran(mx, monkeypatch, variant, mode):
    timed: list = []
    rows = run_cell(spec_of("gpt2_small", mode=mode, variant=variant), monkeypatch, timed)
    assert timed == ["gpt2_small"]
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0].get("error")
    row = rows[0]
    assert row["parity_max_rel_err"] <= 1e-5 and row["compute_dtype"] == "float32"
    assert row["mlx_version"] == mx.__version__ and row["mlx_device"].startswith("cpu:0")
    assert all(0 < r["step_time_s"] < 60 for r in rows)
    assert (row["compile_time_s"] is not None) == (variant == "mlx_compile")
    assert (row["final_loss"] is not None) == (mode == "train") and row["peak_memory_bytes"] > 0


def test_a_layer_left_in_float32_is_seen_as_the_compute_dtype(mx):
    import mlx.nn as nn

    from speedatlas.measure.mlx import dtype_check, resnet
    from speedatlas.measure.protocol import compute_dtype

    model = resnet.resnet18(4)
    model.set_dtype(mx.bfloat16)
    images = mx.zeros((1, 32, 32, 3), dtype=mx.bfloat16)
    assert dtype_check.compute_dtype(model, lambda: model(images)) == "bfloat16"
    model.conv1.weight = model.conv1.weight.astype(mx.float32)  # MLX promotes silently from here on
    computed = dtype_check.compute_dtype(model, lambda: model(images))
    assert computed == "float32" and type(model.conv1) is nn.Conv2d  # the recorder is gone
    with pytest.raises(compute_dtype.UnsupportedComputeDtype):
        compute_dtype.check("bfloat16", computed, [])


def test_a_device_mlx_cannot_use_is_unavailable(mx):
    from speedatlas.measure.mlx import backend, workload

    if backend.gpu_backend(mx) == "metal":
        pytest.skip("this MLX has the Metal backend: cuda is the device it cannot use")
    device = "cuda" if backend.gpu_backend(mx) != "cuda" else "mps"
    rows = workload.measure(spec_of("resnet18", device=device), {}, CellStart(0.0, "process"))
    assert rows[0]["status"] == "unavailable" and device in rows[0]["error"]


@pytest.mark.parametrize("compiled", [False, True])
def test_the_training_step_is_torchs_forward_loss_backward_and_adam(mx, compiled):
    """Without dropout, three steps of MLX and of torch give the same losses: the same loss, the
    same gradients, the same Adam (bias correction included, which MLX leaves out by default)."""
    from speedatlas.measure.mlx import ports, steps
    from speedatlas.measure.models import custom
    from speedatlas.measure.protocol import steps as torch_steps

    spec = spec_of("gpt2_small", mode="train")
    spec["model_source"]["args"]["dropout"] = 0.0
    side = ports.torch_side(spec)
    port = ports.port_of(spec, side)
    inputs, targets = ports.mlx_batch(side, "float32")
    mlx_step = steps.make_step(port, inputs, targets, "train", compiled, side.language_model)
    torch_step = torch_steps.make_step(side.model, side.inputs, side.targets, "train", "cpu", "float32",
                                       custom.loss_function(custom.LANGUAGE_MODEL))
    ours = [float(mlx_step().item()) for _ in range(3)]
    theirs = [float(torch_step().item()) for _ in range(3)]
    assert ours[0] == pytest.approx(theirs[0], rel=1e-5)
    assert ours[2] == pytest.approx(theirs[2], rel=1e-3), (ours, theirs)
    assert ours[2] < ours[0]
