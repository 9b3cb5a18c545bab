"""Thin adapter: speed-up table -> model × batch-size heatmaps per device/machine pair and mode."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.plots.heatmap import speedup_heatmap  # noqa: E402

speedup_heatmap(
    pd.read_parquet(snakemake.input.speedups),  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.svg,  # noqa: F821
    confidence=snakemake.params.confidence,  # noqa: F821
)
