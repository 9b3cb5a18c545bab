"""Items per joule per cell with its interval, and the energy ratio beside each speed-up."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from speedatlas.analyze import energy_tables, tables

KEY = dict(machine="m", workload="synthetic", torch_requested="current", model="resnet18", dtype="float32",
           mode="infer", variant="eager", batch_size=8)


def cell_rows(device, step_s, joules_per_step, source, windows_of=(2, 2, 2), idle_w=10.0, **extra):
    """Rows of one ok cell: one per timed block, each block in an energy window."""
    rows, repeat = [], 0
    for window, blocks in enumerate(windows_of):
        joules = joules_per_step[window] if isinstance(joules_per_step, list) else joules_per_step
        for _ in range(blocks):
            rows.append({**KEY, "device": device, **extra, "status": "ok", "repeat": repeat, "step_time_s": step_s,
                         "steps_per_repeat": 1, "energy_source": source, "energy_scope": "s",
                         "energy_note": "n", "energy_j": joules, "energy_window": window,
                         "energy_window_s": blocks * step_s, "energy_window_steps": blocks,
                         "avg_power_w": joules / step_s, "idle_power_w": idle_w,
                         "energy_window_short": False})
            repeat += 1
    return rows


def unavailable_rows(device, step_s):
    return [{**KEY, "device": device, "status": "ok", "repeat": r, "step_time_s": step_s, "steps_per_repeat": 1,
             "energy_source": "unavailable", "energy_note": "no RAPL package zone"} for r in range(3)]


def test_items_per_joule_per_cell_with_interval_from_windows():
    raw = pd.DataFrame(cell_rows("cuda", 0.01, [1.0, 1.2, 0.8], "nvml") + unavailable_rows("cpu", 0.1))
    cells = energy_tables.energy_cells(raw, resamples=500)
    cuda = cells[cells["device"] == "cuda"].iloc[0]
    assert cuda["energy_windows"] == 3  # samples are windows, not the 6 rows
    assert cuda["energy_j_per_item"] == pytest.approx(1.0 / 8)
    assert cuda["items_per_j"] == pytest.approx(8.0)
    assert cuda["items_per_j_low"] <= 8.0 <= cuda["items_per_j_high"]
    assert cuda["items_per_j_low"] >= 8 / 1.2 - 1e-9 and cuda["items_per_j_high"] <= 8 / 0.8 + 1e-9
    assert cuda["avg_power_w"] == pytest.approx(100.0)
    # above idle: (1 J - 10 W x 0.02 s / 2 steps) / 8 images per step
    assert cuda["items_per_j_above_idle"] == pytest.approx(8 / 0.9)
    cpu = cells[cells["device"] == "cpu"].iloc[0]
    assert cpu["energy_source"] == "unavailable" and cpu["energy_note"] == "no RAPL package zone"
    assert cpu["energy_windows"] == 0 and np.isnan(cpu["items_per_j"])


def test_one_window_gives_an_estimate_without_interval():
    raw = pd.DataFrame(cell_rows("cuda", 0.01, 2.0, "nvml", windows_of=(5,)))
    cuda = energy_tables.energy_cells(raw).iloc[0]
    assert cuda["items_per_j"] == pytest.approx(4.0)
    assert np.isnan(cuda["items_per_j_low"]) and np.isnan(cuda["items_per_j_high"])


def test_energy_ratio_beside_each_speedup():
    raw = pd.DataFrame(
        cell_rows("cpu", 0.1, [20.0, 21.0, 19.0], "rapl")
        + cell_rows("cuda", 0.01, [1.0, 1.1, 0.9], "nvml")
        + cell_rows("cuda", 0.005, [0.5, 0.55, 0.45], "nvml", dtype="bfloat16")
    )
    speedups = tables.speedup_table(raw, "cpu", "current", resamples=300)
    out = energy_tables.add_energy_ratios(speedups, raw, resamples=300)
    device = out[(out["axis"] == "device") & (out["dtype"] == "float32")].iloc[0]
    assert device["speedup"] == pytest.approx(10.0)
    assert device["energy_ratio"] == pytest.approx(20.0)  # 20 J vs 1 J per step
    assert device["energy_ratio_low"] <= 20.0 <= device["energy_ratio_high"]
    assert device["energy_sources"] == "rapl / nvml"
    assert device["baseline_items_per_j"] == pytest.approx(8 / 20) and device["candidate_items_per_j"] == pytest.approx(8)
    dtype = out[out["axis"] == "dtype"].iloc[0]
    assert dtype["energy_ratio"] == pytest.approx(2.0)


def test_no_energy_ratio_where_a_side_was_not_measured():
    raw = pd.DataFrame(unavailable_rows("cpu", 0.1) + cell_rows("cuda", 0.01, 1.0, "nvml"))
    out = energy_tables.add_energy_ratios(tables.speedup_table(raw, "cpu", "current", resamples=200), raw)
    assert len(out) == 1 and np.isnan(out["energy_ratio"].iloc[0]) and out["speedup"].iloc[0] == pytest.approx(10)


def test_cells_without_energy_columns_still_aggregate():
    """Cell files written before the energy columns existed read as nulls: no energy, no error."""
    raw = pd.DataFrame([{**KEY, "device": "cpu", "status": "ok", "repeat": r, "step_time_s": 0.1,
                         "steps_per_repeat": 1} for r in range(3)])
    cells = energy_tables.energy_cells(raw)
    assert len(cells) == 1 and cells["energy_windows"].iloc[0] == 0
    out = energy_tables.add_energy_ratios(pd.DataFrame(columns=tables.SPEEDUP_COLUMNS), raw)
    assert "energy_ratio" in out


def study_tables(tmp_path=None):
    raw = pd.DataFrame(
        cell_rows("cpu", 0.1, [20.0, 21.0, 19.0], "rapl")
        + cell_rows("cuda", 0.01, [1.0, 1.1, 0.9], "nvml")
        + cell_rows("cuda", 0.005, [0.5, 0.55, 0.45], "nvml", dtype="bfloat16")
        + [{**r, "model": "vgg16"} for r in unavailable_rows("cpu", 0.2)]
    )
    raw = raw.assign(**{c: None for c in tables.CELL_INFO if c not in raw})
    cells = tables.summarize_cells(raw)
    cells = energy_tables.add_energy(cells, raw, resamples=300)
    speedups = energy_tables.add_energy_ratios(tables.speedup_table(raw, "cpu", "current", resamples=300), raw,
                                               resamples=300)
    return cells, speedups


def test_report_section_shows_items_per_joule_ratios_and_what_is_missing():
    from speedatlas.present.report.energy import energy_section

    cells, speedups = study_tables()
    text = energy_section(cells, speedups, plot="plots/energy.png")
    assert text.startswith("## Energy\n")
    assert "Cells by energy source: nvml 2, rapl 1, unavailable 1." in text
    items = text.split("### Items per joule", 1)[1].split("###", 1)[0]
    # the cpu resnet18 cell: 20 J per step of 8 images -> 0.4 images/J, its interval from 3 windows
    # (digits as its interval supports them: formatting.figures)
    assert re.search(r"\| resnet18 \| cpu \| float32 \| infer \| 8 \| rapl \| 80.0 \| 0\.4\d* \[", items), items
    ratios = text.split("### Energy ratio beside each speed-up", 1)[1].split("###", 1)[0]
    assert "cpu → cuda" in ratios and re.search(r"\| 10(\.0+)?× \[", ratios) and re.search(r"\| 20(\.0+)?× \[", ratios), ratios
    assert "rapl / nvml" in ratios
    missing = text.split("### Cells without energy", 1)[1]
    assert "| cpu | no RAPL package zone | 1 |" in missing
    assert "(plots/energy.png)" in text


def test_report_section_of_tables_made_before_energy():
    from speedatlas.present.report.energy import energy_section

    cells = pd.DataFrame({"status": ["ok"], "model": ["m"]})
    assert "made before speedatlas measured energy" in energy_section(cells, pd.DataFrame())


def test_throughput_vs_power_plot(tmp_path):
    from speedatlas.present.plots.energy import energy_plot

    cells, _ = study_tables()
    energy_plot(cells, str(tmp_path / "energy.png"), str(tmp_path / "energy.svg"))
    assert (tmp_path / "energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "energy.png").stat().st_size > 10_000
    svg = (tmp_path / "energy.svg").read_text()
    assert "dashed: idle power" in svg
    # one panel per model; every point labelled with what tells it apart there (issue 25): the
    # batch size and the dtype, which varies in this study
    assert "bfloat16 · bs 8" in svg and "float32 · bs 8" in svg
    energy_plot(cells.assign(avg_power_w=np.nan), str(tmp_path / "none.png"))  # nothing measured: placeholder
    assert (tmp_path / "none.png").exists()


def test_no_energy_measured_is_one_line_not_a_section():
    """A study where no cell had a counter gets one line (why, per device, and how to turn a
    source on), not a section of sources, empty tables and a placeholder plot (issue 25)."""
    from speedatlas.present.report.energy import energy_section, measured

    raw = pd.DataFrame(unavailable_rows("cpu", 0.1) + [{**r, "model": "vgg16"} for r in unavailable_rows("cpu", 0.2)])
    raw = raw.assign(**{c: None for c in tables.CELL_INFO if c not in raw})
    cells = energy_tables.add_energy(tables.summarize_cells(raw), raw, resamples=100)
    assert not measured(cells)
    text = energy_section(cells, pd.DataFrame(), plot="plots/energy.png")
    assert not text.startswith("## ") and text.count("\n") == 1
    assert text.startswith("**Energy** was not measured: cpu (2 cells): no RAPL package zone.")
    assert "zeus-apple-silicon" in text and "plots/energy.png" not in text
