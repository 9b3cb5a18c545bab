"""Thin adapter: the study's tables -> its four plots (throughput, speed-up heatmap, noise, energy)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.plots.energy import energy_plot  # noqa: E402
from speedatlas.present.plots.heatmap import speedup_heatmap  # noqa: E402
from speedatlas.present.plots.noise import noise_plot  # noqa: E402
from speedatlas.present.plots.throughput import throughput_vs_batch  # noqa: E402

out = snakemake.output  # noqa: F821
cells = pd.read_parquet(snakemake.input.cells)  # noqa: F821
throughput_vs_batch(cells, out.throughput_png, out.throughput_svg)
speedup_heatmap(pd.read_parquet(snakemake.input.speedups), out.speedup_heatmap_png, out.speedup_heatmap_svg,  # noqa: F821
                confidence=snakemake.params.confidence)  # noqa: F821
noise_plot(cells, snakemake.params.noise_cv, out.noise_png, out.noise_svg)  # noqa: F821
energy_plot(cells, out.energy_png, out.energy_svg)
