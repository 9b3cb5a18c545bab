"""The per-device interface, the mps one against a fake torch.mps / torch.backends.mps."""

from __future__ import annotations

import types

import pytest
import torch

from speedatlas.measure.hardware import darwin, devices


class FakeMps:
    """torch.mps as torch/mps/__init__.py defines it (driver/current/recommended memory)."""

    def __init__(self, driver=3 << 30, current=1 << 30, recommended=2 << 30):
        self.calls = []
        self.values = {"driver_allocated_memory": driver, "current_allocated_memory": current,
                       "recommended_max_memory": recommended}

    def synchronize(self):
        self.calls.append("synchronize")

    def empty_cache(self):
        self.calls.append("empty_cache")

    def __getattr__(self, name):
        if name in self.values:
            return lambda: self.values[name]
        raise AttributeError(name)


class FakeBackend:
    """torch.backends.mps: is_built, is_available, is_macos_or_newer, get_name, get_core_count."""

    def __init__(self, built=True, available=True, macos=(15, 0), name="Apple M1 Max", cores=24):
        self.built, self.available, self.macos, self._name, self.cores = built, available, macos, name, cores

    def is_built(self):
        return self.built

    def is_available(self):
        return self.available

    def is_macos_or_newer(self, major, minor):
        return self.macos >= (major, minor)

    def get_name(self):
        return self._name

    def get_core_count(self):
        return self.cores


def fake_torch(version="2.6.0", mps=None, backend=None):
    return types.SimpleNamespace(__version__=version, mps=mps or FakeMps(),
                                 backends=types.SimpleNamespace(mps=backend or FakeBackend()))


def test_one_class_per_kind():
    assert isinstance(devices.get("cpu"), devices.CpuDevice)
    assert isinstance(devices.get("cuda:1"), devices.CudaDevice)
    assert isinstance(devices.get("mps"), devices.MpsDevice)
    assert "unknown device" in devices.get("tpu").unavailable_reason()


def test_mps_availability_says_what_is_needed():
    assert devices.get("mps", fake_torch()).unavailable_reason() is None
    not_built = devices.get("mps", fake_torch(backend=FakeBackend(built=False))).unavailable_reason()
    assert "no MPS support" in not_built and "macOS 14" in not_built
    absent = devices.get("mps", fake_torch(backend=FakeBackend(available=False))).unavailable_reason()
    assert "Apple Silicon" in absent and "macOS 14" in absent


def test_mps_synchronize_and_release_go_to_torch_mps():
    fake = fake_torch()
    dev = devices.get("mps", fake)
    dev.synchronize()
    dev.release_memory()
    assert fake.mps.calls == ["synchronize", "empty_cache"]


def test_mps_memory_has_its_own_columns_never_peak_memory_bytes():
    dev = devices.get("mps", fake_torch())
    columns = dev.memory_probe().columns()
    assert columns["peak_memory_bytes"] is None
    assert columns["mps_driver_allocated_bytes"] == 3 << 30
    assert columns["mps_current_allocated_bytes"] == 1 << 30
    assert columns["mps_recommended_max_bytes"] == 2 << 30
    assert columns["mps_over_recommended"] is True


def test_mps_memory_on_a_torch_without_recommended_max_memory():
    mps = FakeMps()
    del mps.values["recommended_max_memory"]  # torch < 2.5
    columns = devices.get("mps", fake_torch(version="2.3.1", mps=mps)).memory_probe().columns()
    assert columns["mps_recommended_max_bytes"] is None and columns["mps_over_recommended"] is None


def test_mps_and_cpu_names_are_distinct():
    dev = devices.get("mps", fake_torch())
    assert dev.name("Apple M1 Max") == "Apple M1 Max GPU (24 cores)"
    assert devices.get("cpu").name("Apple M1 Max") == "Apple M1 Max"


def test_mps_name_without_get_core_count_asks_the_ioregistry(monkeypatch):
    backend = FakeBackend()
    backend.get_core_count = None
    monkeypatch.setattr(darwin, "gpu_core_count", lambda run=None: 32)
    assert devices.get("mps", fake_torch(backend=backend)).name("Apple M1 Max") == "Apple M1 Max GPU (32 cores)"


@pytest.mark.parametrize(
    ("version", "macos", "dtype", "problem"),
    [
        ("2.4.1", (15, 0), "float16", True),  # no mps autocast at all
        ("2.5.1", (15, 0), "bfloat16", True),  # 2.5 accepts only float16
        ("2.5.1", (15, 0), "float16", False),
        ("2.6.0", (13, 5), "bfloat16", True),  # 2.6+: bfloat16 needs macOS 14
        ("2.6.0", (14, 0), "bfloat16", False),
        ("2.8.0", (13, 5), "float16", False),
        ("2.8.0", (13, 5), "float32", False),
    ],
)
def test_mps_autocast_support_follows_autocast_mode_py(version, macos, dtype, problem):
    dev = devices.get("mps", fake_torch(version=version, backend=FakeBackend(macos=macos)))
    assert (dev.autocast_problem(dtype) is not None) is problem


def test_memory_probe_kept_for_string_callers_on_cpu():
    probe = devices.MemoryProbe("cpu")
    torch.ones(1 << 20)
    assert probe.peak_bytes() is not None and probe.peak_bytes() >= 0


def test_darwin_thread_policy_is_the_performance_cores(monkeypatch):
    monkeypatch.setattr(devices.sys, "platform", "darwin")
    monkeypatch.setattr(darwin, "cpu_cores", lambda run=None: {"cpu_performance_cores": 8})
    assert devices.default_threads() == 8
    monkeypatch.setattr(darwin, "cpu_cores", lambda run=None: {"cpu_performance_cores": None})
    assert devices.default_threads() >= 1  # unknown: every core this process may use
