"""macOS probes: parsers on real recorded outputs, collect() through a fake command runner."""

from __future__ import annotations

import pytest
from macos_fixtures import recorded

from speedatlas.measure.hardware import darwin


@pytest.mark.parametrize(
    ("fixture", "performance", "efficiency", "levels", "memsize"),
    [
        ("sysctl_hw_machdep_m1pro_monterey.txt", 6, 2, "level0: 6, level1: 2", 17179869184),  # macOS 12: no names
        ("sysctl_hw_machdep_m2_monterey.txt", 4, 4, "level0: 4, level1: 4", 17179869184),
        ("sysctl_hw_machdep_m3max_sequoia.txt", 10, 4, "Performance: 10, Efficiency: 4", 38654705664),
        ("sysctl_hw_machdep_m4max_sequoia.txt", 12, 4, "Performance: 12, Efficiency: 4", 68719476736),
        ("sysctl_hw_machdep_m5_tahoe.txt", 4, 6, "Super: 4, Efficiency: 6", 25769803776),
        # M5 Max: Super + Performance, no Efficiency level: the fastest level is what torch uses
        ("sysctl_perflevel_m5max.txt", 6, 12, "Super: 6, Performance: 12", None),
    ],
)
def test_core_counts_from_real_sysctl_outputs(fixture, performance, efficiency, levels, memsize):
    text = recorded(fixture)
    columns = darwin.collect(run=lambda argv: text if argv == ["/usr/sbin/sysctl", "hw"] else None,
                             platform="darwin", environ={})
    assert columns["cpu_performance_cores"] == performance
    assert columns["cpu_efficiency_cores"] == efficiency
    assert columns["cpu_perf_levels"] == levels
    assert columns["hw_memsize"] == memsize


def test_big_sur_without_perflevels_gives_nulls():
    columns = darwin.core_columns(darwin.parse_sysctl(recorded("sysctl_machdep_cpu_m1_bigsur.txt")))
    assert columns == {"cpu_performance_cores": None, "cpu_efficiency_cores": None, "cpu_perf_levels": None}


@pytest.mark.parametrize(
    ("fixture", "source", "percent"),
    [
        ("pmset_batt_battery_m1_mba.txt", "Battery Power", 100),
        ("pmset_batt_ac_charged_m1_mba.txt", "AC Power", 100),
        ("pmset_batt_ac_not_charging_m1.txt", "AC Power", 80),
        ("pmset_batt_battery_lowbattery_m1.txt", "Battery Power", 16),
    ],
)
def test_power_source(fixture, source, percent):
    parsed = darwin.parse_pmset_batt(recorded(fixture))
    assert parsed["power_source"] == source and parsed["battery_percent"] == percent


@pytest.mark.parametrize(
    ("fixture", "low_power", "mode"),
    [
        ("pmset_g_lowpower_on_m3pro.txt", True, None),
        ("pmset_g_grep_lowpowermode_on_m3pro.txt", True, None),
        ("pmset_g_grep_lowpowermode_off_m3pro.txt", False, None),
        ("pmset_g_custom_lowpower_on_m1.txt", True, None),
        ("pmset_g_powermode0_m3max.txt", False, "automatic"),  # the newer key, no lowpowermode
    ],
)
def test_low_power_mode(fixture, low_power, mode):
    assert darwin.parse_pmset_lowpower(recorded(fixture)) == {"low_power_mode": low_power, "power_mode": mode}


def test_thermal_state_nominal_on_a_real_apple_silicon_output():
    assert darwin.parse_pmset_therm(recorded("pmset_therm_m1pro.txt")) == {
        "thermal_state": "nominal", "cpu_speed_limit": None}


def test_thermal_speed_limit_is_pressure():
    # The documented Intel-era layout (no Apple Silicon recording of it was found; README).
    parsed = darwin.parse_pmset_therm("CPU_Scheduler_Limit \t= 100\nCPU_Available_CPUs \t= 8\nCPU_Speed_Limit \t= 62\n")
    assert parsed == {"thermal_state": "CPU speed limited to 62%", "cpu_speed_limit": 62}
    assert darwin.pressure(parsed) == ["thermal pressure (CPU speed limited to 62%)"]


@pytest.mark.parametrize("fixture", ["ioreg_agxaccelerator_m1.txt", "ioreg_l_grep_gpu_core_count_m1.txt"])
def test_gpu_core_count(fixture):
    text = recorded(fixture)
    assert darwin.gpu_core_count(run=lambda argv: text if argv[0] == "/usr/sbin/ioreg" else None) == 8


def test_collect_on_a_laptop_in_low_power_mode_on_battery():
    outputs = {
        ("/usr/sbin/sysctl", "hw"): recorded("sysctl_hw_machdep_m3max_sequoia.txt"),
        ("/usr/bin/pmset", "-g", "batt"): recorded("pmset_batt_battery_lowbattery_m1.txt"),
        ("/usr/bin/pmset", "-g"): recorded("pmset_g_lowpower_on_m3pro.txt"),
        ("/usr/bin/pmset", "-g", "therm"): recorded("pmset_therm_m1pro.txt"),
    }
    calls = []

    def run(argv):
        calls.append(argv[0])
        return outputs.get(tuple(argv))

    columns = darwin.collect(run=run, platform="darwin",
                             environ={"PYTORCH_MPS_HIGH_WATERMARK_RATIO": "0.0", "HOME": "/x"})
    assert set(columns) == set(darwin.STATE_COLUMNS)
    assert all(path.startswith("/usr/") for path in calls)  # absolute paths only
    assert columns["power_source"] == "Battery Power" and columns["low_power_mode"] is True
    assert columns["thermal_state"] == "nominal" and columns["cpu_performance_cores"] == 10
    assert columns["pytorch_mps_env"] == '{"PYTORCH_MPS_HIGH_WATERMARK_RATIO": "0.0"}'
    assert darwin.pressure(columns) == ["on battery", "Low Power Mode on"]


def test_off_macos_everything_is_null_and_nothing_runs():
    def run(argv):
        raise AssertionError("no command may run off macOS")

    columns = darwin.collect(run=run, platform="linux", environ={})
    assert all(value is None for value in columns.values())


def test_missing_commands_give_nulls_not_errors():
    columns = darwin.collect(run=lambda argv: None, platform="darwin", environ={})
    assert all(value is None for value in columns.values())
