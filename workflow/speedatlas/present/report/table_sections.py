"""The rules whose table comes with a report section of its own (dtype support, epochs, the seed
side by side): each builds its table (analysis), then writes it and the section's Markdown."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from speedatlas.analyze import dtype_support_table, epoch_table, seed_side_by_side
from speedatlas.analyze.tables import read_cells
from speedatlas.present.report import dtype_support, epochs, seed


def write_table_and_section(table: pd.DataFrame, parquet: str, markdown: str, md: str) -> None:
    """A table as Parquet and its report section as Markdown, side by side."""
    Path(parquet).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(parquet, index=False)
    Path(md).write_text(markdown)


def write_support_tables(paths: Iterable[str], parquet: str, md: str) -> None:
    """The dtype_support_table rule's one call."""
    table = dtype_support_table.support_table(dtype_support_table.read_support(paths))
    write_table_and_section(table, parquet, dtype_support.support_markdown(table), md)


def write_epoch_tables(cell_paths: list[str], parquet: str, md: str) -> None:
    """The epoch_table rule's one call."""
    table = epoch_table.summarize_epochs(read_cells(cell_paths))
    write_table_and_section(table, parquet, epochs.epochs_markdown(table), md)


def write_side_by_side(
    published: str,
    epochs_table: str,
    cells: str,
    speedups: str,
    table_out: str,
    md_out: str,
    baseline_device: str,
    baseline_torch: str,
    machine: str,
    images: int,
    source: str,
) -> None:
    """The seed_side_by_side rule's one call."""
    frame, notes = seed_side_by_side.load_published(published)
    table = seed_side_by_side.side_by_side(
        frame, pd.read_parquet(epochs_table), pd.read_parquet(cells), pd.read_parquet(speedups),
        baseline_device, baseline_torch, machine, images,
    )
    write_table_and_section(table, table_out, seed.side_by_side_markdown(table, notes, source, baseline_device), md_out)
