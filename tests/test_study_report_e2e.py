"""A two-machine study through the real workflow: merge, compare, plot, report, publish, include.

This machine's cells are measured for real (machine "m1", cpu; mps cells are unavailable here);
the other machine ("h100", cpu and cuda) is a result set written with speedatlas.measure.cellio, as if
copied from a GPU box.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import fakesets
import pandas as pd
import pytest
from conftest import REPO, planned_jobs, snakemake, write_config
from test_report_units import check_sentence, png_size

pytestmark = pytest.mark.slow

LOCAL = {
    "machine": "m1",
    "devices": ["cpu", "mps"],
    "models": ["resnet18"],
    "batch_sizes": [2, 4],
    "modes": ["train", "infer"],
    "input_size": 32,
    "num_classes": 4,
    "timing": {"warmup": 1, "repeats": 4, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1,
}
H100 = {
    (device, "resnet18", mode, batch): (0.004 if device == "cpu" else 0.0005) * batch * (3 if mode == "train" else 1)
    for device in ("cpu", "cuda") for mode in ("train", "infer") for batch in (2, 4)
}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("two-machines")
    fakesets.write_machine(directory / "h100" / "results" / "cells", "h100", H100,
                           cpu_model="Intel Xeon Platinum 8480+")
    config = write_config(directory, {**LOCAL, "include_results": [str(directory / "h100")],
                                      "publish_name": "m1-vs-h100"})
    result = snakemake(directory, config, "--cores", "2")
    (directory / "run.log").write_text(result.stdout + result.stderr)
    return directory


def tables(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = directory / "results" / "studies" / "config" / "tables"
    return pd.read_parquet(results / "cells.parquet"), pd.read_parquet(results / "speedups.parquet")


def test_tables_hold_both_machines_and_compare_them(study):
    cells, speedups = tables(study)
    assert cells.groupby("machine").size().to_dict() == {"h100": 8, "m1": 8}
    assert set(cells[cells.machine == "h100"].cpu_model) == {"Intel Xeon Platinum 8480+"}
    assert set(cells[(cells.machine == "m1") & (cells.status == "ok")].cpu_model) != {"Intel Xeon Platinum 8480+"}
    across = speedups[speedups.axis == "machine_device"]
    # Default baseline: this machine's baseline_device. m1/mps never ran here, so no row for it.
    assert set(across.baseline) == {"m1/cpu"} and set(across.candidate) == {"h100/cpu", "h100/cuda"}
    ok = cells[cells.status == "ok"].set_index(["machine", "device", "mode", "batch_size"])
    for row in across.itertuples():
        local = ok.loc[("m1", "cpu", row.mode, row.batch_size), "median_s"]
        other = ok.loc[("h100", row.device, row.mode, row.batch_size), "median_s"]
        assert row.speedup == pytest.approx(local / other, rel=1e-9)
        assert row.ci_low <= row.speedup <= row.ci_high
    device = speedups[speedups.axis == "device"]
    assert set(zip(device.machine, device.candidate, device.baseline)) == {("h100", "cuda", "cpu")}


def test_report_summary_matches_the_tables(study):
    _, speedups = tables(study)
    report = (study / "results" / "studies" / "config" / "report.md").read_text()
    summary = report.split("## Summary", 1)[1].split("##", 1)[0]
    lines = [line[2:] for line in summary.strip().splitlines()]
    first = check_sentence(lines[0], speedups)
    assert (first.candidate, first.baseline) == ("h100/cuda", "m1/cpu")
    group = speedups[(speedups.candidate == "h100/cuda") & (speedups.baseline == "m1/cpu")]
    assert first.speedup == group.speedup.max()
    assert f"the median speed-up is {group.speedup.median():.2f}×" in lines[0]
    second = check_sentence(lines[1], speedups)
    assert (second.machine, second.candidate, second.baseline) == ("h100", "cuda", "cpu")
    # the cells that did not run are explained, with what to do next
    assert "mps is not on this machine (4 cells unavailable): run the study on an Apple Silicon Mac (mps) for its figures." in lines
    for heading in ("### m1", "### h100", "### Speed-ups across machines", "| h100/cuda vs m1/cpu | resnet18 |"):
        assert heading in report


def test_every_plot_is_an_image(study):
    plots = study / "results" / "studies" / "config" / "plots"
    for name in ("throughput", "speedup_heatmap", "noise"):
        width, height = png_size(plots / f"{name}.png")
        assert width > 600 and height > 300 and (plots / f"{name}.png").stat().st_size > 15_000
        assert (plots / f"{name}.svg").stat().st_size > 10_000
    report = (study / "results" / "studies" / "config" / "report.md").read_text()
    for name in ("speedup_heatmap", "throughput", "noise"):
        assert f"](plots/{name}.png)" in report


def test_snakemake_report_makes_an_html_file(study):
    snakemake(study, study / "config.yaml", "--cores", "1", "--report", "results/studies/config/report.html")
    page = (study / "results" / "studies" / "config" / "report.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and len(page) > 100_000
    assert "Run-to-run noise of every cell" in page  # a caption from workflow/report/


@pytest.mark.parametrize("script", ["plots.py", "speedups_md.py"])
def test_plot_code_change_reruns_no_cell_and_no_table(study, script):
    path = REPO / "workflow" / "scripts" / script
    before = path.stat()
    try:
        os.utime(path)
        jobs = planned_jobs(study, study / "config.yaml")
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "bench" not in jobs and "cell_file" not in jobs and "aggregate" not in jobs
    assert jobs.get(script.removesuffix(".py")) == 1


def test_a_changed_included_cell_reruns_aggregation_not_cells(study):
    """Another machine's result set was updated (e.g. a cell rerun there and copied again)."""
    root = study / "h100" / "results" / "cells"
    cell = next(root.rglob("cell.parquet"))
    before, content = cell.stat(), cell.read_bytes()
    try:
        first = pd.read_parquet(cell).iloc[0]
        fakesets.write_cell(root, fakesets.cell_rows("h100", first.device, first.model, first["mode"],
                                                     int(first.batch_size), 0.123, first.cpu_model))
        os.utime(cell, (time.time() + 10, time.time() + 10))
        jobs = planned_jobs(study, study / "config.yaml")
    finally:
        cell.write_bytes(content)
        os.utime(cell, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "bench" not in jobs and jobs.get("aggregate") == 1 and jobs.get("report_md") == 1


def test_published_bundle_is_a_result_set_for_another_study(study, tmp_path):
    snakemake(study, study / "config.yaml", "--cores", "1", "publish")
    bundle = study / "results" / "publish" / "m1-vs-h100"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["machines"]) == {"h100", "m1"} and manifest["machines"]["m1"]["cells"] == 8
    for name in ("index.html", "report.md", "plots/speedup_heatmap.svg", "tables/speedups.csv", "tables/cells.csv",
                 "config/config.yaml", "config/resolved.yaml"):
        assert name in manifest["files"], name
    assert sum(name.startswith("cells/") for name in manifest["files"]) == 16
    check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    other = {**LOCAL, "machine": "m2", "devices": ["cpu"],
             "models": [{"name": "resnet18", "modes": ["infer"], "batch_sizes": [2]}],
             "include_results": [str(bundle)], "cross_machine_baselines": ["m1/cpu", "h100/cuda"]}
    snakemake(tmp_path, write_config(tmp_path, other), "--cores", "1", "results/studies/config/tables/speedups.parquet")
    cells, speedups = tables(tmp_path)
    assert cells.groupby("machine").size().to_dict() == {"h100": 8, "m1": 8, "m2": 1}
    across = speedups[speedups.axis == "machine_device"]
    pairs = set(zip(across.candidate, across.baseline))
    assert {("m2/cpu", "m1/cpu"), ("h100/cuda", "m1/cpu"), ("m2/cpu", "h100/cuda")} <= pairs
    assert ("m1/cpu", "h100/cuda") not in pairs  # the inverse of a row already there


