"""Thin adapter: torch_vs_mlx table -> the PyTorch or MLX plot."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.plots.torch_vs_mlx import torch_vs_mlx_plot  # noqa: E402

torch_vs_mlx_plot(
    pd.read_parquet(snakemake.input.table),  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.svg,  # noqa: F821
)
