"""Thin adapter: torch_vs_mlx table + plot -> the report's "PyTorch or MLX" section."""

import os
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.report.torch_vs_mlx import section  # noqa: E402

out = Path(snakemake.output.md)  # noqa: F821
# the section is placed into the study's report.md (the folder above tables/): the plot's path is
# relative to that folder
plot = os.path.relpath(snakemake.input.png, out.parent.parent)  # noqa: F821
out.write_text(section(pd.read_parquet(snakemake.input.table), plot, snakemake.params.confidence))  # noqa: F821
