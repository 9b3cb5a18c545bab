"""Matrix expansion: one cell per combination, per-model overrides, stable specs and paths."""

import json

import pytest

from speedatlas.plan import matrix
from speedatlas.plan.config import prepare

MODELS = ["resnet18", "vgg16", "alexnet"]


def expand(**overrides):
    return matrix.expand(prepare({"models": ["resnet18"], **overrides}, MODELS))


def test_full_product():
    cells = expand(devices=["cpu", "mps"], batch_sizes=[4, 64], modes=["train", "infer"], dtypes=["float32", "bfloat16"])
    assert len(cells) == 2 * 2 * 2 * 2
    assert len({c.path for c in cells}) == len(cells)


def test_model_override_changes_only_that_model():
    config = {"models": ["resnet18", {"name": "vgg16", "batch_sizes": [8], "timing": {"repeats": 3}}], "batch_sizes": [1, 2]}
    cells = matrix.expand(prepare(config, MODELS))
    vgg = [c for c in cells if c.model == "vgg16"]
    resnet = [c for c in cells if c.model == "resnet18"]
    assert {c.batch for c in vgg} == {8} and {c.batch for c in resnet} == {1, 2}
    assert {c.repeats for c in vgg} == {3} and {c.repeats for c in resnet} == {20}
    assert {c.warmup for c in vgg} == {5}


def test_path_is_hive_partitioned():
    cell = expand()[0]
    assert cell.path == (
        "results/cells/machine=local/workload=synthetic/torch=current/device=cpu/model=resnet18/"
        "dtype=float32/mode=infer/variant=eager/batch=4/cell.parquet"
    )


def test_spec_is_canonical_and_carries_the_protocol():
    cell = expand()[0]
    spec = json.loads(cell.spec())
    assert spec["protocol"] == matrix.PROTOCOL_VERSION
    assert list(spec) == sorted(spec)
    assert cell.spec() == expand()[0].spec()


def test_adding_a_batch_size_keeps_existing_specs():
    before = {c.path: c.spec() for c in expand(batch_sizes=[4])}
    after = {c.path: c.spec() for c in expand(batch_sizes=[4, 64])}
    assert set(before) < set(after)
    assert all(after[p] == s for p, s in before.items())


def test_wildcard_values():
    values = matrix.wildcard_values(expand(devices=["cpu", "cuda:1"]))
    assert values["device"] == ["cpu", "cuda:1"]
    assert values["batch"] == ["4", "64"]


def test_timing_by_device_then_model():
    config = {
        "models": ["resnet18", {"name": "vgg16", "timing": {"repeats": 7}}],
        "devices": ["cpu", "mps"],
        "timing_by_device": {"cpu": {"repeats": 3, "warmup": 1}},
    }
    cells = matrix.expand(prepare(config, MODELS))
    got = {(c.model, c.device): (c.warmup, c.repeats) for c in cells}
    assert got[("resnet18", "cpu")] == (1, 3)
    assert got[("resnet18", "mps")] == (5, 20)
    assert got[("vgg16", "cpu")] == (1, 7)
    assert got[("vgg16", "mps")] == (5, 7)


def sampling_of(config):
    import json

    from speedatlas.plan.config import prepare

    return {(c.workload, c.device, c.model): json.loads(c.sampling)
            for c in matrix.expand(prepare(config, ["resnet18", "vgg16"]))}


BASE = {"models": ["resnet18"], "devices": ["cpu", "cuda"], "batch_sizes": [8], "modes": ["infer"]}
RULE = {"precision": matrix.DEFAULT_PRECISION, "pilot": 4, "max_processes": 10, "max_seconds": 120, "confidence": 0.95}


def test_the_precision_rule_is_the_default_for_every_device_and_processes_turns_it_off():
    """Issue 23: the same rule for every device, the CPU included; naming `processes` (at any
    level) asks for a fixed count there; the most specific level wins; epoch cells keep a count."""
    assert all(rule == RULE for rule in sampling_of(BASE).values())
    fixed = sampling_of({**BASE, "timing_by_device": {"cpu": {"processes": 3}}})
    assert fixed[("synthetic", "cpu", "resnet18")] == {"processes": 3} and fixed[("synthetic", "cuda", "resnet18")] == RULE
    model = {**BASE, "timing": {"processes": 2},
             "models": ["resnet18", {"name": "vgg16", "timing": {"precision": 0.1, "max_processes": 6}}]}
    got = sampling_of(model)
    assert got[("synthetic", "cpu", "resnet18")] == {"processes": 2}
    assert got[("synthetic", "cpu", "vgg16")] == {**RULE, "precision": 0.1, "max_processes": 6}
    assert sampling_of({**BASE, "timing": {"precision": None}})[("synthetic", "cpu", "resnet18")] == {"processes": 1}
    epochs = sampling_of({**BASE, "workload": ["synthetic", "mnist_epoch"]})
    assert epochs[("mnist_epoch", "cpu", "resnet18")] == {"processes": 1}


def test_a_new_precision_target_respecs_only_the_processes_after_the_pilot():
    """The pilot's processes always run, so their params (what Snakemake reruns on) hold the
    measurement alone; a process after the pilot carries the rule that decides whether it runs."""
    import json

    from speedatlas.plan.config import prepare

    cell = matrix.expand(prepare(BASE, ["resnet18"]))[0]
    tighter = matrix.expand(prepare({**BASE, "timing": {"precision": 0.02}}, ["resnet18"]))[0]
    assert cell.process_jobs == 10 and cell.pilot == 4
    for process in range(4):
        assert cell.process_spec(process) == tighter.process_spec(process)
        assert "sampling" not in json.loads(cell.process_spec(process))
    assert json.loads(cell.process_spec(4))["sampling"]["precision"] == matrix.DEFAULT_PRECISION
    assert cell.process_spec(4) != tighter.process_spec(4) and cell.spec() != tighter.spec()
    assert json.loads(cell.process_spec(5))["process"] == 5


def test_both_processes_and_precision_in_one_block_is_refused():
    from speedatlas.plan.config import ConfigError, prepare

    with pytest.raises(ConfigError, match="timing_by_device.cpu.*both processes.*and precision"):
        prepare({**BASE, "timing_by_device": {"cpu": {"processes": 3, "precision": 0.05}}}, ["resnet18"])
    with pytest.raises(ConfigError, match="pilot_processes.*more than max_processes"):
        prepare({**BASE, "timing": {"pilot_processes": 6, "max_processes": 4}}, ["resnet18"])


