"""The seed study side by side, built from the published CSV and a fake result set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from speedatlas.present.report import seed as seed_report
from speedatlas.present.report import epochs as epochs_report
from speedatlas.plan import comparisons
from speedatlas.analyze import epoch_table, seed_side_by_side, tables
from speedatlas.measure import cellio
from speedatlas.plan.config import ConfigError

PUBLISHED = REPO / "config" / "seed-figures" / "seed_m1max.csv"


def test_published_seed_figures_are_complete_and_consistent():
    frame, notes = seed_side_by_side.load_published(PUBLISHED)
    assert len(frame) == 5 * 2 * 2
    assert set(frame["model"]) == {"vgg16", "alexnet", "resnet18", "mobilenet_v2", "efficientnet_b0"}
    assert set(frame["batch_size"]) == {4, 64} and set(frame["device"]) == {"cpu", "mps"}
    assert any("M1 Max" in line for line in notes)
    wide = frame.pivot_table(index=["model", "batch_size"], columns="device", values="epoch_time_s")
    assert wide.loc[("mobilenet_v2", 64), "cpu"] == 436.72 and wide.loc[("vgg16", 4), "mps"] == 36.28
    stated = frame.dropna(subset=["speedup_pct"]).set_index("model")["speedup_pct"]
    ratios = wide.xs(4, level="batch_size")
    for model, pct in stated.items():  # the stated batch-4 speed-ups are the ratios, rounded
        assert abs(ratios.loc[model, "cpu"] / ratios.loc[model, "mps"] * 100 - pct) < 1.5


def epoch_rows(device, batch, epoch_s, wait_s, status="ok", model="resnet18", images=1000, first=None):
    steps = -(-images // batch)
    base = {"machine": "m", "workload": "mnist_epoch", "torch_requested": "current", "device": device,
            "model": model, "dtype": "float32", "mode": "train", "variant": "eager", "batch_size": batch,
            "steps_per_repeat": steps, "images_per_epoch": images, "num_workers": 4, "input_size": 224,
            "status": status, "dataset": "synthetic-mnist" if status == "ok" else None}
    if status != "ok":
        return [{**base, "error": "mps is not available"}]
    rng = np.random.default_rng(batch)
    rows = []
    for i, jitter in enumerate(rng.uniform(0.99, 1.01, 6)):
        t = epoch_s * jitter
        rows.append({**base, "repeat": i, "epoch_time_s": t, "data_wait_s": wait_s * jitter, "step_time_s": t / steps,
                     "items_per_s": images / t, "first_epoch_s": first or epoch_s * 1.5})
    return rows


def synthetic_rows(device, batch, step_s, model="resnet18"):
    base = {"machine": "m", "workload": "synthetic", "torch_requested": "current", "device": device,
            "model": model, "dtype": "float32", "mode": "train", "variant": "eager", "batch_size": batch,
            "input_size": 224, "status": "ok", "steps_per_repeat": 1}
    rng = np.random.default_rng(batch + 1)
    return [{**base, "repeat": i, "step_time_s": step_s * j, "items_per_s": batch / (step_s * j)}
            for i, j in enumerate(rng.uniform(0.99, 1.01, 10))]


@pytest.fixture()
def fake_study():
    """resnet18 at batch 4: cpu and a fake gpu device 'mps' that ran; at batch 64 mps is absent."""
    rows = [
        *epoch_rows("cpu", 4, epoch_s=40.0, wait_s=10.0),
        *epoch_rows("mps", 4, epoch_s=20.0, wait_s=12.0),
        *epoch_rows("cpu", 64, epoch_s=60.0, wait_s=6.0),
        *epoch_rows("mps", 64, 0, 0, status="unavailable"),
        *synthetic_rows("cpu", 4, step_s=0.12),
        *synthetic_rows("mps", 4, step_s=0.02),
        *synthetic_rows("cpu", 64, step_s=3.0),
    ]
    raw = cellio.rows_to_table(rows).to_pandas()
    return (
        epoch_table.summarize_epochs(raw),
        tables.summarize_cells(raw),
        tables.speedup_table(raw, "cpu", "current", resamples=200),
    )


def test_side_by_side_puts_published_and_measured_epochs_together(fake_study):
    epoch_table, cells, speedups = fake_study
    published, _ = seed_side_by_side.load_published(PUBLISHED)
    table = seed_side_by_side.side_by_side(published, epoch_table, cells, speedups, "cpu", "current", "m", images=1000)
    assert len(table) == 20
    row = table.set_index(["model", "batch_size", "device"])
    cpu4, mps4 = row.loc[("resnet18", 4, "cpu")], row.loc[("resnet18", 4, "mps")]
    assert cpu4["published_epoch_s"] == 42.05 and mps4["published_epoch_s"] == 18.61
    assert mps4["published_speedup"] == pytest.approx(42.05 / 18.61)
    assert mps4["published_speedup_stated"] == pytest.approx(2.25)
    assert cpu4["epoch_s"] == pytest.approx(40.0, rel=0.02) and cpu4["first_epoch_s"] == pytest.approx(60.0, rel=0.02)
    assert cpu4["input_share"] == pytest.approx(0.25) and mps4["input_share"] == pytest.approx(0.6)
    assert mps4["speedup"] == pytest.approx(2.0, rel=0.03)
    assert mps4["speedup_ci_low"] <= mps4["speedup"] <= mps4["speedup_ci_high"]
    # compute only: synthetic time per image x 1000 images
    assert cpu4["compute_only_epoch_s"] == pytest.approx(0.12 / 4 * 1000, rel=0.02)
    assert mps4["compute_only_speedup"] == pytest.approx(6.0, rel=0.03)
    assert row.loc[("resnet18", 64, "mps"), "status"] == "unavailable"
    assert row.loc[("vgg16", 4, "cpu"), "status"] == "not in study"
    assert pd.isna(row.loc[("vgg16", 4, "cpu"), "epoch_s"])


def test_side_by_side_markdown(fake_study):
    epoch_table, cells, speedups = fake_study
    published, notes = seed_side_by_side.load_published(PUBLISHED)
    table = seed_side_by_side.side_by_side(published, epoch_table, cells, speedups, "cpu", "current", "m", images=1000)
    text = seed_report.side_by_side_markdown(table, notes, "config/seed-figures/seed_m1max.csv")
    assert text.startswith("## Seed study, side by side")
    assert "> Published epoch times of the seed study" in text
    assert "| resnet18 | 4 | mps | 18.61 | 2.26× |" in text
    assert "On cpu, waiting for the input pipeline takes 10%–25% of an epoch" in text
    assert "resnet18 batch 4: mps is 2.0" in text and "6.0" in text
    assert "mps did not run on this machine" in text
    assert "agree with the ratios of its epoch times to within" in text


def test_published_file_is_found_or_refused(tmp_path):
    assert comparisons.resolve_published(None, REPO, tmp_path) is None
    assert comparisons.resolve_published("config/seed-figures/seed_m1max.csv", REPO, tmp_path) == PUBLISHED.resolve()
    with pytest.raises(ConfigError, match="key 'published': 'nope.csv' is not a file"):
        comparisons.resolve_published("nope.csv", REPO, tmp_path)


def test_epochs_markdown(fake_study):
    text = epochs_report.epochs_markdown(fake_study[0])
    assert text.startswith("## Epoch workload (mnist_epoch)")
    line = next(l for l in text.splitlines() if l.startswith("| resnet18 | cpu | train | 4 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[4:6] == ["ok", "synthetic-mnist"] and cells[-2:] == ["25%", "6"]
    assert float(cells[6]) == pytest.approx(60, rel=0.02) and float(cells[7]) == pytest.approx(40, rel=0.02)
    assert "| unavailable |" in text
