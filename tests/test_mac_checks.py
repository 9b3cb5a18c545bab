"""The report's machine-state and mps section on hand-made per-cell tables."""

from __future__ import annotations

import pandas as pd

from speedatlas.present.report import mac_checks


def cells(**overrides) -> pd.DataFrame:
    base = {"machine": ["m1max", "m1max"], "device": ["cpu", "mps"], "model": ["resnet18"] * 2,
            "dtype": ["float32"] * 2, "mode": ["train"] * 2, "batch_size": [8, 8], "status": ["ok", "ok"],
            "compute_dtype": ["float32", "float32"], "cpu_fallback_ops": ["[]", "[]"],
            "cpu_performance_cores": [8, 8], "power_source": ["AC Power"] * 2, "low_power_mode": [False] * 2,
            "thermal_state": ["nominal"] * 2, "mps_over_recommended": [None, False]}
    base.update(overrides)
    return pd.DataFrame(base)


def test_clean_study_has_no_warning_and_says_what_ran():
    text = mac_checks.section(cells())
    assert "Warning" not in text and "fell back" not in text
    assert "2 of 2 ok cell(s)" in text and "mps cells: 2" not in text and "mps cells: 1 (1 ok)" in text


def test_battery_low_power_and_heat_are_warned():
    text = mac_checks.section(cells(power_source=["Battery Power"] * 2, low_power_mode=[True, False],
                                    thermal_state=["nominal", "CPU speed limited to 62%"]))
    assert "**Warning: m1max**: 2 cell(s) ran on battery; 1 cell(s) ran in Low Power Mode; " \
           "1 cell(s) ran under thermal pressure (CPU speed limited to 62%)" in text


def test_fallback_cells_are_named():
    text = mac_checks.section(cells(cpu_fallback_ops=["[]", '["aten::sgn.out"]']))
    assert "| m1max | resnet18 mps float32 train batch 8 | aten::sgn.out |" in text


def test_over_recommended_memory_is_flagged():
    assert "resnet18 mps float32 train batch 8" in mac_checks.section(cells(mps_over_recommended=[None, True]))


def test_old_tables_without_the_columns():
    old = cells().drop(columns=["compute_dtype", "cpu_fallback_ops", "cpu_performance_cores", "power_source",
                                "low_power_mode", "thermal_state", "mps_over_recommended"])
    text = mac_checks.section(old)
    assert "0 of 2 ok cell(s)" in text and "no cell ran on macOS" in text
