"""The stage redesign (plan/measure/analyze/present) changed no output.

A small study whose 16 cells are written by tests/fakesets.py (exact, deterministic numbers) goes
through the real workflow: aggregation, the three plots and the report. Its outputs must be the
bytes the flat package wrote before the move (tests/golden/house/, made with commit 2c0be14).
One deliberate difference is in the golden report already: the resolved config lists every key
(launcher, device_peaks and timing_by_device were missing from the hand-written list).
If you change a table, plot or the report on purpose, regenerate the golden files with
`SPEEDATLAS_UPDATE_GOLDEN=1 uv run pytest -m slow tests/test_house_unchanged.py` and say why in the commit.
"""

from __future__ import annotations

import hashlib
import os

import fakesets
import pytest
from conftest import REPO, snakemake, write_config

GOLDEN = REPO / "tests" / "golden" / "house"
TEXT_FILES = {"report.md": "report.md", "speedups.csv": "tables/speedups.csv", "speedups.md": "tables/speedups.md"}

CONFIG = {
    "machine": "golden", "devices": ["cpu", "cuda"], "baseline_device": "cpu",
    "models": ["resnet18", "alexnet"], "batch_sizes": [1, 8], "dtypes": ["float32"], "modes": ["train", "infer"],
    "input_size": 32, "num_classes": 4, "timing": {"warmup": 1, "repeats": 6, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1, "dtype_support": {"enabled": False},
}


def seconds_per_step() -> dict:
    out = {}
    for device, d in (("cpu", 1.0), ("cuda", 0.05)):
        for model, m in (("resnet18", 0.02), ("alexnet", 0.01)):
            for mode, k in (("train", 3.0), ("infer", 1.0)):
                for batch in (1, 8):
                    out[(device, model, mode, batch)] = d * m * k * (1 + batch / 4)
    return out


@pytest.mark.slow
def test_outputs_are_byte_identical_to_the_flat_package(tmp_path):
    configfile = write_config(tmp_path, CONFIG)
    fakesets.write_processes(tmp_path / "results", "golden", seconds_per_step())
    snakemake(tmp_path, configfile, "--cores", "2")
    results = tmp_path / "results" / "studies" / "config"
    sums = GOLDEN / "SHA256SUMS"
    if os.environ.get("SPEEDATLAS_UPDATE_GOLDEN"):
        for name, path in TEXT_FILES.items():
            (GOLDEN / name).write_text((results / path).read_text().replace(str(tmp_path), "<study>"))
        paths = [line.split()[1] for line in sums.read_text().splitlines()]
        sums.write_text("".join(f"{hashlib.sha256((results / p).read_bytes()).hexdigest()}  {p}\n" for p in paths))
    for name, path in TEXT_FILES.items():
        text = (results / path).read_text().replace(str(tmp_path), "<study>")  # the config's path
        assert text == (GOLDEN / name).read_text(), f"{path} changed"
    for line in sums.read_text().splitlines():
        digest, path = line.split()
        assert hashlib.sha256((results / path).read_bytes()).hexdigest() == digest, f"{path} changed"
