"""Thin adapter: tables + plots -> results/report.md, and the same as one HTML page for
Snakemake's HTML report (plots embedded; links to files beside it shown as text)."""

import json
import os
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by snakemake

import pandas as pd  # noqa: E402

from speedatlas.present.report.assemble import render  # noqa: E402
from speedatlas.present.report.html_page import to_html  # noqa: E402

out = Path(snakemake.output.report)  # noqa: F821
study = json.loads(snakemake.params.study)  # noqa: F821
plots = {  # name -> path relative to the report (names: speedatlas.present.report.sections.PLOT_TITLES)
    name: os.path.relpath(snakemake.input[f"{name}_png"], out.parent)  # noqa: F821
    for name in ("speedup_heatmap", "throughput", "noise", "energy")
}
if "torch_versions_png" in snakemake.input.keys():  # noqa: F821 - only with several torch versions
    plots["torch_versions"] = os.path.relpath(snakemake.input.torch_versions_png, out.parent)  # noqa: F821
text = render(
    pd.read_parquet(snakemake.input.cells),  # noqa: F821
    pd.read_parquet(snakemake.input.speedups),  # noqa: F821
    study,
    plots,
    confidence=study["confidence"],
    resamples=study["bootstrap_resamples"],
    extra_sections=[Path(path).read_text() for path in snakemake.input.sections],  # noqa: F821
    shipped=json.loads(snakemake.params.shipped),  # noqa: F821
)
out.write_text(text)
Path(snakemake.output.html).write_text(to_html(text, base=out.parent, files=False))  # noqa: F821