def test_one_label_for_two_machines_is_refused(study, tmp_path):
    clash = {**LOCAL, "machine": "h100", "devices": ["cpu"],
             "models": [{"name": "resnet18", "modes": ["infer"], "batch_sizes": [2]}],
             "include_results": [str(study / "h100")]}
    result = snakemake(tmp_path, write_config(tmp_path, clash), "--cores", "1", "results/studies/config/tables/cells.parquet",
                       check=False)
    assert result.returncode != 0
    log = (tmp_path / "results" / "studies" / "config" / "logs" / "aggregate.log").read_text()
    assert "machine label 'h100' means two different machines: cpu_model is" in log
    assert not (tmp_path / "results" / "studies" / "config" / "tables" / "cells.parquet").exists()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ({"include_results": ["nowhere"]}, ["include_results[0]", "'nowhere' does not exist"]),
        ({"cross_machine_baselines": ["h200/cuda"]}, ["cross_machine_baselines[0]", "'h200' is neither"]),
        ({"cross_machine_baselines": ["m1-cpu"]}, ["cross_machine_baselines[0]", "machine/device"]),
    ],
)
def test_bad_multi_machine_config_is_refused_before_any_job(tmp_path, extra, fragments):
    result = snakemake(tmp_path, write_config(tmp_path, {**LOCAL, **extra}), "-n", "--cores", "1", check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    for fragment in fragments:
        assert fragment in text, text
    assert not (tmp_path / "results").exists()
