"""The measured dtype support matrix as a table.

One probe job (speedatlas.measure.dtype_probe) per device × torch version, covering every dtype,
writes results/support/…/support.parquet (the jobs: speedatlas.plan.support_jobs); this module
turns their rows into results/tables/dtype_support.parquet (its report section:
speedatlas.present.report.dtype_support). Orchestration side (pandas).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow.dataset as ds

from speedatlas.measure import cellio
from speedatlas.measure.dtype_probe import SCHEMA_FILE
from speedatlas.plan.support_jobs import DTYPES


def read_support(paths: Iterable[str]) -> pd.DataFrame:
    """All probe rows, with the schema of workflow/schemas/support.schema.json."""
    paths = list(paths)
    schema = cellio.arrow_schema(SCHEMA_FILE)
    if not paths:
        return schema.empty_table().to_pandas()
    return ds.dataset(paths, format="parquet", schema=schema).to_table().to_pandas()


SUPPORT_KEYS = ["machine", "torch_requested", "torch_version", "device", "device_name", "dtype", "mode", "method"]


def support_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per device × dtype × mode × method (× torch, machine), sorted for reading."""
    columns = [*SUPPORT_KEYS, "outcome", "drift", "tolerance", "value", "reference", "value_initial",
               "reference_initial", "output_dtype", "error",
               "error_kind", "note", "model", "input_size", "batch_size", "train_steps", "metric"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    order = {"cpu": 0, "mps": 1}
    frame = rows[columns].copy()
    frame["_device"] = frame["device"].map(lambda d: (order.get(d, 2), d))
    frame["_dtype"] = frame["dtype"].map(DTYPES.index)
    frame["_method"] = frame["method"].map({"native": 0, "autocast": 1, "cast": 2})
    frame = frame.sort_values(["machine", "torch_requested", "_device", "_dtype", "mode", "_method"])
    return frame.drop(columns=["_device", "_dtype", "_method"]).reset_index(drop=True)
