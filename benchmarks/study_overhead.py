"""Where does a study's wall time go, against a plain in-process loop doing the same
measurements? Prints both wall times, their ratio and the pipeline's phases (issue 14, item 5).

    uv run python benchmarks/study_overhead.py --config CONFIG [--target report|cells] [--cores 1]

The pipeline side is the real thing: `snakemake --configfile CONFIG` from scratch in its own
folder, to the study's report (`--target report`, what `uv run snakemake --cores 1` builds:
tables, plots, report) or to its cells table only (`--target cells`). Its phases come from the
cells' own timestamps: start-up (snakemake, DAG, fork server: until the first cell's process
starts), the cells (first cell's start to last cell's end), and the rest (tables, plots, report).

The plain side runs crosscheck.PLAIN_LOOP (its own few dozen lines, none of the runner's
code) for every cell, as many processes of it as the pipeline ran (the precision rule decides
those), one after another in ONE interpreter: torch is imported once, nothing is isolated,
nothing is written. That is the floor a harness could reach, not a fair harness; the pipeline's
wall time minus the loop's is what the study costs beyond its cells' own work.
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


def pipeline(config: Path, directory: Path, cores: int, target: str) -> tuple[float, dict[str, float]]:
    """Wall seconds of the study from scratch, and its phases from the cells' timestamps."""
    import pandas as pd

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    study = yaml.safe_load(config.read_text()).get("study") or config.stem
    targets = [f"results/studies/{study}/tables/cells.parquet"] if target == "cells" else []
    began = time.time()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(directory),
         "--cores", str(cores), *targets, "--configfile", str(config.resolve())],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wall = time.time() - began
    files = sorted((directory / "results" / "cells").rglob("cell.parquet"))
    cells = pd.concat([pd.read_parquet(f, columns=["started_at", "finished_at", "setup_s", "status", "process"])
                       .assign(path=str(f.relative_to(directory))) for f in files])
    ok = cells[cells["status"] == "ok"]
    # a cell's process started setup_s before its timed region (setup_s counts from the supervisor's start)
    first_start = (ok["started_at"].map(lambda t: t.timestamp()) - ok["setup_s"]).min()
    last_end = ok["finished_at"].map(lambda t: t.timestamp()).max()
    phases = {"start-up (snakemake, DAG, fork server)": first_start - began,
              "cells (first start to last end)": last_end - first_start,
              "after the cells (tables, plots, report)": began + wall - last_end,
              "cells": float(len(files))}
    processes = ok.groupby("path")["process"].nunique().to_dict()
    return wall, phases, processes


DRIVER = r"""
import contextlib, io, json, sys
code = compile(sys.argv[1], "plain_loop", "exec")
for spec in json.loads(sys.argv[2]):
    for _ in range(spec.get("processes", 1)):
        sys.argv = ["plain_loop", json.dumps(spec)]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            exec(code, {"__name__": "plain_loop"})  # a cell that fails here just ends
"""


def plain(config: Path, processes: dict[str, int]) -> float:
    """Wall seconds of the plain loop over every cell that ran ok, as many processes of it as the
    pipeline ran, all in one fresh interpreter: its start and the torch imports count, once."""
    study = prepare(yaml.safe_load(config.read_text()), torchvision_models(cache_dir()))
    specs = [{**json.loads(c.spec()), "processes": processes[c.path]} for c in matrix.expand(study)
             if c.workload == "synthetic" and c.variant != "compile" and c.path in processes]
    began = time.time()
    subprocess.run([sys.executable, "-c", DRIVER, PLAIN_LOOP, json.dumps(specs)], check=True)
    return time.time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--dir", default="/tmp/speedatlas-overhead", type=Path)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--target", choices=["report", "cells"], default="report",
                        help="build the study's report (the default target) or only its cells table")
    args = parser.parse_args()
    wall, phases, processes = pipeline(args.config, args.dir, args.cores, args.target)
    loop = plain(args.config, processes)
    print(f"pipeline: {wall:.1f} s for {int(phases.pop('cells'))} cells, {sum(processes.values())} processes "
          f"(to the {args.target})")
    for name, seconds in phases.items():
        print(f"  {name:40s} {seconds:6.1f} s")
    print(f"plain in-process loop (torch imported once, nothing isolated or written): {loop:.1f} s")
    print(f"ratio pipeline / plain loop: {wall / loop:.2f}; beyond the cells' own work: {wall - loop:.1f} s")


if __name__ == "__main__":
    main()
