"""The real workflow on a tiny study of a user's models and the built-in transformers (issue 17)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

SMALL = {"layers": 2, "width": 64, "heads": 4}
CONFIG = {
    "machine": "test",
    "devices": ["cpu"],
    "models": [
        {"name": "tinynet", "factory": "models/tinynet.py:build", "args": {"width": 8}, "input": {"kind": "image", "size": 32}},
        {"name": "tiny_lm", "factory": "models/tiny_lm.py:build", "args": {"vocab": 64, "width": 32},
         "input": {"kind": "tokens", "length": 16, "vocab": 64}},
        {"name": "bert_base", "args": SMALL, "input": {"length": 16, "vocab": 100}},
        {"name": "gpt2_small", "args": SMALL, "input": {"length": 16, "vocab": 100}},
        # a factory that raises: that cell's error, and the study goes on
        {"name": "broken", "factory": "models/broken.py:build", "modes": ["train"]},
    ],
    "batch_sizes": [2],
    "modes": ["train", "infer"],
    "num_classes": 4,
    "timing": {"warmup": 1, "repeats": 3, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1,
    "dtype_support": {"enabled": False},
}
TOKEN_MODELS = {"tiny_lm", "bert_base", "gpt2_small"}


@pytest.fixture(scope="module")
def custom_study(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("custom")
    shutil.copytree(REPO / "config" / "examples" / "models", directory / "models")
    (directory / "models" / "broken.py").write_text("def build(num_classes):\n    raise ValueError('factory says no')\n")
    configfile = write_config(directory, CONFIG)
    result = snakemake(directory, configfile, "--cores", "2")
    (directory / "run.log").write_text(result.stdout + result.stderr)
    return directory


def test_every_model_kind_runs_and_tokens_are_counted(custom_study):
    cells = pd.read_parquet(custom_study / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert len(cells) == 4 * 2 + 1
    good = cells[cells.model != "broken"]
    assert (good.status == "ok").all(), good[["model", "mode", "status", "error"]]
    tokens = good[good.model.isin(TOKEN_MODELS)]
    assert (tokens.input_kind == "tokens").all() and (tokens.tokens_per_s > 0).all()
    assert (tokens.tokens_per_s - tokens.items_per_s * 16).abs().max() < 1e-6
    assert good[good.model == "tinynet"].tokens_per_s.isna().all()
    assert (good.flops_per_step > 0).all()
    assert good[good.model == "bert_base"].model_source.eq("builtin:bert_base").all()
    assert good[good.model == "tinynet"].model_source.str.startswith("factory:models/tinynet.py:build@sha256:").all()
    broken = cells[cells.model == "broken"].iloc[0]
    assert broken.status == "error" and "ValueError: factory says no" in broken.error
    raw = pd.read_parquet(next((custom_study / "results" / "cells").rglob("model=gpt2_small/**/mode=train/**/cell.parquet")))
    assert (raw.tokens_per_s > 0).all() and raw.final_loss.notna().all()


def test_report_names_token_throughput(custom_study):
    report = (custom_study / "results" / "studies" / "config" / "report.md").read_text()
    assert "tokens/s" in report and "sequences/s" in report
    assert "`bert_base`: builtin:bert_base, seeded token ids (16 per sequence, vocabulary 100)" in report


def test_editing_a_factory_file_reruns_exactly_its_cells(custom_study):
    configfile = custom_study / "config.yaml"
    assert planned_jobs(custom_study, configfile) == {}
    factory = custom_study / "models" / "tiny_lm.py"
    original = factory.read_text()
    try:
        factory.write_text(original + "\n# a comment is an edit too\n")
        jobs = planned_jobs(custom_study, configfile)
    finally:
        factory.write_text(original)
    assert jobs["bench"] == 2  # tiny_lm train and infer, nothing else


def test_publish_bundle_carries_the_factory_sources(custom_study):
    snakemake(custom_study, custom_study / "config.yaml", "--cores", "1", "publish")
    bundle = custom_study / "results" / "publish" / "config"  # the study's name (its config file's)
    for name in ("tinynet.py", "tiny_lm.py", "broken.py"):
        assert (bundle / "config" / "models" / name).read_bytes() == (custom_study / "models" / name).read_bytes()
    manifest = (bundle / "manifest.json").read_text()
    assert "config/models/tiny_lm.py" in manifest
