"""Tables from fake raw rows: cell summaries, speed-ups along each axis, Markdown."""

import numpy as np
import pandas as pd
import pytest

from speedatlas.present.report import speedup_tables
from speedatlas.present import formatting
from speedatlas.analyze import tables
from speedatlas.measure import cellio


def raw_cell(device="cpu", batch=4, median=1.0, status="ok", n=10, model="resnet18", mode="train", torch="current", dtype="float32", seed=0):
    base = {
        "machine": "m", "workload": "synthetic", "torch_requested": torch, "device": device, "model": model,
        "dtype": dtype, "mode": mode, "variant": "eager", "batch_size": batch, "status": status,
        "torch_version": "2.9.0", "pipeline_commit": "abc",
    }
    if status != "ok":
        return [{**base, "error": "boom"}]
    rng = np.random.default_rng(seed)
    times = median * rng.uniform(0.98, 1.02, n)
    return [{**base, "repeat": i, "step_time_s": t, "items_per_s": batch / t} for i, t in enumerate(times)]


def frame(*cells):
    rows = [row for cell in cells for row in cell]
    return cellio.rows_to_table(rows).to_pandas()


def test_summary_one_row_per_cell_with_status():
    raw = frame(raw_cell("cpu"), raw_cell("mps", status="unavailable"))
    cells = tables.summarize_cells(raw)
    assert len(cells) == 2
    ok = cells[cells.status == "ok"].iloc[0]
    assert ok.n == 10 and ok.median_s == pytest.approx(1.0, rel=0.03)
    assert ok.items_per_s == pytest.approx(4 / ok.median_s)
    assert cells[cells.status == "unavailable"].iloc[0].n == 0


def test_noise_flag():
    rng = np.random.default_rng(0)
    raw = frame(raw_cell())
    raw.loc[:, "step_time_s"] = rng.uniform(0.5, 1.5, len(raw))
    assert bool(tables.summarize_cells(raw, noise_cv=0.1).iloc[0].noisy)
    assert not bool(tables.summarize_cells(frame(raw_cell()), noise_cv=0.1).iloc[0].noisy)


def test_device_speedup():
    raw = frame(raw_cell("cpu", median=1.0), raw_cell("mps", median=0.2, seed=1))
    table = tables.speedup_table(raw, "cpu", "current")
    device = table[table.axis == "device"]
    assert len(device) == 1
    row = device.iloc[0]
    assert (row.baseline, row.candidate, row.device) == ("cpu", "mps", "mps")
    assert row.speedup == pytest.approx(5.0, rel=0.05)
    assert row.ci_low < row.speedup < row.ci_high and row.significant


def test_failed_cells_take_no_part():
    raw = frame(raw_cell("cpu"), raw_cell("mps", status="oom"))
    assert (tables.speedup_table(raw, "cpu", "current").axis != "device").all()


def test_batch_scaling_is_throughput_ratio():
    raw = frame(raw_cell(batch=1, median=0.1), raw_cell(batch=8, median=0.4, seed=2))
    row = tables.speedup_table(raw, "cpu", "current").query("axis == 'batch_size'").iloc[0]
    assert row.speedup == pytest.approx((0.1 / 1) / (0.4 / 8), rel=0.05)
    assert (row.baseline, row.candidate) == ("1", "8")


def test_torch_version_speedup():
    raw = frame(raw_cell(torch="current", median=1.0), raw_cell(torch="2.5", median=2.0, seed=3))
    row = tables.speedup_table(raw, "cpu", "current").query("axis == 'torch_requested'").iloc[0]
    assert row.speedup == pytest.approx(0.5, rel=0.05)


def test_markdown():
    raw = frame(raw_cell("cpu", median=1.0), raw_cell("mps", median=0.25, seed=1))
    text = speedup_tables.speedups_markdown(tables.speedup_table(raw, "cpu", "current"))
    assert "### Device speed-ups" in text and "mps vs cpu" in text and "4.0" in text
    assert formatting.markdown_table(pd.DataFrame({"a": ["x|y"]})) == "| a |\n|---|\n| x\\|y |\n"


def test_read_cells_checks_schema(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    cellio.write_atomic(cellio.rows_to_table(raw_cell()), good)
    assert len(tables.read_cells([str(good)])) == 10
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"machine": ["m"]}), bad)
    with pytest.raises(tables.SchemaMismatch, match="missing columns"):
        tables.read_cells([str(good), str(bad)])


def test_read_cells_conforms_older_and_newer_files_to_the_schema(tmp_path):
    """A file written before an optional column existed reads with nulls there; a column the
    schema does not know is dropped; a column of the wrong type names its file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    current = tmp_path / "current.parquet"
    cellio.write_atomic(cellio.rows_to_table(raw_cell()), current)
    table = pq.read_table(current)
    optional = [c["name"] for c in cellio.column_specs() if c.get("optional")]
    older = tmp_path / "older.parquet"
    pq.write_table(table.drop_columns(optional).append_column("retired", pa.array(["x"] * len(table))), older)
    raw = tables.read_cells([str(current), str(older)])
    assert raw.equals(tables.read_cells([str(current), str(older)], threads=1))
    assert list(raw.columns) == cellio.arrow_schema().names
    assert len(raw) == 2 * len(table)
    assert raw[optional[0]].iloc[len(table):].isna().all()
    assert (raw["step_time_s"] > 0).all()

    wrong = tmp_path / "wrong.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("batch_size"), "batch_size",
                                    pa.array(["four"] * len(table))), wrong)
    with pytest.raises(tables.SchemaMismatch, match=r"wrong\.parquet: column 'batch_size' is string"):
        tables.read_cells([str(current), str(wrong)])
    assert tables.read_cells([]).empty
