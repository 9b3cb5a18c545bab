"""Cell files measured for settings other than this study's, found before any job starts.

A cell's folder names its key; the settings outside the key (input size, timing, a factory's
arguments) are in its spec, whose hash the cell file records (`spec_sha256`). Snakemake measures
such a cell again (its spec is a param of the job), but the start-up line counted files only and
said "all measured" for a study about to re-measure every cell another study had measured with
other settings. Reading one column of one row group costs about a millisecond a file, so large
studies are not checked (said so on the line) rather than made slow to start.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow.parquet as pq

LIMIT = 2000  # files read at start, at most


def measured_for_other_settings(wanted: Mapping[str, str], limit: int = LIMIT) -> list[str] | None:
    """Paths in `wanted` ({existing cell file: sha256 of the spec this study gives it}) whose file
    records another spec. None when there are more than `limit` files (not checked). A file without
    the column, or that cannot be read (aggregate names those), counts as not stale."""
    if len(wanted) > limit:
        return None
    stale = []
    for path, sha256 in wanted.items():
        try:
            column = pq.ParquetFile(path).read_row_group(0, columns=["spec_sha256"]).column(0)
        except (OSError, KeyError, ValueError, IndexError):
            continue
        if len(column) and column[0].as_py() not in (None, sha256):
            stale.append(path)
    return stale
