"""Thin adapter: cells table -> coefficient of variation per cell against the noise threshold."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.plots.noise import noise_plot  # noqa: E402

noise_plot(
    pd.read_parquet(snakemake.input.cells),  # noqa: F821
    snakemake.params.noise_cv,  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.svg,  # noqa: F821
)
