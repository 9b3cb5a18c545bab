"""Thin adapter: cells table -> throughput-vs-batch-size plot."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.plots.throughput import throughput_vs_batch  # noqa: E402

throughput_vs_batch(
    pd.read_parquet(snakemake.input.cells),  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.svg,  # noqa: F821
)
