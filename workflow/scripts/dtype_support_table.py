"""Thin adapter: dtype support probe files -> results/tables/dtype_support.{parquet,md}."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

from speedatlas.present.report.table_sections import write_support_tables  # noqa: E402

write_support_tables(snakemake.input.support, snakemake.output.table, snakemake.output.md)  # noqa: F821
