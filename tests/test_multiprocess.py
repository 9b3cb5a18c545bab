"""Cells measured in several processes, and host-bound cells, through the tables (issue 14)."""

import numpy as np
import pandas as pd
import pytest

from speedatlas.present.report import speedup_tables
from speedatlas.present.report import intervals
from speedatlas import cellkey
from speedatlas.analyze import multiprocess, stats, tables
from speedatlas.measure import cellio
from speedatlas.present.report import assemble as report

KEYS = list(cellkey.KEY_COLUMNS)


def rows(device="cuda", batch=4, centres=(1.0,), n=8, host_share=None, seed=0):
    """One cell: `n` samples around each of the processes' `centres` (process column only if >1)."""
    base = {"machine": "m", "workload": "synthetic", "torch_requested": "current", "device": device,
            "model": "resnet18", "dtype": "float32", "mode": "train", "variant": "eager", "batch_size": batch,
            "status": "ok", "torch_version": "2.9.0", "host_share": host_share}
    rng = np.random.default_rng(seed)
    out = []
    for process, centre in enumerate(centres):
        extra = {"process": process} if len(centres) > 1 else {}
        out += [{**base, **extra, "repeat": i, "step_time_s": t}
                for i, t in enumerate(centre * rng.uniform(0.99, 1.01, n))]
    return out


def frame(*cells):
    return cellio.rows_to_table([r for cell in cells for r in cell]).to_pandas()


def test_multiprocess_cell_value_is_the_geometric_mean_of_process_medians():
    raw = frame(rows(centres=(1.0, 1.4, 1.2)), rows(device="cpu", centres=(2.0,)))
    cells = tables.summarize_cells(raw).set_index("device")
    assert cells.loc["cuda", "processes"] == 3 and cells.loc["cpu", "processes"] == 1
    medians = [np.median(raw[(raw.device == "cuda") & (raw.process == p)].step_time_s) for p in range(3)]
    expected = float(np.exp(np.mean(np.log(medians))))
    assert cells.loc["cuda", "median_s"] == pytest.approx(expected)
    assert cells.loc["cpu", "median_s"] == pytest.approx(np.median(raw[raw.device == "cpu"].step_time_s))
    assert cells.loc["cuda", "items_per_s"] == pytest.approx(4 / expected)


def test_speedup_interval_of_a_multiprocess_cell_spans_its_processes():
    """Two processes at 1.0 and 1.5 s: a single-process reading would give an interval of a few
    percent; the rerun interval reaches both processes' speeds."""
    raw = frame(rows(device="cpu", centres=(2.0,), n=20), rows(device="cuda", centres=(1.0, 1.5), n=20))
    speedups = tables.speedup_table(raw, "cpu", "current")
    row = speedups[speedups.axis == "device"].iloc[0]
    assert row.speedup == pytest.approx(2.0 / np.sqrt(1.5), rel=0.01)
    assert row.ci_low < 2.0 / 1.45 and row.ci_high > 2.0 / 1.05


def test_single_process_intervals_are_unchanged_by_the_new_path():
    """Cells of one process keep today's exact bootstrap, bit for bit."""
    raw = frame(rows(device="cpu", centres=(2.0,)), rows(device="cuda", centres=(1.0,)))
    samples = tables.Samples(raw, 500, seed=3)
    rng = np.random.default_rng(3)
    ordered = sorted(samples.keys)  # bootstrap order: by size, then cell order
    block = np.stack([samples.values[k] for k in ordered])
    expected = stats.bootstrap_medians(block, 500, rng)
    for key, replicate in zip(ordered, expected):
        assert np.array_equal(samples.boot[key], replicate)


def test_old_files_without_the_new_columns_aggregate(tmp_path):
    old = [{k: v for k, v in r.items() if k not in ("process", "host_share")} for r in rows(centres=(1.0,))]
    path = tmp_path / "cell.parquet"
    table = cellio.rows_to_table(old).drop_columns(["process", "host_share", "device_step_time_s"])
    cellio.write_atomic(table, path)
    raw = tables.read_cells([str(path)], tables.AGGREGATE_COLUMNS)
    cells = tables.summarize_cells(raw)
    assert cells.iloc[0].processes == 1 and pd.isna(cells.iloc[0].host_share) and not cells.iloc[0].host_bound


