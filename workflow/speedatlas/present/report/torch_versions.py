"""The report's section on torch versions: which builds ran, in which environments, and what to
do about a version whose environment could not be built (empty for a study of one version)."""

from __future__ import annotations

import pandas as pd

from speedatlas.analyze.version_axis import AXIS, versions_table
from speedatlas.present.formatting import markdown_table


NOT_BUILT = "environment could not be built"  # torchenv's failure message, the cells' error


RETRY_HINT = (
    "A version whose environment could not be built keeps that result until you retry: "
    "`uv run snakemake --cores 1 --forcerun .speedatlas/envs/torch-<version>/env.json` "
    "(or delete that folder), after fixing `torch_versions` or `envs/torch-<version>.txt`.\n"
)


def report_section(cells: pd.DataFrame) -> list[str]:
    """The report's 'Torch versions' section; nothing for a study of one torch version."""
    if cells.empty or cells[AXIS].nunique() < 2:
        return []
    return [
        "## Torch versions\n",
        "Each version other than `current` ran in its own environment built by uv "
        "(`.speedatlas/envs/torch-<version>/`); tables compare the requested versions and name the "
        "actual builds, grouped here by the version that actually ran.\n",
        markdown_table(versions_table(cells)),
    ] + ([RETRY_HINT] if cells["error"].fillna("").str.contains(NOT_BUILT).any() else [])
