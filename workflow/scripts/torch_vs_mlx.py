"""Thin adapter: MLX and torch.compile cell files + speedups.parquet -> results/tables/torch_vs_mlx.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

from speedatlas.analyze.torch_vs_mlx import write  # noqa: E402

write(
    snakemake.input.cells,  # noqa: F821
    snakemake.input.speedups,  # noqa: F821
    snakemake.output.table,  # noqa: F821
    snakemake.params.confidence,  # noqa: F821
    snakemake.params.resamples,  # noqa: F821
    snakemake.params.seed,  # noqa: F821
)
