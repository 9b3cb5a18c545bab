"""Where does a study's wall time go, against a plain in-process loop doing the same
measurements? Prints both wall times, their ratio and the pipeline's phases (issue 14, item 5).

    uv run python benchmarks/study_overhead.py --config CONFIG [--dir /tmp/speedatlas-overhead] [--cores 1]

The pipeline side is the real thing: `snakemake ... results/tables/cells.parquet` from scratch
in its own folder (every cell one job and one process, fork server included). Its phases come
from the cells' own timestamps: start-up (snakemake, DAG, fork server: until the first cell's
process starts), the cells (first cell's start to last cell's end), and the rest (tables).

The plain side runs crosscheck.PLAIN_LOOP (its own few dozen lines, none of the runner's
code) for every cell, one after another in ONE interpreter: torch is imported once, nothing is
isolated, nothing is written. That is the floor a harness could reach, not a fair harness.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "benchmarks"))

from crosscheck import PLAIN_LOOP  # noqa: E402
from speedatlas.plan import matrix  # noqa: E402
from speedatlas.plan.config import cache_dir, prepare, torchvision_models  # noqa: E402


def pipeline(config: Path, directory: Path, cores: int) -> tuple[float, dict[str, float]]:
    """Wall seconds of the study from scratch, and its phases from the cells' timestamps."""
    import pandas as pd

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    began = time.time()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(directory),
         "--cores", str(cores), "results/tables/cells.parquet", "--configfile", str(config.resolve())],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wall = time.time() - began
    files = sorted((directory / "results" / "cells").rglob("cell.parquet"))
    cells = pd.concat([pd.read_parquet(f, columns=["started_at", "finished_at", "setup_s", "status"]) for f in files])
    ok = cells[cells["status"] == "ok"]
    # a cell's process started setup_s before its timed region (setup_s counts from the supervisor's start)
    first_start = (ok["started_at"].map(lambda t: t.timestamp()) - ok["setup_s"]).min()
    last_end = ok["finished_at"].map(lambda t: t.timestamp()).max()
    phases = {"start-up (snakemake, DAG, fork server)": first_start - began,
              "cells (first start to last end)": last_end - first_start,
              "after the cells (tables)": began + wall - last_end,
              "cells": float(len(files))}
    return wall, phases


DRIVER = r"""
import contextlib, io, json, sys
code = compile(sys.argv[1], "plain_loop", "exec")
for spec in json.loads(sys.argv[2]):
    for _ in range(spec.get("processes", 1)):
        sys.argv = ["plain_loop", json.dumps(spec)]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            exec(code, {"__name__": "plain_loop"})  # a cell that fails here just ends
"""


def plain(config: Path) -> float:
    """Wall seconds of the plain loop over every cell (and every process of it), all in one
    fresh interpreter: its start and the torch imports count, once."""
    study = prepare(yaml.safe_load(config.read_text()), torchvision_models(cache_dir()))
    specs = [json.loads(c.spec()) for c in matrix.expand(study) if c.workload == "synthetic" and c.variant != "compile"]
    began = time.time()
    subprocess.run([sys.executable, "-c", DRIVER, PLAIN_LOOP, json.dumps(specs)], check=True)
    return time.time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--dir", default="/tmp/speedatlas-overhead", type=Path)
    parser.add_argument("--cores", type=int, default=1)
    args = parser.parse_args()
    wall, phases = pipeline(args.config, args.dir, args.cores)
    loop = plain(args.config)
    print(f"pipeline: {wall:.1f} s for {int(phases.pop('cells'))} cells")
    for name, seconds in phases.items():
        print(f"  {name:40s} {seconds:6.1f} s")
    print(f"plain in-process loop (torch imported once, nothing isolated or written): {loop:.1f} s")
    print(f"ratio pipeline / plain loop: {wall / loop:.2f}")


if __name__ == "__main__":
    main()
