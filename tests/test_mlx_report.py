"""The "PyTorch or MLX" table, section and plot from cell files we control exactly (issue 24)."""

from __future__ import annotations

import fakesets
import pandas as pd
import pytest

from speedatlas.analyze import tables, torch_vs_mlx
from speedatlas.present.plots.torch_vs_mlx import torch_vs_mlx_plot
from speedatlas.present.report.torch_vs_mlx import section

MLX_COLUMNS = {"parity_max_rel_err": 2e-6, "parity_tolerance": 1e-4, "mlx_version": "0.32.4",
               "mlx_device": "gpu:0 (metal, Apple M1 Max)", "compute_dtype": "float32"}


def cell(root, model, variant, seconds, status="ok", **extra):
    rows = fakesets.cell_rows("m1max", "mps", model, "train", 8, seconds, "Apple M1 Max", status=status)
    rows = [{**row, "variant": variant, **extra} for row in rows]
    return str(fakesets.write_cell(root, rows))


@pytest.fixture
def study(tmp_path):
    paths = [
        cell(tmp_path, "resnet18", "eager", 0.2),
        cell(tmp_path, "resnet18", "mlx", 0.1, **MLX_COLUMNS),
        cell(tmp_path, "resnet18", "compile", 0.15),
        cell(tmp_path, "resnet18", "mlx_compile", 0.05, **MLX_COLUMNS),
        cell(tmp_path, "resnet50", "eager", 0.4),
        cell(tmp_path, "resnet50", "mlx", 0.1, status="error",
             **{**MLX_COLUMNS, "parity_max_rel_err": 0.93,
                "error": "ParityError: MLX port differs from torch: parity_max_rel_err 0.93 > tolerance 0.0001"}),
    ]
    raw = tables.read_cells(paths, tables.AGGREGATE_COLUMNS)
    speedups = tables.speedup_table(raw, "mps", "current", resamples=200)
    speedups_path = tmp_path / "speedups.parquet"
    speedups.to_parquet(speedups_path)
    table = torch_vs_mlx.write(paths, str(speedups_path), str(tmp_path / "torch_vs_mlx.parquet"), 0.95, 200, 0)
    return table, speedups


def test_each_mlx_cell_is_compared_with_its_torch_cell(study):
    table, speedups = study
    rows = {(r.model, r.mlx_variant): r for r in table.itertuples()}
    assert set(rows) == {("resnet18", "mlx"), ("resnet18", "mlx_compile"), ("resnet50", "mlx")}
    eager = rows[("resnet18", "mlx")]
    assert eager.torch_variant == "eager" and eager.speedup == pytest.approx(2.0)
    same = speedups[(speedups["axis"] == "variant") & (speedups["candidate"] == "mlx")].iloc[0]
    assert (eager.ci_low, eager.ci_high) == (same["ci_low"], same["ci_high"])  # one comparison, one number
    compiled = rows[("resnet18", "mlx_compile")]
    assert compiled.torch_variant == "compile" and compiled.speedup == pytest.approx(3.0)
    assert compiled.ci_low < 3.0 < compiled.ci_high and compiled.significant
    assert compiled.torch_median_s == pytest.approx(0.15) and compiled.mlx_median_s == pytest.approx(0.05)
    failed = rows[("resnet50", "mlx")]
    assert failed.status == "error" and pd.isna(failed.speedup) and failed.parity_max_rel_err == pytest.approx(0.93)


def test_the_section_says_what_is_compared_and_shows_every_mlx_cell(study):
    table, _ = study
    text = section(table, "plots/torch_vs_mlx.png")
    assert text.startswith("## PyTorch or MLX\n")
    from speedatlas.present.formatting import format_ratio

    ratios = [format_ratio(r.speedup, r.ci_low, r.ci_high) for r in table.itertuples() if r.status == "ok"]
    for fragment in ("weights copied in", "autocast", "channels-last", "TF32",
                     *ratios, "mx.compile vs torch.compile", "MLX vs torch eager", "2e-06 (0.0001)",
                     "0.93 (0.0001)", "MLX (no ok torch eager cell)", "MLX 0.32.4 on gpu:0 (metal, Apple M1 Max)",
                     "![PyTorch or MLX", "(plots/torch_vs_mlx.png)", "1 MLX cell(s) did not run ok"):
        assert fragment in text, fragment


def test_the_plot_is_drawn_and_says_so_when_nothing_pairs(study, tmp_path):
    table, _ = study
    torch_vs_mlx_plot(table, str(tmp_path / "a.png"), str(tmp_path / "a.svg"))
    assert "mx.compile vs torch.compile" in (tmp_path / "a.svg").read_text()
    torch_vs_mlx_plot(table[table["speedup"].isna()], str(tmp_path / "b.png"), str(tmp_path / "b.svg"))
    assert "No MLX cell has a torch cell" in (tmp_path / "b.svg").read_text()


def test_only_mlx_and_compile_cells_are_read():
    paths = [f"results/cells/machine=a/workload=synthetic/torch=current/device=cpu/model=m/dtype=float32/"
             f"mode=train/variant={v}/batch=2/cell.parquet" for v in ("eager", "compile", "mlx", "mlx_compile",
                                                                       "channels_last")]
    assert [p.split("variant=")[1].split("/")[0] for p in torch_vs_mlx.wanted_paths(paths)] == [
        "compile", "mlx", "mlx_compile"]


def test_an_included_set_with_mlx_cells_is_recognised_by_its_paths():
    ours = "results/cells/machine=a/workload=synthetic/torch=current/device=cpu/model=m/dtype=float32/mode=train"
    assert torch_vs_mlx.has_mlx_cells([f"{ours}/variant=eager/batch=2/cell.parquet",
                                       "/imports/m1max/cells/machine=m/mode=infer/variant=mlx_compile/batch=8/cell.parquet"])
    assert not torch_vs_mlx.has_mlx_cells([f"{ours}/variant=compile/batch=2/cell.parquet"])
