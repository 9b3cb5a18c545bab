"""MLX cells without MLX: the plan (config, matrix, environment), the device mapping and MLX's
error messages, with fakes where a Mac or a GPU would be needed (issue 24)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from speedatlas.measure.mlx import backend
from speedatlas.measure.protocol import workloads
from speedatlas.plan import config, matrix, mlx_env

KNOWN = ["resnet18", "resnet50", "alexnet"]


class FakeMx(SimpleNamespace):
    """What backend.py reads of mlx.core: a build with the given GPU backend and GPU count."""

    cpu, gpu = "cpu", "gpu"

    def __init__(self, backend_name=None, gpus=1, version="0.32.4"):
        super().__init__(__version__=version,
                         metal=SimpleNamespace(is_available=lambda: backend_name == "metal"),
                         cuda=SimpleNamespace(is_available=lambda: backend_name == "cuda"))
        self._gpus = gpus

    def Device(self, kind, index=0):  # noqa: N802 - mlx.core's name
        return (kind, index)

    def device_count(self, kind):
        return self._gpus

    def device_info(self, device):
        return {"device_name": "Apple M1 Max" if device[0] == "gpu" else "Apple M1 Max CPU"}


@pytest.mark.parametrize("build,device,expected", [
    (None, "cpu", ("cpu", 0)),
    ("metal", "cpu", ("cpu", 0)),
    ("metal", "mps", ("gpu", 0)),
    ("cuda", "cuda", ("gpu", 0)),
    ("cuda", "cuda:1", ("gpu", 1)),
])
def test_study_devices_map_to_mlx_devices(build, device, expected):
    target, label, reason = backend.resolve(device, FakeMx(build, gpus=2))
    assert reason is None and target == expected
    assert label == ("cpu:0" if expected[0] == "cpu" else f"gpu:{expected[1]} ({build})")


@pytest.mark.parametrize("build,device,words", [
    (None, "mps", ["Metal", "no GPU backend", "macOS"]),
    ("cuda", "mps", ["Metal", "runs on cuda"]),
    (None, "cuda", ["CUDA", "no GPU backend", "mlx[cuda13]"]),
    ("metal", "cuda", ["CUDA", "runs on metal"]),
    ("cuda", "cuda:2", ["sees 2 cuda GPU", "cuda:2"]),
])
def test_a_device_mlx_cannot_use_says_why(build, device, words):
    target, _, reason = backend.resolve(device, FakeMx(build, gpus=2))
    assert target is None
    for word in words:
        assert word in reason, reason


def test_the_mlx_device_column_names_the_chip():
    mx = FakeMx("metal")
    assert backend.device_label(mx, ("gpu", 0), "gpu:0 (metal)") == "gpu:0 (metal, Apple M1 Max)"
    assert backend.device_label(SimpleNamespace(), ("cpu", 0), "cpu:0") == "cpu:0"  # no device_info


@pytest.mark.parametrize("message,status", [
    ("[metal::malloc] Attempting to allocate 8589934592 bytes which is greater than the maximum allowed "
     "buffer size of 4294967296 bytes.", "oom"),
    ("[METAL] Command buffer execution failed: Insufficient Memory "
     "(00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory).", "oom"),
    ("[malloc] Unable to allocate 1073741824 bytes.", "oom"),
    ("[conv] float64 is not supported on the GPU", "unsupported"),
    ("[matmul] Last dimension of first input with shape (2,3) must match second to last dimension", "error"),
])
def test_mlx_failures_get_the_statuses_of_torch_cells(message, status):
    assert backend.status_of(RuntimeError(message)) == status


def test_a_parity_failure_is_an_error_not_unsupported():
    from speedatlas.measure.mlx.parity import ParityError

    assert backend.status_of(ParityError(0.9, 1e-4, "float32", "mps")) == "error"


def test_an_mlx_that_cannot_load_its_cuda_libraries_says_what_to_set():
    reason = backend.import_reason(ImportError("libcudnn.so.9: cannot open shared object file"))
    assert "LD_LIBRARY_PATH" in reason and "libcudnn" in reason
    missing = backend.import_reason(ModuleNotFoundError("No module named 'mlx'"))
    assert "install MLX" in missing and "LD_LIBRARY_PATH" not in missing


def test_only_mlx_variants_go_to_the_mlx_workload():
    assert workloads.VARIANT_WORKLOADS == {"mlx": "speedatlas.measure.mlx.workload",
                                           "mlx_compile": "speedatlas.measure.mlx.workload"}
    assert workloads.for_variant("eager") is None and workloads.for_variant("compile") is None


# ------------------------------------------------------------------------------------ config
def prepared(**raw):
    return config.prepare({"models": ["resnet18"], **raw}, KNOWN)


@pytest.mark.parametrize("raw,key", [
    ({"models": ["resnet18", "alexnet"], "variants": ["eager", "mlx"]}, "key 'variants'"),
    ({"models": ["resnet18", {"name": "alexnet", "variants": ["mlx_compile"]}]}, "key 'models[1].variants'"),
])
def test_models_without_an_mlx_port_refuse_the_mlx_variants(raw, key):
    with pytest.raises(config.ConfigError) as error:
        config.prepare(raw, KNOWN)
    assert key in str(error.value) and "'alexnet' has no MLX port" in str(error.value)


def test_a_factory_stays_torch_only(tmp_path):
    (tmp_path / "net.py").write_text("def build(num_classes):\n    pass\n")
    entry = {"name": "resnet18x", "factory": "net.py:build", "variants": ["eager", "mlx"]}
    with pytest.raises(config.ConfigError, match=r"key 'models\[0\].variants'.*factories stay torch-only"):
        config.prepare({"models": [entry]}, KNOWN, cwd=tmp_path)


def test_the_mlx_block_is_filled_only_for_studies_with_mlx_cells():
    assert "mlx" not in prepared()
    assert prepared(variants=["eager", "mlx"])["mlx"] == {"version": "0.32.4", "package": "auto"}
    mine = config.prepare({"models": [{"name": "resnet50", "variants": ["mlx"]}], "mlx": {"version": "0.30.0"}}, KNOWN)
    assert mine["mlx"] == {"version": "0.30.0", "package": "auto"}
    with pytest.raises(config.ConfigError, match="mlx.version"):
        prepared(variants=["mlx"], mlx={"version": "latest"})


# ------------------------------------------------------------------------------------ matrix
# The spec of an eager cell without MLX (computed with commit ffe9f06, protocol 2 and the
# precision rule of issue 23): byte for byte, with or without MLX variants beside it.
EAGER_BERT = ('{"batch": 2, "cpu_threads": 0, "device": "cpu", "dtype": "float32", "energy": {"enabled": true, '
              '"extend": true, "idle_s": 1.0, "min_window_s": 1.0}, "input_size": 16, "machine": "local", "mode": '
              '"train", "model": "bert_base", "model_source": {"args": {}, "builtin": "bert_base", "input": {"kind": '
              '"tokens", "length": 16, "vocab": 30522}}, "num_classes": 10, "protocol": 2, "repeats": 20, '
              '"sampling": {"confidence": 0.95, "max_processes": 10, "max_seconds": 120, "pilot": 4, "precision": 0.05}, '
              '"seed": 0, "steps_per_repeat": 1, "torch": "current", "variant": "eager", "warmup": 5, '
              '"warmup_seconds": 0.5, "workload": "synthetic"}')
EAGER_RESNET = ('{"batch": 2, "cpu_threads": 0, "device": "cpu", "dtype": "float32", "energy": {"enabled": true, '
                '"extend": true, "idle_s": 1.0, "min_window_s": 1.0}, "input_size": 224, "machine": "local", "mode": '
                '"train", "model": "resnet18", "num_classes": 10, "protocol": 2, "repeats": 20, "sampling": '
                '{"confidence": 0.95, "max_processes": 10, "max_seconds": 120, "pilot": 4, "precision": 0.05}, '
                '"seed": 0, "steps_per_repeat": 1, "torch": "current", "variant": "eager", "warmup": 5, '
                '"warmup_seconds": 0.5, "workload": "synthetic"}')


@pytest.mark.parametrize("variants", [["eager"], ["eager", "mlx", "mlx_compile"]])
def test_eager_cells_keep_their_paths_and_specs(variants):
    raw = {"models": ["resnet18", {"name": "bert_base", "input": {"length": 16}}], "devices": ["cpu"],
           "batch_sizes": [2], "modes": ["train"], "variants": variants}
    cells = {(c.model, c.variant): c for c in matrix.expand(config.prepare(raw, KNOWN))}
    assert cells[("resnet18", "eager")].spec() == EAGER_RESNET
    assert cells[("bert_base", "eager")].spec() == EAGER_BERT
    assert cells[("resnet18", "eager")].path.endswith("/variant=eager/batch=2/cell.parquet")
    assert len(cells) == 2 * len(variants)


def test_mlx_cells_are_planned_beside_current_torch_and_synthetic_steps_only():
    raw = {"models": ["resnet18"], "devices": ["cpu"], "batch_sizes": [2], "modes": ["infer"],
           "variants": ["eager", "mlx"], "torch_versions": ["current", "2.5"], "workload": ["synthetic", "mnist_epoch"]}
    cells = matrix.expand(config.prepare(raw, KNOWN))
    mlx_cells = [c for c in cells if c.variant == "mlx"]
    assert [(c.torch, c.workload) for c in mlx_cells] == [("current", "synthetic")]
    assert len(cells) == 4 + 1
    spec = json.loads(mlx_cells[0].spec())
    assert spec["mlx"] == {"protocol": 1} and spec["variant"] == "mlx"


# ------------------------------------------------------------------------------- environment
@pytest.mark.parametrize("platform,devices,package", [
    ("darwin", ["cpu", "mps"], "mlx"),
    ("linux", ["cpu", "cuda:1"], "mlx[cuda13]"),
    ("linux", ["cpu"], "mlx[cpu]"),
])
def test_auto_installs_the_backend_the_study_needs(platform, devices, package):
    assert mlx_env.package_for("auto", devices, platform) == package
    assert mlx_env.package_for("mlx[cuda12]", devices, platform) == "mlx[cuda12]"


def test_the_environment_sees_the_running_one_and_its_identity_follows_the_spec(tmp_path):
    spec = mlx_env.render_spec("0.32.4", "mlx[cpu]", python="3.11", sees=["/a/site-packages", "/b/dist-packages"])
    assert spec.splitlines()[-1] == "mlx[cpu]==0.32.4" and "# python: 3.11" in spec
    assert mlx_env.layered_paths(spec) == ["/a/site-packages", "/b/dist-packages"]
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    mlx_env.layer(tmp_path, mlx_env.layered_paths(spec))
    assert (site / "_speedatlas_running_env.pth").read_text() == "/a/site-packages\n/b/dist-packages\n"
    cell = json.loads(mlx_env.spec_with_env('{"variant": "mlx"}', "0.32.4", spec))
    assert cell["torch_env"]["marker"] == ".speedatlas/envs/mlx-0.32.4/env.json"
    other = json.loads(mlx_env.spec_with_env('{"variant": "mlx"}', "0.32.4", spec.replace("/b/", "/c/")))
    assert other["torch_env"]["id"] != cell["torch_env"]["id"]


def test_a_failed_mlx_build_is_recorded_for_the_supervisor(tmp_path, monkeypatch):
    from speedatlas.measure.hardware import envinfo
    from speedatlas.plan import torch_envs

    monkeypatch.setattr(torch_envs, "find_uv", lambda: None)
    marker = tmp_path / "mlx-0.32.4" / "env.json"
    record = mlx_env.build(mlx_env.render_spec("0.32.4", "mlx[cpu]", sees=[]), marker)
    assert record["status"] == "failed"
    reason = envinfo.unusable_reason(marker)
    assert "MLX (mlx[cpu]==0.32.4) environment could not be built" in reason and "uv was not found" in reason
