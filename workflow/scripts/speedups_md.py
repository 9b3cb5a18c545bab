"""Thin adapter: results/tables/speedups.parquet -> results/tables/speedups.md (for people)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.report.speedup_tables import speedups_markdown  # noqa: E402

Path(snakemake.output.md).write_text(speedups_markdown(pd.read_parquet(snakemake.input.speedups)))  # noqa: F821
