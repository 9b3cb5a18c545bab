"""Thin adapter: mnist_epoch cell files -> results/tables/epochs.{parquet,md}."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

from speedatlas.present.report.table_sections import write_epoch_tables  # noqa: E402

write_epoch_tables(snakemake.input.cells, snakemake.output.epochs, snakemake.output.md)  # noqa: F821
