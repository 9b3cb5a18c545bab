"""benchmarks/variance_sources.py without timing anything: within a round each cell's candidates
run side by side, in an order that turns from round to round (run apart, one candidate met other
minutes of the machine than the rest: docs/timing.md, "Fork or fresh interpreter")."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os

from conftest import REPO


def load():
    saved = dict(os.environ)  # the script exports the job environment when imported
    try:
        spec = importlib.util.spec_from_file_location("variance_sources", REPO / "benchmarks" / "variance_sources.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


def test_candidates_run_side_by_side_in_turning_order(tmp_path, monkeypatch):
    bench = load()
    monkeypatch.setattr(bench, "cell_specs", lambda cells, *rest: {label: {"label": label} for label in cells})
    monkeypatch.setattr(bench.launcher, "start", lambda kind: None)
    monkeypatch.setattr(bench.launcher, "stop", lambda: None)
    monkeypatch.setattr(bench, "run_process", lambda spec, fresh, work: {"status": "ok", "median_s": 0.01})
    out = tmp_path / "runs.jsonl"
    args = argparse.Namespace(cells=["a", "b"], device="cpu", input_size=32, warmup=1, repeats=2, threads=1,
                              warmup_seconds=1.0, processes=3, candidates=["baseline", "fresh", "pin"],
                              out=str(out), resume=False)
    bench.measure(args)
    runs = [(r["round"], r["cell"], r["candidate"]) for r in map(json.loads, out.read_text().splitlines())]
    assert runs[:6] == [(0, "a", "baseline"), (0, "a", "fresh"), (0, "a", "pin"),
                        (0, "b", "baseline"), (0, "b", "fresh"), (0, "b", "pin")]
    assert [c for r, cell, c in runs if r == 1 and cell == "a"] == ["fresh", "pin", "baseline"]
    assert [c for r, cell, c in runs if r == 2 and cell == "b"] == ["pin", "baseline", "fresh"]
    assert len(runs) == 18
