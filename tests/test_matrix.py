"""Matrix expansion: one cell per combination, per-model overrides, stable specs and paths."""

import json

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


def test_processes_enter_the_spec_only_above_one():
    """timing.processes: 1 keeps every existing cell's spec (no rerun); 3 is in the spec."""
    import json

    from speedatlas.plan.config import prepare

    base = {"models": ["resnet18"], "devices": ["cpu"], "batch_sizes": [1], "modes": ["infer"]}
    one = matrix.expand(prepare(base, ["resnet18"]))
    three = matrix.expand(prepare({**base, "timing": {"processes": 3}}, ["resnet18"]))
    assert "processes" not in json.loads(one[0].spec())
    assert json.loads(three[0].spec())["processes"] == 3


def test_processes_default_by_device_and_workload():
    """Left out, timing.processes is 3 for synthetic cells of an accelerator, 1 on the cpu and for
    whole-epoch cells; any explicit value (study, device, model) wins."""
    import json

    from speedatlas.plan.config import prepare

    base = {"models": ["resnet18"], "devices": ["cpu", "cuda", "mps"], "batch_sizes": [8], "modes": ["infer"]}

    def processes(config):
        return {(c.workload, c.device): json.loads(c.spec()).get("processes", 1) for c in matrix.expand(prepare(config, ["resnet18"]))}

    got = processes(base)
    assert got == {("synthetic", "cpu"): 1, ("synthetic", "cuda"): 3, ("synthetic", "mps"): 3}
    got = processes({**base, "workload": ["synthetic", "mnist_epoch"]})
    assert got[("mnist_epoch", "cuda")] == 1 and got[("synthetic", "cuda")] == 3
    assert set(processes({**base, "timing": {"processes": 1}}).values()) == {1}
    got = processes({**base, "timing_by_device": {"cpu": {"processes": 2}, "cuda": {"processes": 1}}})
    assert got == {("synthetic", "cpu"): 2, ("synthetic", "cuda"): 1, ("synthetic", "mps"): 3}
