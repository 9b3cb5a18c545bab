"""Thin adapter: cells table -> throughput-by-torch-version plot."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.plots.torch_versions import throughput_by_torch_version  # noqa: E402

throughput_by_torch_version(
    pd.read_parquet(snakemake.input.cells),  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.svg,  # noqa: F821
)
