"""Energy readers and windows with fake counters: RAPL files (wrap-around, permissions), a fake
pynvml module, fake IOReport and powermetrics streams, a fake clock for too-short windows."""

from __future__ import annotations

import plistlib
import types

import pytest

from speedatlas.measure.hardware import energy


class Clock:
    """A clock the test advances; `sleep` advances it too."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make_zone(root, name: str, dirname: str, energy_uj: int, max_uj: int):
    zone = root / dirname
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def set_uj(zone, value: int) -> None:
    (zone / "energy_uj").write_text(f"{value}\n")


def test_rapl_sums_package_and_dram_and_unwraps(tmp_path):
    pkg = make_zone(tmp_path, "package-0", "intel-rapl:0", 900_000, 1_000_000)
    dram = make_zone(tmp_path / "intel-rapl:0", "dram", "intel-rapl:0:2", 10, 1_000_000)
    make_zone(tmp_path / "intel-rapl:0", "core", "intel-rapl:0:0", 5, 1_000_000)  # inside the package
    make_zone(tmp_path, "psys", "intel-rapl:1", 5, 1_000_000)  # overlaps the package: skipped
    reader = energy.RaplReader(str(tmp_path))
    assert sorted(z.name for z in reader.zones) == ["dram", "package-0"]
    assert "dram (1)" in reader.scope and reader.source == "rapl"
    assert reader.read_j() == 0.0
    set_uj(pkg, 950_000)
    set_uj(dram, 20_010)
    assert reader.read_j() == pytest.approx(0.05 + 0.02)
    set_uj(pkg, 50_000)  # wrapped: 950,000 -> 1,000,000 -> 0 -> 50,000 = 100,000 uJ
    assert reader.read_j() == pytest.approx(0.07 + 0.1)


def test_rapl_absent_or_root_only_is_unavailable_with_reason(tmp_path, monkeypatch):
    with pytest.raises(energy.Unavailable, match="no RAPL package zone"):
        energy.RaplReader(str(tmp_path))
    make_zone(tmp_path, "package-0", "intel-rapl:0", 1, 1_000_000)
    real_open = open

    def root_only(path, *args, **kwargs):  # what a non-root reader meets since Linux 5.10
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(energy, "open", root_only, raising=False)
    meter = energy.open_meter("cpu", root=str(tmp_path))
    assert not meter.available
    assert meter.columns(0)["energy_source"] == "unavailable"
    assert "root only" in meter.columns(0)["energy_note"]


def rapl_meter(tmp_path, clock, **settings):
    pkg = make_zone(tmp_path, "package-0", "intel-rapl:0", 0, 10_000_000)
    reader = energy.RaplReader(str(tmp_path))
    meter = energy.open_meter("cpu", settings, reader=reader)
    meter.clock, meter.sleep = clock, clock.sleep
    return meter, pkg


def run_blocks(meter, clock, pkg, blocks, seconds, watts, steps=1, start_uj=0):
    """Simulate timed blocks of `seconds` each at `watts`, as timing.run drives the meter."""
    uj = start_uj
    meter.begin()
    for _ in range(blocks):
        clock.sleep(seconds)
        uj += int(watts * seconds * 1e6)
        set_uj(pkg, uj)
        meter.block(steps)
    while meter.needs_more():
        clock.sleep(seconds)
        uj += int(watts * seconds * 1e6)
        set_uj(pkg, uj)
        meter.block(steps, timed=False)
    meter.end()
    return uj


def test_windows_group_blocks_until_min_window(tmp_path):
    clock = Clock()
    meter, pkg = rapl_meter(tmp_path, clock, min_window_s=1.0, idle_s=0.5)
    set_uj(pkg, 0)

    def idle_sleep(seconds):  # 20 W while idle
        clock.now += seconds
        set_uj(pkg, int(20 * seconds * 1e6))

    meter.sleep = idle_sleep
    meter.idle()
    assert meter.idle_power_w == pytest.approx(20.0)
    run_blocks(meter, clock, pkg, blocks=10, seconds=0.25, watts=50.0, steps=2, start_uj=10_000_000)
    # 0.25 s blocks: windows close at 1 s (4 blocks), 2 s (4 blocks); the 2-block tail (0.5 s)
    # joins the last window rather than becoming a short one
    assert [w.steps for w in meter.windows] == [8, 12]
    assert meter.block_window == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert not meter.short
    row = meter.columns(9)
    assert row["energy_source"] == "rapl" and row["energy_window"] == 1
    assert row["energy_j"] == pytest.approx(50.0 * 0.25 / 2)  # joules per step
    assert row["avg_power_w"] == pytest.approx(50.0)
    assert row["idle_power_w"] == pytest.approx(20.0)
    assert row["energy_window_short"] is False
    assert meter.extra_steps == 0


def test_short_region_is_extended_with_untimed_steps(tmp_path):
    clock = Clock()
    meter, pkg = rapl_meter(tmp_path, clock, min_window_s=1.0, idle_s=0)
    run_blocks(meter, clock, pkg, blocks=3, seconds=0.125, watts=40.0)
    assert len(meter.windows) == 1 and meter.windows[0].seconds == pytest.approx(1.0)
    assert meter.extra_steps == 5  # 3 timed + 5 untimed blocks of 0.125 s fill the 1 s window
    assert meter.block_window == [0, 0, 0]
    row = meter.columns(0)
    assert row["energy_j"] == pytest.approx(5.0)
    assert row["energy_window_short"] is False
    assert "extended by 5 untimed steps" in row["energy_note"]


def test_too_short_window_is_flagged_when_not_extended(tmp_path):
    clock = Clock()
    meter, pkg = rapl_meter(tmp_path, clock, min_window_s=1.0, idle_s=0, extend=False)
    run_blocks(meter, clock, pkg, blocks=3, seconds=0.1, watts=40.0)
    assert [w.steps for w in meter.windows] == [3]
    row = meter.columns(2)
    assert row["energy_window_short"] is True
    assert row["energy_window_s"] == pytest.approx(0.3)
    assert "too short" in row["energy_note"]


def test_counter_that_does_not_move_is_flagged(tmp_path):
    clock = Clock()
    meter, pkg = rapl_meter(tmp_path, clock, min_window_s=1.0, idle_s=0)
    run_blocks(meter, clock, pkg, blocks=12, seconds=0.1, watts=0.0)
    assert meter.short and meter.columns(0)["energy_window_short"] is True


class FakeNVMLError(Exception):
    pass


def fake_pynvml(readings_mj, supported=True):
    """A pynvml stand-in: the energy counter returns successive readings (mJ)."""
    readings = iter(readings_mj)
    clocks = {1: iter([1980, 1755]), 2: iter([2619, 2619])}
    module = types.SimpleNamespace(NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2, calls=[])
    module.nvmlInit = lambda: module.calls.append("init")
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetHandleByIndex = lambda index: ("gpu", index)

    def total_energy(handle):
        if not supported:
            raise FakeNVMLError("Not Supported")
        return next(readings)

    module.nvmlDeviceGetTotalEnergyConsumption = total_energy
    module.nvmlDeviceGetEnforcedPowerLimit = lambda handle: 700_000  # mW
    module.nvmlDeviceGetClockInfo = lambda handle, kind: next(clocks[kind])
    return module


def test_nvml_reader_with_fake_pynvml_reads_joules_limit_and_clocks():
    clock = Clock()
    # probe, idle start/end, begin, then one reading per closed window, end
    nvml = fake_pynvml([0, 1_000_000, 1_100_000, 1_100_000, 1_700_000, 2_300_000])
    reader = energy.NvmlReader(0, nvml)
    assert reader.source == "nvml" and "gpu" in reader.scope
    meter = energy.open_meter("cuda", {"min_window_s": 1.0, "idle_s": 1.0}, reader=reader)
    meter.clock, meter.sleep = clock, clock.sleep
    meter.idle()
    assert meter.idle_power_w == pytest.approx(100.0)
    meter.begin()
    for _ in range(2):
        clock.sleep(1.0)
        meter.block(10)
    meter.end()
    meter.close()
    row = meter.columns(1)
    assert row["energy_j"] == pytest.approx(60.0)  # 600 J over 10 steps
    assert row["avg_power_w"] == pytest.approx(600.0)
    assert row["power_limit_w"] == pytest.approx(700.0)
    assert (row["sm_clock_start_mhz"], row["sm_clock_end_mhz"]) == (1980, 1755)
    assert (row["mem_clock_start_mhz"], row["mem_clock_end_mhz"]) == (2619, 2619)
    assert nvml.calls == ["init", "shutdown"]


def test_nvml_not_supported_becomes_unavailable_with_reason():
    with pytest.raises(energy.Unavailable, match="Not Supported"):
        energy.NvmlReader(0, fake_pynvml([], supported=False))


def test_a_counter_failing_mid_run_turns_the_meter_unavailable_not_the_cell():
    clock = Clock()
    nvml = fake_pynvml([0, 5_000])  # the third reading raises StopIteration
    meter = energy.open_meter("cuda", {"idle_s": 0}, reader=energy.NvmlReader(0, nvml))
    meter.clock, meter.sleep = clock, clock.sleep
    meter.begin()
    clock.sleep(2.0)
    meter.block(1)
    assert not meter.available
    assert meter.columns(0)["energy_source"] == "unavailable"
    assert "failed between blocks" in meter.columns(0)["energy_note"]


def test_disabled_and_unknown_devices_are_unavailable_with_reason():
    assert "off" in energy.open_meter("cuda", {"enabled": False}).columns(0)["energy_note"]
    meter = energy.open_meter("xpu")
    assert meter.columns(0)["energy_source"] == "unavailable"
    assert "xpu" in meter.columns(0)["energy_note"]


def test_ioreport_reader_sums_soc_channels_and_reports_the_split():
    values = iter([(0, 0, 0, 0), (1000, 3000, 0, 1000), (2000, 6000, 0, 2000)])

    class Monitor:
        def get_cumulative_energy(self):
            cpu, gpu, ane, dram = next(values)
            return types.SimpleNamespace(cpu_total_mj=cpu, gpu_mj=gpu, ane_mj=ane, dram_mj=dram)

    reader = energy.IOReportReader(types.SimpleNamespace(AppleEnergyMonitor=Monitor))
    assert reader.scope == "soc: cpu + gpu + ane + dram"
    assert reader.read_j() == pytest.approx(5.0)
    assert reader.read_j() == pytest.approx(10.0)
    assert reader.split() == "cpu 20%, gpu 60%, ane 0%, dram 20%"


def test_powermetrics_stream_integrates_complete_samples_only():
    sample = plistlib.dumps({"elapsed_ns": 100_000_000, "processor": {"combined_power": 12_000.0}})
    stream = sample + b"\0" + sample + b"\0" + sample[:40]  # the third is still being written
    joules, samples = energy.powermetrics_energy_j(stream)
    assert samples == 2 and joules == pytest.approx(2 * 12.0 * 0.1)


def test_this_machine_records_a_source_or_a_reason():
    meter = energy.open_meter("cpu")
    row = meter.columns(0)
    assert row["energy_source"] in energy.SOURCES
    if row["energy_source"] == "unavailable":
        assert row["energy_note"]


def test_ctypes_nvml_shim_calls_the_driver_functions(monkeypatch):
    """Without pynvml the reader calls libnvidia-ml directly: check names, arguments and units
    against a fake library (the real one is exercised on the GPU machine)."""
    calls = []

    def out(value):
        def fn(*args):
            calls.append((fn.name, args))
            args[-1]._obj.value = value  # the byref(...) output argument
            return 0
        return fn

    class FakeLib:
        def __init__(self, name):
            self.nvmlInit_v2 = lambda: calls.append(("init", ())) or 0
            self.nvmlShutdown = lambda: 0
            for name, value in (("nvmlDeviceGetHandleByIndex_v2", 1234), ("nvmlDeviceGetTotalEnergyConsumption",
                                5_000_000), ("nvmlDeviceGetEnforcedPowerLimit", 700_000),
                                ("nvmlDeviceGetClockInfo", 1980)):
                fn = out(value)
                fn.name = name
                setattr(self, name, fn)

    monkeypatch.setattr(energy.ctypes, "CDLL", FakeLib)
    reader = energy.NvmlReader(3, energy._CtypesNvml())
    assert reader.read_j() == pytest.approx(5000.0)
    assert reader.facts() == {"power_limit_w": 700.0, "sm_clock_mhz": 1980, "mem_clock_mhz": 1980}
    assert "ctypes" in reader.note
    index_call = next(args for name, args in calls if name == "nvmlDeviceGetHandleByIndex_v2")
    assert index_call[0].value == 3
    clock_kinds = [args[1].value for name, args in calls if name == "nvmlDeviceGetClockInfo"]
    assert clock_kinds == [1, 2]  # NVML_CLOCK_SM, NVML_CLOCK_MEM


def test_ctypes_nvml_without_a_driver_is_unavailable(monkeypatch):
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(energy.ctypes, "CDLL", missing)
    with pytest.raises(energy.Unavailable, match="no NVIDIA driver library"):
        energy._CtypesNvml()
