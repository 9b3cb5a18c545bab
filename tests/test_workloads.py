"""Config and matrix of the mnist_epoch workload: what reaches a cell's params, and what does not."""

import json

import pytest

from speedatlas.plan import support_jobs
from speedatlas.plan import matrix
from speedatlas.plan.config import ConfigError, prepare

MODELS = ["resnet18", "vgg16", "alexnet"]


def cells(**overrides):
    return matrix.expand(prepare({"models": ["resnet18"], **overrides}, MODELS))


def test_synthetic_specs_are_what_they_were_before_workloads():
    """Adding workloads must not rerun a single existing synthetic cell."""
    cell = cells(batch_sizes=[4], modes=["train"])[0]
    assert json.loads(cell.spec()) == {
        "batch": 4, "cpu_threads": 0, "device": "cpu", "dtype": "float32", "input_size": 224,
        "machine": "local", "mode": "train", "model": "resnet18", "num_classes": 10,
        "repeats": 20, "seed": 0, "steps_per_repeat": 1, "torch": "current", "variant": "eager",
        "warmup": 5, "workload": "synthetic",
        # energy settings joined the spec with energy measurement (issue 18): cells rerun once for it
        "energy": {"enabled": True, "extend": True, "idle_s": 1.0, "min_window_s": 1.0},
        # protocol 2, its warm-up by time and the precision rule (issue 23): cells rerun once for it
        "protocol": 2, "warmup_seconds": 0.5,
        "sampling": {"confidence": 0.95, "max_processes": 10, "max_seconds": 120, "pilot": 4, "precision": 0.05},
    }
    both = {c.path: c.spec() for c in cells(workload=["synthetic", "mnist_epoch"], data={"images": 50})}
    assert all(both[c.path] == c.spec() for c in cells())


def test_an_epoch_cell_is_one_epoch_per_timed_block():
    by_batch = {c.batch: c for c in cells(workload="mnist_epoch", modes=["train"], data={"epochs": 3})}
    assert by_batch[64].steps_per_repeat == 16 and by_batch[4].steps_per_repeat == 250  # 1000 images
    assert by_batch[64].repeats == 3 and by_batch[64].warmup == 16
    spec = json.loads(by_batch[64].spec())
    assert spec["data"] == {"mnist_root": None, "download": False, "images": 1000, "num_workers": 4,
                            "persistent_workers": True, "epoch_protocol": matrix.EPOCH_PROTOCOL_VERSION}
    assert "workload=mnist_epoch" in by_batch[64].path


def test_data_settings_rerun_only_epoch_cells_and_timing_only_synthetic_ones():
    base = {c.path: c.spec() for c in cells(workload=["synthetic", "mnist_epoch"])}
    data = {c.path: c.spec() for c in cells(workload=["synthetic", "mnist_epoch"], data={"num_workers": 0})}
    timing = {c.path: c.spec() for c in cells(workload=["synthetic", "mnist_epoch"], timing={"repeats": 5})}
    changed = lambda other: {p.split("/")[3] for p in base if base[p] != other[p]}  # noqa: E731
    assert changed(data) == {"workload=mnist_epoch"}
    assert changed(timing) == {"workload=synthetic"}


def test_nested_defaults_are_filled():
    config = prepare({"models": ["resnet18"], "data": {"images": 64}, "dtype_support": {"tolerance": {"float16": 0.5}}}, MODELS)
    assert config["data"] == {"mnist_root": None, "download": False, "images": 64, "num_workers": 4,
                              "persistent_workers": True, "epochs": 2}
    assert config["dtype_support"]["tolerance"] == {"float32": 0.005, "float16": 0.5, "bfloat16": 0.05}
    assert config["dtype_support"]["train_steps"] == 3 and config["published"] is None


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ({"workload": "mnist"}, ["workload", "'mnist'", "synthetic, mnist_epoch"]),
        ({"workload": ["synthetic", "epoch"]}, ["workload[1]", "'epoch'"]),
        ({"workload": "mnist_epoch", "num_classes": 4}, ["num_classes", "4", "mnist_epoch", ">= 10"]),
        ({"workload": "mnist_epoch", "models": [{"name": "resnet18", "num_classes": 2}]}, ["models[0].num_classes", "2"]),
        ({"data": {"images": 0}}, ["data.images", "0", ">= 1"]),
        ({"data": {"images": 70000}}, ["data.images", "70000", "<= 60000"]),
        ({"data": {"workers": 2}}, ["workers", "did you mean 'num_workers'"]),
        ({"data": {"epochs": 0}}, ["data.epochs", "0"]),
        ({"data": {"download": "yes"}}, ["data.download", "'yes'", "boolean"]),
        ({"dtype_support": {"enabled": True, "model": "resnet19"}}, ["dtype_support.model", "resnet19", "resnet18"]),
        ({"dtype_support": {"methods": ["autocast", "amp"]}}, ["dtype_support.methods[1]", "'amp'", "autocast, cast"]),
        ({"dtype_support": {"tolerance": {"float16": 0}}}, ["dtype_support.tolerance.float16", "0"]),
    ],
    ids=["workload", "workload-list", "classes", "model-classes", "images", "too-many", "typo", "epochs",
         "download", "probe-model", "method", "tolerance"],
)
def test_mistakes_name_key_and_value(config, fragments):
    with pytest.raises(ConfigError) as error:
        prepare({"models": ["resnet18"], **config}, MODELS)
    for fragment in fragments:
        assert fragment in str(error.value), f"{fragment!r} not in {str(error.value)!r}"


def test_a_probe_per_device_and_torch_version_covering_every_dtype():
    config = prepare({"models": ["resnet18"], "devices": ["cpu", "mps"], "torch_versions": ["current", "2.5"],
                      "dtype_support": {"enabled": True}}, MODELS)
    jobs = support_jobs.expand(config)
    assert len(jobs) == 4 and len({j.path for j in jobs}) == 4
    spec = json.loads(jobs[0].spec())
    assert spec["dtypes"] == ["float32", "float16", "bfloat16"] and list(spec) == sorted(spec)
    assert spec["tolerance"]["train"]["bfloat16"] == 0.15
    assert jobs[0].path.startswith("results/support/machine=local/torch=")
    off = prepare({"models": ["resnet18"], "dtype_support": {"enabled": False, "model": "nonexistent"}}, MODELS)
    assert support_jobs.expand(off) == []
