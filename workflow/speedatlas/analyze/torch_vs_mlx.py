"""PyTorch or MLX: each MLX cell against the torch cell it is the port of (issue 24).

Pairs, all other keys equal (machine, workload, torch, device, model, dtype, mode, batch):
    mlx          over eager   (eager MLX vs eager torch)
    mlx_compile  over compile (mx.compile vs torch.compile), where the study has both
Speed-up = torch's median time per item / MLX's (above 1: MLX is faster), with the interval of
the speed-up tables. `mlx over eager` is taken from speedups.parquet (the variant axis already
holds it, so the report shows one number for one comparison); `mlx_compile over compile` is
computed here with the same function (speedatlas.analyze.tables.compare_along: the bootstrap, or
the rerun interval of cells run in several processes). Every MLX cell gets a row, also one that
did not run or has no partner: its parity figure, status and error are what a reader checks first.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from speedatlas import cellkey
from speedatlas.analyze import tables

PAIRS = {"mlx": "eager", "mlx_compile": "compile"}
# What each MLX cell records about itself (first row of its file).
MLX_INFO = ("status", "error", "parity_max_rel_err", "parity_tolerance", "mlx_version", "mlx_device",
            "compute_dtype", "torch_version")
PAIR_KEYS = [c for c in cellkey.KEY_COLUMNS if c != "variant"]
COLUMNS = [*PAIR_KEYS, "mlx_variant", "torch_variant", "speedup", "ci_low", "ci_high", "significant",
           "torch_median_s", "mlx_median_s", "n_torch", "n_mlx", *MLX_INFO]
READ_COLUMNS = tuple(dict.fromkeys((*tables.AGGREGATE_COLUMNS, *MLX_INFO)))


def _variant(path: str) -> str | None:
    """The variant partition of a cell file's path."""
    return next((part.split("=", 1)[1] for part in Path(path).parts if part.startswith("variant=")), None)


def wanted_paths(paths: Iterable[str]) -> list[str]:
    """The cell files this table reads: MLX cells and torch.compile cells (their partners);
    eager partners come through speedups.parquet."""
    variants = {*PAIRS, *(v for v in PAIRS.values() if v != "eager")}
    return [p for p in paths if _variant(p) in variants]


def has_mlx_cells(paths: Iterable[str]) -> bool:
    """Does any of these cell files (e.g. an included result set's) hold an MLX cell?"""
    return any(_variant(p) in PAIRS for p in paths)


def build(raw: pd.DataFrame, speedups: pd.DataFrame, confidence: float = 0.95, resamples: int = 2000,
          seed: int = 0) -> pd.DataFrame:
    """One row per MLX cell (`raw`: rows of MLX and torch.compile cells; `speedups`: the study's
    speed-up table)."""
    mlx_rows = raw[raw["variant"].isin(list(PAIRS))]
    if mlx_rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = list(cellkey.KEY_COLUMNS)
    info = mlx_rows.drop_duplicates(keys)[[*keys, *MLX_INFO]].rename(columns={"variant": "mlx_variant"})
    pairs = [_from_speedups(speedups)]
    compiled = raw[raw["variant"].isin(["compile", "mlx_compile"])]
    if not compiled.empty:
        found = tables.compare_along(compiled, "variant", tables.baseline_value("compile"), confidence, resamples, seed)
        pairs.append(found[found["candidate"] == "mlx_compile"])
    pairs = [p for p in pairs if not p.empty]
    ratios = (pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=tables.SPEEDUP_COLUMNS)).rename(
        columns={"candidate": "mlx_variant", "baseline": "torch_variant", "baseline_median_s": "torch_median_s",
                 "candidate_median_s": "mlx_median_s", "n_baseline": "n_torch", "n_candidate": "n_mlx"}
    )
    ratios = ratios[[*PAIR_KEYS, "mlx_variant", "torch_variant", "speedup", "ci_low", "ci_high", "significant",
                     "torch_median_s", "mlx_median_s", "n_torch", "n_mlx"]]
    table = info.merge(ratios, on=[*PAIR_KEYS, "mlx_variant"], how="left")
    table["torch_variant"] = table["torch_variant"].fillna(table["mlx_variant"].map(PAIRS))
    return table.sort_values([*PAIR_KEYS, "mlx_variant"], ignore_index=True)[COLUMNS]


def _from_speedups(speedups: pd.DataFrame) -> pd.DataFrame:
    if speedups.empty or "axis" not in speedups:
        return pd.DataFrame(columns=tables.SPEEDUP_COLUMNS)
    chosen = (speedups["axis"] == "variant") & (speedups["baseline"] == "eager") & (speedups["candidate"] == "mlx")
    return speedups.loc[chosen, tables.SPEEDUP_COLUMNS]


def write(cell_paths: Iterable[str], speedups_path: str, out: str, confidence: float, resamples: int,
          seed: int) -> pd.DataFrame:
    """The torch_vs_mlx rule's one call: read, build, write the Parquet table."""
    raw = tables.read_cells(wanted_paths(cell_paths), READ_COLUMNS)
    table = build(raw, pd.read_parquet(speedups_path), confidence, resamples, seed)
    table.to_parquet(out, index=False)
    return table
