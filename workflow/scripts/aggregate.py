"""Thin adapter: the aggregate rule's inputs and params -> speedatlas.analyze.aggregate.write_tables."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

from speedatlas.analyze.aggregate import write_tables  # noqa: E402

write_tables(
    snakemake.input.cells,  # noqa: F821
    snakemake.output.cells,  # noqa: F821
    snakemake.output.speedups,  # noqa: F821
    snakemake.output.speedups_csv,  # noqa: F821
    snakemake.output.speedups_md,  # noqa: F821
    included=list(snakemake.input.included),  # noqa: F821
    **dict(snakemake.params.items()),  # noqa: F821
)
