"""The cell Parquet file: its schema (workflow/schemas/cell.schema.json) and atomic writing.

Runner side: standard library and pyarrow only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "cell.schema.json"
STATUSES = ("ok", "unavailable", "unsupported", "oom", "nonfinite", "timeout", "error")

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


@contextlib.contextmanager
def pandas_hidden():
    """Keep pyarrow from importing pandas while the runner builds its table (0.9 s per cell).

    pyarrow (checked in 26.0) imports pandas the first time pa.array() converts anything that
    is not a numpy array, to ask whether it is a pandas object (pyarrow/array.pxi
    `_is_array_like` -> pandas-shim.pxi `_have_pandas_internal`): every forked cell paid the
    import when it wrote its file, timestamps or not. The runner never passes pandas objects,
    so while pandas is not imported yet, importing it fails fast here and pyarrow records
    pandas as absent (a later `to_pandas()` imports it for real). A process that already has
    pandas is left alone.
    """
    if "pandas" in sys.modules:
        yield
        return
    sys.meta_path.insert(0, _NO_PANDAS)  # (None in sys.modules would not do: Cython's import
    try:  # returns that None instead of raising)
        yield
    finally:
        sys.meta_path.remove(_NO_PANDAS)


class _NoPandasFinder:
    """A meta path finder that refuses pandas."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is hidden while the runner writes its cell", name=name)
        return None


_NO_PANDAS = _NoPandasFinder()


def write_atomic(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write to a temporary file in the same folder, then rename over the target.

    An interrupted job therefore never leaves a file that looks complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cell-", suffix=".parquet.tmp", dir=target.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
        pq.write_table(table, tmp, **WRITE_OPTIONS)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_part(path: str | os.PathLike[str]) -> pa.Table:
    """One process's file of a multi-process cell (written by the runner with the cell schema)."""
    return pq.read_table(path, schema=arrow_schema())


def concat_parts(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables)


def _umask() -> int:
    """The process's umask (read by setting it, as the standard library offers no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
