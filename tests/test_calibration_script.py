"""benchmarks/calibration.py on two finished runs of fake cells: the rerun interval holds where
one process's interval does not, and --processes K keeps each cell's first K processes."""

from __future__ import annotations

import importlib.util

import pyarrow.parquet as pq
from conftest import REPO
from test_multiprocess import rows

from speedatlas.measure import cellio


def load():
    spec = importlib.util.spec_from_file_location("calibration", REPO / "benchmarks" / "calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(root, centres):
    folder = root / "results" / "cells" / "cell"
    folder.mkdir(parents=True)
    pq.write_table(cellio.rows_to_table(rows(device="cuda", centres=centres, n=10, host_share=0.95)),
                   folder / "cell.parquet")
    return root / "results"


def test_rerun_interval_holds_and_processes_can_be_cut(tmp_path):
    calibration = load()
    # processes that differ by 20%; the rerun lands at 1.25, beyond every first-run process:
    # the bootstrap alone (means of resampled process medians) cannot reach it, a rerun interval does
    first = write_run(tmp_path / "a", (1.0, 1.2, 1.0))
    second = write_run(tmp_path / "b", (1.25, 1.25, 1.25))
    both = calibration.compare(first, second, 0.9)
    assert both["processes"].tolist() == [3] and both["inside"].tolist() == [True]
    assert both["high"].iloc[0] > 1.25 / 4 > 1.21 / 4
    assert both["kind"].tolist() == ["accelerator, host-bound"]
    # the first process alone: 1.0 s within +-1%, so the rerun's 1.10 is far outside
    one = calibration.compare(first, second, 0.9, processes=1)
    assert one["processes"].tolist() == [1] and one["inside"].tolist() == [False]
    assert one["high"].iloc[0] < 1.02 / 4  # per image, batch 4
