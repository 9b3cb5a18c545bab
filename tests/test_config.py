"""Config validation: every mistake is refused with the key, the value and the valid choices."""

import copy

import pytest

from speedatlas.plan.config import ConfigError, prepare

MODELS = ["alexnet", "resnet18", "resnet50", "vgg16", "mobilenet_v2", "efficientnet_b0"]
GOOD = {"machine": "m1", "devices": ["cpu", "mps"], "models": ["resnet18", {"name": "vgg16", "batch_sizes": [4]}]}


def with_(path, value):
    config = copy.deepcopy(GOOD)
    target = config
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return config


def test_defaults_are_filled():
    config = prepare(GOOD, MODELS)
    assert config["baseline_device"] == "cpu"
    assert config["torch_versions"] == ["current"]
    assert config["baseline_torch"] == "current"
    assert config["timing"] == {"warmup": 5, "repeats": 20, "steps_per_repeat": 1, "pilot_processes": 4,
                                "max_processes": 10, "max_seconds": 120, "warmup_seconds": 0.5}  # precision: the matrix's
    assert config["workload"] == ["synthetic"]


def test_partial_timing_keeps_other_defaults():
    config = prepare(with_(["timing"], {"repeats": 7}), MODELS)
    assert config["timing"] == {"warmup": 5, "repeats": 7, "steps_per_repeat": 1, "pilot_processes": 4,
                                "max_processes": 10, "max_seconds": 120, "warmup_seconds": 0.5}


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        (with_(["devics"], ["cpu"]), ["devics", "did you mean 'devices'"]),
        (with_(["models", 1, "batchsizes"], [4]), ["batchsizes", "batch_sizes", "models[1]"]),
        (with_(["devices"], "cpu"), ["devices", "'cpu'", "array"]),
        (with_(["devices"], []), ["devices", "empty"]),
        (with_(["batch_sizes"], [4, 0]), ["batch_sizes[1]", "0", ">= 1"]),
        (with_(["batch_sizes"], [-3]), ["batch_sizes[0]", "-3"]),
        (with_(["timing"], {"repeats": 0}), ["timing.repeats", "0"]),
        (with_(["devices"], ["cpu", "gpu"]), ["devices[1]", "'gpu'", "cpu, mps, cuda"]),
        (with_(["dtypes"], ["float64"]), ["dtypes[0]", "'float64'", "float32, float16, bfloat16"]),
        (with_(["modes"], ["training"]), ["modes[0]", "'training'", "train, infer"]),
        (with_(["models"], ["resnet181"]), ["models[0]", "resnet181", "resnet18"]),
        (with_(["models"], ["resnet18", "resnet18"]), ["models[1]", "resnet18", "twice"]),
        (with_(["batch_sizes"], [4, 4]), ["batch_sizes", "duplicate", "[4]"]),
        (with_(["baseline_device"], "cuda"), ["baseline_device", "'cuda'", "devices"]),
        (with_(["machine"], "../etc"), ["machine", "'../etc'", "folder name"]),
        (with_(["machine"], "m1; rm -rf ~"), ["machine", "rm -rf"]),
        (with_(["torch_versions"], ["2.x"]), ["torch_versions[0]", "'2.x'", "release prefix"]),
        (with_(["baseline_torch"], "2.5"), ["baseline_torch", "'2.5'", "torch_versions"]),
        (with_(["models", 1, "name"], "vgg16;ls"), ["models[1]", "vgg16;ls"]),
        (with_(["input_size"], "224"), ["input_size", "'224'", "integer"]),
        (with_(["timing_by_device"], {"gpu": {"repeats": 3}}), ["timing_by_device", "'gpu'"]),
        (with_(["timing_by_device"], {"cpu": {"repeat": 3}}), ["repeat", "timing_by_device.cpu"]),
    ],
    ids=lambda v: None if isinstance(v, dict) else str(v[0]) if isinstance(v, list) else None,
)
def test_mistakes_name_key_and_value(config, fragments):
    with pytest.raises(ConfigError) as error:
        prepare(config, MODELS)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_missing_models():
    config = copy.deepcopy(GOOD)
    del config["models"]
    with pytest.raises(ConfigError, match="missing key 'models'"):
        prepare(config, MODELS)


# Labels that become folder names (cells, bundles): a final newline must not slip through the
# pattern check (Python's `$` matches before it; issue 27, item 3).
@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (["machine"], "lab\n", "machine"),
        (["publish_name"], "mine\n", "publish_name"),
        (["models", 0], "resnet18\n", "models[0]"),
        (["models", 1, "name"], "mynet\n", "models[1]"),
        (["devices", 0], "cpu\n", "devices[0]"),
        (["torch_versions"], ["2.5\n"], "torch_versions[0]"),
        (["cross_machine_baselines"], ["m1/cpu\n"], "cross_machine_baselines[0]"),
    ],
)
def test_a_label_ending_in_a_newline_is_refused(path, value, key):
    with pytest.raises(ConfigError) as error:
        prepare(with_(path, value), MODELS)
    assert key in str(error.value)


def test_every_schema_pattern_is_anchored_against_a_final_newline():
    import re

    from speedatlas.plan.config import load_schema

    patterns = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.append(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema())
    assert len(patterns) >= 6
    for pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith("$(?!\\n)"), pattern
        assert re.search(pattern, "x" * 3 + "\n") is None
