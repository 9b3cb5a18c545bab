"""Thin adapter: report, plots, tables, cells and configs -> results/publish/<name>/."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

from speedatlas.present.publish import publish  # noqa: E402

publish(
    snakemake.output.bundle,  # noqa: F821
    snakemake.params.name,  # noqa: F821
    snakemake.input.report,  # noqa: F821
    list(snakemake.input.plots),  # noqa: F821
    list(snakemake.input.tables),  # noqa: F821
    [*snakemake.input.cells, *snakemake.input.included],  # noqa: F821
    list(snakemake.input.configs),  # noqa: F821
    json.loads(snakemake.params.study),  # noqa: F821
    json.loads(snakemake.params.factories),  # noqa: F821
    json.loads(snakemake.params.factory_strings),  # noqa: F821
)
