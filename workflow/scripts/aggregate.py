"""Thin adapter: the aggregate rule's inputs and params -> speedatlas.analyze.aggregate.write_tables."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

from speedatlas.analyze.aggregate import write_tables  # noqa: E402
from speedatlas.plan.comparisons import MergeError  # noqa: E402
from speedatlas.measure.process.notice import notify  # noqa: E402
from speedatlas.plan.quarantine import BadCells  # noqa: E402

try:
    write_tables(
        snakemake.input.cells,  # noqa: F821
        snakemake.output.cells,  # noqa: F821
        snakemake.output.speedups,  # noqa: F821
        snakemake.output.speedups_csv,  # noqa: F821
        included=list(snakemake.input.included),  # noqa: F821
        **dict(snakemake.params.items()),  # noqa: F821
    )
except (BadCells, MergeError) as error:  # the reason belongs on the terminal, not only in the log
    for line in str(error).splitlines():
        notify(f"speedatlas: aggregate: {line}")
    raise
