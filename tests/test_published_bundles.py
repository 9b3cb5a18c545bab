"""The committed published/ bundles, as a user's `include_results` reads them: every cell file
matches its manifest's sha256, reads as a result set, and every `ok` cell has a time; an MLX
bundle's cells carry parity inside their tolerance and its committed table lists every pair."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from speedatlas.analyze import resultsets
from speedatlas.plan import comparisons

REPO = Path(__file__).resolve().parent.parent
BUNDLES = sorted(p.name for p in (REPO / "published").iterdir() if (p / "manifest.json").is_file())


def test_every_documented_bundle_is_there():
    assert {"h100", "h100-variants", "h100-energy", "h100-transformers", "h100-mlx"} <= set(BUNDLES)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_bundle_verifies_and_reads(bundle):
    result_set = comparisons.locate(str(REPO / "published" / bundle))
    comparisons.verify_manifest(result_set)
    raw = resultsets.read_result_set(result_set)
    cells = raw.drop_duplicates(["model", "device", "dtype", "mode", "variant", "batch_size"])
    assert len(cells) == len(result_set.files) > 0
    ok = raw[raw["status"] == "ok"]
    assert len(ok) and (ok["step_time_s"] > 0).all()
    if (raw["variant"].isin(["mlx", "mlx_compile"])).any():
        mlx = raw[raw["variant"].isin(["mlx", "mlx_compile"]) & (raw["status"] == "ok")]
        assert (mlx["parity_max_rel_err"] <= mlx["parity_tolerance"]).all()
        table = pd.read_parquet(REPO / "published" / bundle / "tables" / "torch_vs_mlx.parquet")
        assert len(table) == mlx.drop_duplicates(["model", "dtype", "mode", "batch_size", "variant"]).shape[0]
        assert (table["ci_low"] <= table["speedup"]).all() and (table["speedup"] <= table["ci_high"]).all()
