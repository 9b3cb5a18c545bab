"""Thin adapter: published CSV + our tables -> results/tables/seed_side_by_side.{parquet,md}."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

from speedatlas.present.report.table_sections import write_side_by_side  # noqa: E402

write_side_by_side(
    snakemake.input.published[0],  # noqa: F821
    snakemake.input.epochs,  # noqa: F821
    snakemake.input.cells,  # noqa: F821
    snakemake.input.speedups,  # noqa: F821
    snakemake.output.table,  # noqa: F821
    snakemake.output.md,  # noqa: F821
    **dict(snakemake.params.items()),  # noqa: F821
)
