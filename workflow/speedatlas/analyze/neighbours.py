"""Which cells were timed while another cell was timed on the same machine (concurrency: device).

Every cell records its timed region (started_at .. finished_at). Two regions of one machine that
intersect mean the cells ran side by side, on different GPUs (the slot locks allow nothing else).
Whether that changed their numbers is what benchmarks/interference.py measures on a machine; until
a machine's ratios meet the 2% target, the report flags these cells (present/report/sections.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def neighbours_busy(cells: pd.DataFrame) -> pd.Series:
    """Per cell (index of `cells`): how many other cells of its machine were timed at some moment
    of its own timed region (0 for every cell of a machine that timed one cell at a time; null
    for a cell without a timed region).

    Counted per machine with two sorted searches (no loop over pairs): the regions overlapping
    [s, e) are those starting before e, less those ending at or before s, less the cell itself.
    """
    out = pd.Series(pd.NA, index=cells.index, dtype="Int64")
    timed = cells[cells["started_at"].notna() & cells["finished_at"].notna()]
    for _, group in timed.groupby("machine", sort=False):
        starts = _ns(group["started_at"])
        ends = _ns(group["finished_at"])
        starting_before_end = np.searchsorted(np.sort(starts), ends, side="left")
        ended_before_start = np.searchsorted(np.sort(ends), starts, side="right")
        out.loc[group.index] = np.maximum(starting_before_end - ended_before_start - 1, 0)
    return out


def _ns(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)
