"""Thin adapter: cells table -> throughput vs power per device."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.plots.energy import energy_plot  # noqa: E402

energy_plot(
    pd.read_parquet(snakemake.input.cells),  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.svg,  # noqa: F821
)