def test_host_bound_flag_threshold_and_marks_in_the_tables():
    raw = frame(rows(device="cpu", centres=(2.0,)), rows(device="cuda", centres=(1.0,), host_share=0.95),
                rows(device="cpu", batch=64, centres=(9.0,)), rows(device="cuda", batch=64, centres=(1.0,), host_share=0.3))
    cells = tables.summarize_cells(raw, host_bound_share=0.9)
    bound = cells.set_index(["device", "batch_size"])["host_bound"]
    assert bound[("cuda", 4)] and not bound[("cuda", 64)] and not bound[("cpu", 4)]
    assert not tables.summarize_cells(raw, host_bound_share=0.99).host_bound.any()
    speedups = multiprocess.mark_host_bound(tables.speedup_table(raw, "cpu", "current"), cells, cellkey.KEY_COLUMNS)
    device = speedups[speedups.axis == "device"].set_index("batch_size")["host_bound"]
    assert device[4] and not device[64]
    # batch axis: batch 64 over batch 4 on cuda involves the host-bound batch-4 baseline
    batch = speedups[(speedups.axis == "batch_size") & (speedups.device == "cuda")].iloc[0]
    assert batch.host_bound
    markdown = speedup_tables.speedups_markdown(speedups)
    assert markdown.count("†") == 2  # cuda vs cpu at batch 4; cuda batch 64 vs 4 (cpu: no mark)
    table = speedup_tables.pivot(speedups[speedups.axis == "device"], "device")
    assert table["batch 4"].iloc[0].endswith(" †") and not table["batch 64"].iloc[0].endswith("†")
    note = intervals.host_bound_note(cells, 0.9)
    assert note.startswith("1 of 2 accelerator cells are host-bound")


def test_report_says_when_intervals_come_from_one_process():
    raw = frame(rows(device="cpu", centres=(2.0,)), rows(device="cuda", centres=(1.0, 1.1)))
    cells = tables.summarize_cells(raw)
    notes = report.interval_notes(cells, {"timing": {"processes": 1}})
    assert any(n.startswith("1 of 2 ok cells were measured in a single process") for n in notes)
    notes = report.interval_notes(cells[cells.device == "cuda"], {"timing": {"processes": 2}})
    assert notes and "2 fresh processes" in notes[0] and not any("single process" in n for n in notes)


@pytest.mark.slow
def test_end_to_end_study_with_two_processes(tmp_path):
    """A CPU study with timing.processes: 2: each cell's file holds both processes' samples,
    forked separately (own set-up), and the tables and report say so."""
    import pyarrow.parquet as pq

    from conftest import snakemake, write_config

    config = {
        "machine": "mp", "devices": ["cpu"], "baseline_device": "cpu",
        "models": [{"name": "mobilenet_v3_small", "modes": ["infer"]}], "batch_sizes": [1, 2],
        "input_size": 32, "num_classes": 4, "cpu_threads": 1, "dtype_support": {"enabled": False},
        "timing": {"warmup": 1, "repeats": 3, "steps_per_repeat": 1, "processes": 2},
    }
    snakemake(tmp_path, write_config(tmp_path, config), "--cores", "2")
    files = sorted((tmp_path / "results" / "cells").rglob("cell.parquet"))
    assert len(files) == 2
    assert not list((tmp_path / "results" / "cells").rglob(".*process*"))  # parts removed
    raw = pq.read_table(files[0]).to_pandas()
    assert raw["process"].tolist() == [0, 0, 0, 1, 1, 1] and (raw["status"] == "ok").all()
    assert raw.groupby("process")["started_at"].first().is_monotonic_increasing
    assert raw["host_share"].isna().all()  # cpu
    cells = pd.read_parquet(tmp_path / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert (cells["processes"] == 2).all()
    text = (tmp_path / "results" / "studies" / "config" / "report.md").read_text()
    assert "Each cell ran in a fixed 2 fresh processes" in text and "single process" not in text


def test_writing_a_cell_imports_no_pandas(tmp_path):
    """pyarrow imports pandas (~1 s) on its first pa.array() of a list; a runner or supervisor
    writing a cell must not pay that, and the file must be the same (tz-aware timestamps)."""
    import subprocess
    import sys

    from conftest import REPO

    code = f"""
import datetime as dt, sys
from speedatlas.measure import cellio
row = {{"status": "ok", "repeat": 0, "step_time_s": 0.5, "started_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}}
with cellio.pandas_hidden():
    cellio.write_atomic(cellio.rows_to_table([row]), {str(tmp_path / "cell.parquet")!r})
    cellio.concat_parts([cellio.read_part({str(tmp_path / "cell.parquet")!r})])
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(REPO / "workflow"), "PATH": ""})
    assert done.stdout.strip() == "False"
    table = cellio.read_part(tmp_path / "cell.parquet")
    assert str(table.schema.field("started_at").type) == "timestamp[us, tz=UTC]"
    assert table.to_pandas()["started_at"].iloc[0] == pd.Timestamp("2026-01-01", tz="UTC")
