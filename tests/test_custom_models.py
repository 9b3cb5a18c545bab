"""A user's own model, token inputs and the built-in transformers (issue 17).

Config-time checks, the cell's spec, FLOPs of bert_base against a hand count, and the cells of
factories that fail: all in-process and fast. The end-to-end study is in test_e2e_custom_models.
"""

from __future__ import annotations

import copy
import inspect
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from speedatlas.plan import comparisons
from speedatlas import cellkey
from speedatlas.measure.models import custom as custom_models, transformers
from speedatlas.measure.process import runner
from speedatlas.plan import config, matrix, model_entries
from speedatlas.plan.config import ConfigError

MODELS = ["resnet18", "vgg16"]
EXAMPLES = REPO / "config" / "examples" / "models"


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A working directory holding the example factories under models/."""
    shutil.copytree(EXAMPLES, tmp_path / "models")
    (tmp_path / "models" / "__init__.py").write_text("")
    return tmp_path


def study(*entries, **keys):
    return {"machine": "m", "models": list(entries), "batch_sizes": [2], "dtype_support": {"enabled": False}, **keys}


TINYNET = {"name": "tinynet", "factory": "models/tinynet.py:build", "args": {"width": 8}, "input": {"kind": "image", "size": 32}}
TINY_LM = {"name": "tiny_lm", "factory": "models/tiny_lm.py:build", "args": {"vocab": 50, "width": 16},
           "input": {"kind": "tokens", "length": 8, "vocab": 50}}


def with_(entry, **changes):
    return {**copy.deepcopy(entry), **changes}


@pytest.mark.parametrize(
    ("entry", "keys", "fragments"),
    [
        (with_(TINYNET, factory="models/nonet.py:build"), {}, ["models[0]", "factory file 'models/nonet.py' does not exist"]),
        (with_(TINYNET, factory="no_such_package.net:build"), {}, ["models[0]", "module 'no_such_package.net' cannot be found"]),
        (with_(TINYNET, factory="models.nonet:build"), {}, ["module 'models.nonet' cannot be found", "'models.nonet'"]),
        (with_(TINYNET, factory="models/tinynet.py:make"), {}, ["models[0]", "defines no function 'make'"]),
        (with_(TINYNET, factory="models.tinynet:make"), {}, ["defines no function 'make'"]),
        (with_(TINYNET, factory="models/tinynet.py"), {}, ["malformed", "'path/to/file.py:function'"]),
        (with_(TINYNET, factory="models/tinynet.py:"), {}, ["malformed"]),
        (with_(TINYNET, factory=":build"), {}, ["malformed"]),
        (with_(TINYNET, factory="my-models:build"), {}, ["malformed", "neither a .py file nor a module"]),
        (with_(TINY_LM, input={"kind": "tokens", "length": 8}), {}, ["models[0]", "tokens needs vocab", "vocab: 30522"]),
        (with_(TINY_LM, input={"kind": "tokens"}), {}, ["needs length and vocab"]),
        (with_(TINYNET, input={"kind": "image", "length": 8}), {}, ["image takes only 'size'", "length"]),
        (with_(TINY_LM, variants=["eager", "channels_last"]), {}, ["models[0].variants", "channels_last", "image models only"]),
        ({"name": "bert_base", "input": {"length": 16}}, {"variants": ["channels_last"]}, ["key 'variants'", "'bert_base' takes tokens"]),
        (with_(TINYNET, name="resnet18"), {}, ["'resnet18' is the name of a torchvision model", "its own name"]),
        (with_(TINYNET, name="bert_base"), {}, ["built-in"]),
        ({"name": "resnet18", "args": {"width": 3}}, {}, ["args apply to a factory"]),
        ({"name": "resnet18", "input": {"kind": "tokens", "length": 8, "vocab": 9}}, {}, ["takes images"]),
        ({"name": "bert_base", "args": {"depth": 2}}, {}, ["bert_base takes args layers", "not depth"]),
        ({"name": "gpt2_small", "input": {"kind": "image"}}, {}, ["gpt2_small takes token inputs"]),
        ({"name": "gpt2_small", "input": {"size": 64}}, {}, ["gpt2_small's input takes length and vocab, not size"]),
        (TINYNET, {"workload": "mnist_epoch"}, ["mnist_epoch", "'tinynet' is not one"]),
    ],
)
def test_bad_entries_are_refused_before_any_job(workdir, entry, keys, fragments):
    with pytest.raises(ConfigError) as error:
        config.prepare(study(entry, **keys), MODELS, cwd=workdir)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_good_entries_expand_into_cells_with_their_source(workdir):
    raw = study("resnet18", TINYNET, TINY_LM, {"name": "bert_base", "input": {"length": 16}},
                {"name": "gpt2_small", "args": {"layers": 2}}, {"name": "mod_net", "factory": "models.tinynet:build"})
    cells = matrix.expand(config.prepare(raw, MODELS, cwd=workdir), cwd=workdir)
    specs = {c.model: json.loads(c.spec()) for c in cells}
    assert "model_source" not in specs["resnet18"]  # torchvision specs are what they were
    assert specs["tinynet"]["input_size"] == 32
    assert specs["tiny_lm"]["input_size"] == 8
    assert specs["bert_base"]["model_source"] == {
        "builtin": "bert_base", "args": {}, "input": {"kind": "tokens", "length": 16, "vocab": 30522}}
    assert specs["gpt2_small"]["model_source"]["input"] == {"kind": "tokens", "length": 256, "vocab": 50257}
    assert specs["gpt2_small"]["input_size"] == 256
    digest = specs["tinynet"]["model_source"]["sha256"]
    assert digest == specs["mod_net"]["model_source"]["sha256"]  # the module's file, found without importing it
    # editing the factory file changes exactly its cells' specs
    (workdir / "models" / "tiny_lm.py").write_text((workdir / "models" / "tiny_lm.py").read_text() + "\n# edited\n")
    after = {c.model: c.spec() for c in matrix.expand(config.prepare(raw, MODELS, cwd=workdir), cwd=workdir)}
    changed = {model for model in after if after[model] != json.dumps(specs[model], sort_keys=True)}
    assert changed == {"tiny_lm"}


def test_builtin_table_matches_the_code():
    for name, entry in model_entries.BUILTINS.items():
        parameters = inspect.signature(transformers.Gpt2Small if name == "gpt2_small" else transformers.BertBase).parameters
        assert set(entry["args"]) <= set(parameters)
        defaults = inspect.signature(transformers.BUILTINS[name]).parameters
        assert defaults["vocab"].default == entry["input"]["vocab"]
        assert defaults["length"].default == entry["input"]["length"]


def _builtin(name, **args):
    return {"builtin": name, "args": args, "input": dict(model_entries.BUILTINS[name]["input"])}


def transformer_forward_flops(layers, width, length, batch):
    """Hand count, 2 FLOPs per multiply-add, per sequence and layer: Q, K, V and output
    projections 4 * 2*L*d*d, feed-forward 2 * 2*L*d*4d, attention scores Q K^T and their
    weighted sum of V 2 * 2*L*L*d; that is 24*L*d^2 + 4*L^2*d."""
    return batch * layers * (24 * length * width**2 + 4 * length**2 * width)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_bert_base_flops_match_a_hand_count(mode):
    batch, classes, d, length = 2, 10, 768, 128
    counted = custom_models.count_flops(_builtin("bert_base"), classes, batch, mode)
    forward = transformer_forward_flops(12, d, length, batch) + batch * (2 * d * d + 2 * d * classes)  # pooler, classifier
    hand = forward if mode == "infer" else 3 * forward  # backward: gradients of inputs and weights, 2x forward
    assert counted == pytest.approx(hand, rel=0.05)
    assert 20e9 < counted / batch / (1 if mode == "infer" else 3) < 25e9  # ~22.4 GFLOPs per 128-token sequence


def test_gpt2_small_flops_include_the_language_model_head():
    batch, d, length, vocab = 1, 768, 256, 50257
    counted = custom_models.count_flops(_builtin("gpt2_small"), 10, batch, "infer")
    hand = transformer_forward_flops(12, d, length, batch) + batch * 2 * length * d * vocab
    assert counted == pytest.approx(hand, rel=0.05)


def test_builtin_shapes_and_parameters():
    import torch

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        bert = custom_models.build(_builtin("bert_base"), 7, seed=0)
        gpt = custom_models.build(_builtin("gpt2_small"), 7, seed=0)
    # BERT-base 110M with its 30522-token vocabulary (+ our classifier); GPT-2 small 124M (tied head)
    assert 108e6 < sum(p.numel() for p in bert.parameters()) < 111e6
    assert 123e6 < sum(p.numel() for p in gpt.parameters()) < 125e6
    small = {"layers": 1, "width": 32, "heads": 4}
    tokens = torch.randint(0, 100, (3, 16))
    source = {"builtin": "bert_base", "args": small, "input": {"kind": "tokens", "length": 16, "vocab": 100}}
    assert custom_models.build(source, 7, 0)(tokens).shape == (3, 7)
    source = {**source, "builtin": "gpt2_small"}
    assert custom_models.build(source, 7, 0)(tokens).shape == (3, 16, 100)


BROKEN = '''
import torch
from torch import nn

def raises(num_classes):
    raise RuntimeError("no weights for you")

def not_a_module(num_classes):
    return "a string"

def wrong_shape(num_classes):
    return nn.Linear(32, 5)  # images (batch, 3, 32, 32) -> (batch, 3, 32, 5)

def hf_style(num_classes, vocab):
    class Wrapped(nn.Module):  # returns a dict with logits, as a Hugging Face model does
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, 8)
            self.head = nn.Linear(8, num_classes)

        def forward(self, tokens):
            return {"logits": self.head(self.embed(tokens).mean(1))}
    return Wrapped()
'''


def cell_spec(workdir, entry, mode="train"):
    raw = study(entry, modes=[mode], timing={"warmup": 1, "repeats": 2}, cpu_threads=1)
    (cell,) = matrix.expand(config.prepare(raw, MODELS, cwd=workdir), cwd=workdir)
    return json.loads(cell.spec())


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        ("raises", "RuntimeError: no weights for you"),
        ("not_a_module", "TypeError: factory 'broken.py:not_a_module' returned str, not a torch.nn.Module"),
        ("wrong_shape", "HeadError: output shape (2, 3, 32, 5) fits neither head; expected (2, classes)"),
    ],
)
def test_a_failing_factory_is_its_cells_error(workdir, monkeypatch, function, fragment):
    (workdir / "broken.py").write_text(BROKEN)
    monkeypatch.chdir(workdir)
    spec = cell_spec(workdir, {"name": "broken", "factory": f"broken.py:{function}", "input": {"size": 32}})
    (row,) = runner.measure(spec, cellkey.row_columns(spec, 1))
    assert row["status"] == "error"
    assert fragment in row["error"]
    assert row["model_source"].startswith(f"factory:broken.py:{function}@sha256:")


def test_token_classifier_with_hugging_face_style_output(workdir, monkeypatch):
    (workdir / "broken.py").write_text(BROKEN)
    monkeypatch.chdir(workdir)
    entry = {"name": "hf", "factory": "broken.py:hf_style", "args": {"vocab": 30},
             "input": {"kind": "tokens", "length": 12, "vocab": 30}}
    spec = cell_spec(workdir, entry)
    rows = runner.measure(spec, cellkey.row_columns(spec, 1))
    assert {r["status"] for r in rows} == {"ok"}
    first = rows[0]
    assert first["input_kind"] == "tokens" and first["vocab_size"] == 30
    assert first["tokens_per_s"] == pytest.approx(first["items_per_s"] * 12)
    assert first["flops_per_step"] > 0 and first["final_loss"] > 0


def test_language_model_loss_is_next_token_cross_entropy():
    import torch

    tokens = torch.tensor([[1, 2, 3, 0]])
    logits = torch.full((1, 4, 4), -20.0)
    for position, following in enumerate([2, 3, 0]):
        logits[0, position, following] = 20.0  # predicts each next token; the last position is ignored
    targets = custom_models.make_targets(custom_models.LANGUAGE_MODEL, 4, tokens, seed=0)
    assert custom_models.loss_function(custom_models.LANGUAGE_MODEL)(logits, targets).item() < 1e-6


def test_throughput_plot_labels_each_kind_in_its_unit(monkeypatch, tmp_path):
    from speedatlas.present.plots import throughput

    figures = []
    monkeypatch.setattr(throughput, "save", lambda fig, png, svg=None: figures.append(fig))
    rows = []
    for model, kind in (("resnet18", "image"), ("bert_base", "tokens")):
        for batch in (2, 4):
            rows.append({"machine": "m", "device": "cpu", "model": model, "mode": "train", "dtype": "float32",
                         "variant": "eager", "torch_requested": "current", "workload": "synthetic",
                         "status": "ok", "batch_size": batch, "items_per_s": 10.0 * batch,
                         "q1_s": 0.09, "q3_s": 0.11, "input_kind": kind})
    throughput.throughput_vs_batch(pd.DataFrame(rows), str(tmp_path / "t.png"))
    labels = sorted(ax.get_ylabel() for ax in figures[0].axes if ax.get_title())
    assert labels == ["throughput (images/s, log scale)", "throughput (sequences/s, log scale)"]


def test_merging_refuses_one_model_label_from_two_factory_files():
    from speedatlas.analyze import resultsets
    from speedatlas.measure import cellio

    def rows(machine, source):
        base = {"machine": machine, "workload": "synthetic", "torch_requested": "current", "device": "cpu",
                "model": "mynet", "dtype": "float32", "mode": "train", "variant": "eager", "batch_size": 2,
                "status": "ok", "cpu_model": machine, "model_source": source}
        return cellio.rows_to_table([{**base, "repeat": i, "step_time_s": 0.1} for i in range(2)]).to_pandas()

    same = "factory:net.py:build@sha256:aaaaaaaaaaaa"
    assert len(resultsets.merge([("a", rows("m1", same)), ("b", rows("m2", same))])) == 4
    # the same file and function where a bundle was rerun elsewhere (it names its own copy): one model
    moved = "factory:factories/a/net.py:build@sha256:aaaaaaaaaaaa"
    assert len(resultsets.merge([("a", rows("m1", "factory:/home/me/a/net.py:build@sha256:aaaaaaaaaaaa")),
                                 ("b", rows("m2", moved))])) == 4
    with pytest.raises(comparisons.MergeError, match="'mynet' names two different models"):
        resultsets.merge([("a", rows("m1", same)), ("b", rows("m2", same.replace(":build@", ":make@")))])
    with pytest.raises(comparisons.MergeError, match="'mynet' names two different models: .*aaaa.* in 'a' but .*bbbb.* in 'b'"):
        resultsets.merge([("a", rows("m1", same)), ("b", rows("m2", same.replace("a", "b")))])


@pytest.mark.parametrize("name", ["examples/custom-image.yaml", "examples/custom-tokens.yaml",
                                  "examples/transformers.yaml", "h100-transformers.yaml"])
def test_shipped_configs_are_valid(name, monkeypatch):
    import yaml

    monkeypatch.chdir(REPO)  # factory paths are relative to the repository root, where users run them
    study = config.prepare(yaml.safe_load((REPO / "config" / name).read_text()), ["resnet18"], cwd=REPO)
    cells = matrix.expand(study, cwd=REPO)
    assert cells and all(c.workload == "synthetic" for c in cells)
    if name == "h100-transformers.yaml":
        assert {(c.model, c.batch, c.dtype, c.mode, c.device) for c in cells} == {
            (m, b, t, "train", d) for m, b in (("bert_base", 64), ("gpt2_small", 8))
            for t in ("float32", "bfloat16") for d in ("cpu", "cuda")}


def test_energy_plot_names_sequences_for_token_models(monkeypatch, tmp_path):
    from speedatlas.present.plots import energy

    figures = []
    monkeypatch.setattr(energy, "save", lambda fig, png, svg=None: figures.append(fig))
    cells = pd.DataFrame([{"machine": "m", "device": "cpu", "model": "gpt2_small", "mode": "train", "dtype": "float32",
                           "status": "ok", "items_per_s": 3.0, "avg_power_w": 50.0, "idle_power_w": 10.0,
                           "batch_size": 8, "input_kind": "tokens"}])
    energy.energy_plot(cells, str(tmp_path / "e.png"))
    figure = figures[0]  # axis names and title are the figure's (one panel per model)
    assert figure.get_supylabel().startswith("throughput (sequences/s")
    assert "sequences per joule" in figure._suptitle.get_text() and "labels: batch" in figure._suptitle.get_text()


def test_a_bundle_keeps_factories_of_one_file_name_apart(tmp_path):
    """Files outside the working directory go under factories/ by the shortest tail of their path
    that tells them apart; inside ones keep their relative paths; only outside files are renamed."""
    from speedatlas.plan import model_entries

    cwd = tmp_path / "study"
    for folder in (cwd / "models", tmp_path / "x" / "a", tmp_path / "y" / "a", tmp_path / "b", tmp_path / "c"):
        folder.mkdir(parents=True)
        (folder / "model.py").write_text("def build(num_classes):\n    pass\n")
    (tmp_path / "c" / "net.py").write_text("def build(num_classes):\n    pass\n")
    entries = {"inside": "models/model.py:build", "xa": f"{tmp_path}/x/a/model.py:build",
               "ya": f"{tmp_path}/y/a/model.py:build", "b": f"{tmp_path}/b/model.py:build",
               "up": "../c/net.py:build", "same": f"{tmp_path}/c/net.py:build"}
    config = {"models": [{"name": name, "factory": text} for name, text in entries.items()]}
    places = {text: place for text, (place, _, _) in model_entries.bundle_places(config, cwd).items()}
    assert places == {entries["inside"]: "models/model.py", entries["xa"]: "factories/x/a/model.py",
                      entries["ya"]: "factories/y/a/model.py", entries["b"]: "factories/b/model.py",
                      entries["up"]: "factories/net.py", entries["same"]: "factories/net.py"}
    assert model_entries.bundle_factory_strings(config, cwd) == {
        text: f"{places[text]}:build" for name, text in entries.items() if name != "inside"}
    files = model_entries.factory_files(config, cwd)
    assert len(files) == 5 and files["factories/x/a/model.py"] == tmp_path / "x" / "a" / "model.py"
    alone = {"models": [{"name": "b", "factory": entries["b"]}]}
    assert list(model_entries.factory_files(alone, cwd)) == ["factories/model.py"]  # as before: one file, its name
