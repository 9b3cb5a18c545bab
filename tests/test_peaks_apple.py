"""Peaks on Macs: the CPU never gets the GPU's peak; GPU peaks scale with the recorded cores."""

from __future__ import annotations

import pandas as pd
import pytest

from speedatlas.analyze import peaks

TABLE = peaks.load_peaks()


def test_the_chip_name_of_a_cpu_cell_gets_no_gpu_peak():
    assert peaks.lookup(TABLE, "Apple M1 Max", "float32", "cpu") == (None, None)
    assert peaks.lookup(TABLE, "Apple M1 Max", "float32") == (None, None)  # no "GPU" in the name
    # even a name that says GPU: a `kind: gpu` entry never serves a cpu cell
    assert peaks.lookup(TABLE, "Apple M1 Max GPU (32 cores)", "float32", "cpu") == (None, None)


@pytest.mark.parametrize(
    ("name", "tflops", "source"),
    [
        ("Apple M1 Max GPU (32 cores)", 10.4, "Apple M1 Max GPU (32 cores)"),
        ("Apple M1 Max GPU (24 cores)", 7.8, "Apple M1 Max GPU (32 cores), scaled to 24 cores"),
        ("Apple M1 Pro GPU (14 cores)", 5.2 * 14 / 16, "Apple M1 Pro GPU (16 cores), scaled to 14 cores"),
        ("Apple M3 Ultra GPU (80 cores)", 32.8, "Apple M3 Ultra GPU (80 cores)"),  # not the base M3
        ("Apple M3 Ultra GPU (60 cores)", 32.8 * 60 / 80, "Apple M3 Ultra GPU (80 cores), scaled to 60 cores"),
        ("Apple M3 GPU (8 cores)", 4.1 * 8 / 10, "Apple M3 GPU (10 cores), scaled to 8 cores"),
        ("Apple M2 Max GPU", 13.6, "Apple M2 Max GPU (38 cores)"),  # core count unknown: the listed figure
    ],
)
def test_apple_gpu_peaks_scale_with_cores(name, tflops, source):
    found, peak = peaks.lookup(TABLE, name, "float32", "mps")
    assert found == source and peak == pytest.approx(tflops * 1e12)


def test_add_efficiency_uses_the_cells_device():
    cells = pd.DataFrame({"device": ["cpu", "mps"], "device_name": ["Apple M1 Max", "Apple M1 Max GPU (24 cores)"],
                          "dtype": ["float32", "float32"], "flops_per_step": [1e9, 7.8e9], "median_s": [0.1, 0.01]})
    out = peaks.add_efficiency(cells, TABLE)
    assert pd.isna(out.pct_of_peak.iloc[0]) and out.pct_of_peak.iloc[1] == pytest.approx(10.0)
