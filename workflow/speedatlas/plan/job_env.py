"""The environment every job of the workflow inherits from the snakemake process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from speedatlas.measure.hardware.envinfo import pipeline_commit


def export_job_environment(repo: Path) -> None:
    """Make `python -m speedatlas.…` work in every job, whatever the working directory.

    - PYTHONPATH gains the repo's workflow/ folder (the speedatlas package);
    - PATH starts with the folder of the interpreter running snakemake, so `python` in a shell
      rule is that interpreter (torch version "current") even when its venv is not activated;
    - SPEEDATLAS_COMMIT carries the pipeline's git commit, computed once per run.
    """
    package_root = str(repo / "workflow")
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != package_root]
    bin_dir = str(Path(sys.executable).parent)
    os.environ.update(
        {
            "PYTHONPATH": os.pathsep.join([package_root, *paths]),
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        }
    )
    os.environ.setdefault("SPEEDATLAS_COMMIT", pipeline_commit(repo))
