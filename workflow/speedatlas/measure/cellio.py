"""The cell Parquet file: its schema (workflow/schemas/cell.schema.json) and atomic writing.

Runner side: standard library and pyarrow only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "cell.schema.json"
STATUSES = ("ok", "unavailable", "unsupported", "oom", "nonfinite", "error")

_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def column_specs(schema_file: str | os.PathLike[str] = SCHEMA_FILE) -> list[dict[str, str]]:
    with open(schema_file) as handle:
        return json.load(handle)["columns"]


def required_columns() -> list[str]:
    """Columns every cell file has; optional ones were added later and read as nulls if absent."""
    return [c["name"] for c in column_specs() if not c.get("optional")]


def arrow_schema(schema_file: str | os.PathLike[str] = SCHEMA_FILE) -> pa.Schema:
    """The cell schema (or another file's, e.g. support.schema.json) as pyarrow types; every
    cell file is written (and read) with it."""
    return pa.schema([pa.field(c["name"], _ARROW_TYPES[c["type"]]) for c in column_specs(schema_file)])


def rows_to_table(rows: list[dict[str, Any]], schema_file: str | os.PathLike[str] = SCHEMA_FILE) -> pa.Table:
    """Build a table with exactly the schema's columns; missing values become nulls."""
    schema = arrow_schema(schema_file)
    unknown = set().union(*(row.keys() for row in rows)) - set(schema.names)
    if unknown:
        raise ValueError(f"columns not in the cell schema: {sorted(unknown)}")
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


# A cell file holds a few dozen rows: compression, dictionaries and column statistics buy
# nothing at that size but cost per column on every read. Without them, reading 1,000 cell
# files takes 0.72 instead of 1.08 CPU-seconds (benchmarks/scale.py reads 10,368).
WRITE_OPTIONS = {"compression": "none", "use_dictionary": False, "write_statistics": False}


def write_atomic(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write to a temporary file in the same folder, then rename over the target.

    An interrupted job therefore never leaves a file that looks complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cell-", suffix=".parquet.tmp", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, **WRITE_OPTIONS)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
