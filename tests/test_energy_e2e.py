"""Energy end to end: the tiny CPU study records an energy source (or why not) for every cell,
and a real cell measured through a fake RAPL counter that advances while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from speedatlas.measure.hardware import energy
from speedatlas.measure.process import machine_lock, runner
from speedatlas.plan import matrix

pytestmark = pytest.mark.slow


def test_tiny_study_records_the_energy_source_of_every_cell(tiny_study):
    files = sorted((tiny_study / "results" / "cells").rglob("cell.parquet"))
    raw = ds.dataset([str(f) for f in files], format="parquet").to_table().to_pandas()
    ok = raw[raw.status == "ok"]
    assert len(ok) and ok["energy_source"].isin(energy.SOURCES).all()
    assert ok["energy_note"].notna().all()
    if not Path(energy.POWERCAP_ROOT).exists():  # this VM: no powercap, so no RAPL
        assert (ok["energy_source"] == "unavailable").all()
        assert ok["energy_note"].str.contains("no RAPL package zone").all()
        assert ok["energy_j"].isna().all()
    cells = pd.read_parquet(tiny_study / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert cells.loc[cells.status == "ok", "energy_source"].notna().all()
    speedups = pd.read_parquet(tiny_study / "results" / "studies" / "config" / "tables" / "speedups.parquet")
    assert "energy_ratio" in speedups
    report = (tiny_study / "results" / "studies" / "config" / "report.md").read_text()
    if not Path(energy.POWERCAP_ROOT).exists():
        # no cell measured energy: one line saying why and how to turn a source on, no section or plot
        assert "## Energy" not in report and "![Throughput vs power]" not in report
        line = next(line for line in report.splitlines() if line.startswith("**Energy** was not measured: "))
        assert "no RAPL package zone" in line and "NVML on NVIDIA GPUs" in line and "--forcerun bench" in line
    else:
        section = report.split("## Energy", 1)[1].split("\n## ", 1)[0]
        assert "Cells by energy source:" in section and "nvidia-ml-py" in section
    png = tiny_study / "results" / "studies" / "config" / "plots" / "energy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# 50 W, written every 2 ms, atomically (a reader never sees half a number), wrapping at 200 J
ADVANCE = """
import os, sys, time
zone = sys.argv[1]
uj, last = 199_000_000, time.perf_counter()
while True:
    time.sleep(0.002)
    now = time.perf_counter()
    uj = (uj + int(50e6 * (now - last))) % 200_000_000
    last = now
    with open(os.path.join(zone, "energy_uj.tmp"), "w") as handle:
        handle.write(f"{uj}\\n")
    os.replace(os.path.join(zone, "energy_uj.tmp"), os.path.join(zone, "energy_uj"))
"""


def test_a_cell_measured_through_a_fake_rapl_counter(tmp_path, monkeypatch):
    """runner -> timing -> meter -> cell file, with a package counter a thread advances at
    ~50 W (in a process of its own), starting 1 J below its wrap at 200 J: the cell's energy columns come out positive and
    plausible across the wrap."""
    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("200000000\n")
    counter = zone / "energy_uj"
    counter.write_text("199000000\n")
    # A process of its own advances the counter: a thread of this process would starve while the
    # cell holds the GIL (gc.collect() before the timed blocks), then catch up inside the window
    # and read as ~90 W.
    advance = subprocess.Popen([sys.executable, "-c", ADVANCE, str(zone)])
    monkeypatch.setattr(energy, "POWERCAP_ROOT", str(tmp_path / "powercap"))
    monkeypatch.setenv(machine_lock.LOCK_ENV, str(tmp_path / "lock"))
    cell = matrix.Cell(machine="t", workload="synthetic", torch="current", device="cpu", model="resnet18",
                       dtype="float32", mode="infer", variant="eager", batch=1, input_size=32, num_classes=4,
                       warmup=1, repeats=3, steps_per_repeat=1, cpu_threads=1, seed=0,
                       energy=json.dumps({"enabled": True, "min_window_s": 0.3, "idle_s": 0.2, "extend": True}))
    try:
        status = runner.run_cell(json.loads(cell.spec()), str(tmp_path / "cell.parquet"), 1)
    finally:
        advance.kill()
        advance.wait()
    assert status == "ok"
    rows = pd.read_parquet(tmp_path / "cell.parquet")
    assert (rows["energy_source"] == "rapl").all() and rows["energy_scope"].str.contains("cpu packages").all()
    assert (rows["energy_j"] > 0).all()
    assert rows["avg_power_w"].between(25, 75).all()  # 50 W, written every 2 ms, read between blocks
    assert 25 < rows["idle_power_w"].iloc[0] < 75
    assert (rows["energy_window_s"] >= 0.3).all() and not rows["energy_window_short"].any()
    assert (rows["energy_window_steps"] >= 3).all()
