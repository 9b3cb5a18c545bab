"""How does speedatlas behave on a study of ten thousand cells? Prints the figures.

Creates, in a scratch directory, a config of 24 models x 8 batch sizes x 3 dtypes x 2 modes x
3 devices x 3 variants = 10,368 cells, and synthetic cell files for all of them (no torch runs:
the files follow the cell schema with 20 plausible samples each). Then measures:

  dry-run       `snakemake -n` with no cell present (parse + DAG of 10k bench jobs)
  first run     `snakemake --cores 2` with every cell present: only aggregate, plots, report run
  aggregation   speedatlas.analyze.aggregate.write_tables over the 10k files, in-process
  no-op rerun   the same command again: nothing to do

each with wall time and peak memory (max RSS of the process tree).

    uv run python benchmarks/scale.py [--dir /tmp/speedatlas-scale] [--keep]

Targets on a 2-core machine: dry-run <= 30 s, no-op rerun <= 30 s, aggregation <= 10 s,
memory <= 2 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from speedatlas.measure import cellio  # noqa: E402
from speedatlas.plan import matrix  # noqa: E402
from speedatlas.plan.config import cache_dir, prepare, torchvision_models  # noqa: E402

MODELS = [
    "alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1",
    "efficientnet_b2", "densenet121", "densenet169", "squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x1_0",
    "mnasnet1_0", "regnet_y_400mf", "regnet_x_400mf", "convnext_tiny", "googlenet",
]
CONFIG = {
    "machine": "scale",
    "devices": ["cpu", "cuda", "mps"],
    "models": MODELS,
    "batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128],
    "dtypes": ["float32", "float16", "bfloat16"],
    "modes": ["train", "infer"],
    "variants": ["eager", "channels_last", "compile"],
    "input_size": 224,
    "timing": {"warmup": 5, "repeats": 20, "steps_per_repeat": 1},
    "launcher": "process",
    "max_cells": 20000,  # 10,368 cells: above the default, on purpose
}
DEVICE_SPEED = {"cpu": 1.0, "cuda": 0.05, "mps": 0.2}


def write_cells(directory: Path, cells: list[matrix.Cell]) -> float:
    """Synthetic but schema-true cell files; returns seconds taken."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.timezone.utc)
    for cell in cells:
        median = 0.01 * cell.batch * DEVICE_SPEED[cell.device] * (1 + MODELS.index(cell.model) / 10)
        samples = median * rng.lognormal(0, 0.03, cell.repeats)
        base = {
            "machine": cell.machine, "workload": cell.workload, "torch_requested": cell.torch,
            "device": cell.device, "model": cell.model, "dtype": cell.dtype, "mode": cell.mode,
            "variant": cell.variant, "batch_size": cell.batch, "input_size": cell.input_size,
            "num_classes": cell.num_classes, "warmup_steps": cell.warmup, "repeats": cell.repeats,
            "steps_per_repeat": cell.steps_per_repeat, "seed": cell.seed, "protocol": matrix.PROTOCOL_VERSION,
            "status": "ok", "torch_version": "2.15.0", "torchvision_version": "0.30.0", "torch_build": "cpu",
            "device_name": "synthetic", "cpu_model": "synthetic", "threads": 2, "os": "Linux", "python": "3.11",
            "host": "scale", "pipeline_commit": "synthetic", "mps_fallback": False,
            "cv": float(samples.std(ddof=1) / samples.mean()), "started_at": now, "finished_at": now,
            "flops_per_step": 1e9 * cell.batch, "setup_s": 1.0, "peak_memory_bytes": 1 << 28,
        }
        rows = [{**base, "repeat": i, "step_time_s": float(s), "items_per_s": cell.batch / float(s)}
                for i, s in enumerate(samples)]
        path = directory / cell.path
        cellio.write_atomic(cellio.rows_to_table(rows), path)
    return time.perf_counter() - start


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GB) of the child tree, output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall, max(peak_kb, before) / 1024 / 1024, result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/speedatlas-scale")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    directory = Path(args.dir)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    configfile = directory / "scale.yaml"
    configfile.write_text(yaml.safe_dump(CONFIG))
    cells = matrix.expand(prepare(CONFIG, torchvision_models(cache_dir())))
    print(f"cells: {len(cells)}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (figures need a quiet machine)")

    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", str(configfile)]
    wall, rss, _ = timed([*snakemake, "-n", "--cores", "2", "--quiet", "all"], directory)
    print(f"dry-run, no cell present:     {wall:7.1f} s   peak RSS {rss:.2f} GB   (target <= 30 s)")

    print(f"writing synthetic cells:      {write_cells(directory, cells):7.1f} s")

    from speedatlas.analyze import tables as tables_module
    from speedatlas.analyze.aggregate import write_tables

    paths = [str(directory / c.path) for c in cells]
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    raw = tables_module.read_cells(paths, tables_module.AGGREGATE_COLUMNS)
    read_s = time.perf_counter() - start
    summarize_s = time.perf_counter()
    tables_module.summarize_cells(raw)
    summarize_s = time.perf_counter() - summarize_s
    speedups_s = time.perf_counter()
    tables_module.speedup_table(raw, "cpu", "current")
    speedups_s = time.perf_counter() - speedups_s
    del raw
    print(f"  read {read_s:.1f} s, summarize {summarize_s:.1f} s, speed-ups {speedups_s:.1f} s")
    start = time.perf_counter()

    tables = directory / "inproc"
    write_tables(paths, str(tables / "cells.parquet"),
                 str(tables / "speedups.parquet"), str(tables / "speedups.csv"), str(tables / "speedups.md"),
                 "cpu", "current", 0.95, 2000, 0.1, 0)
    agg = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"aggregation (in-process):     {agg:7.1f} s   peak RSS {peak / 1024 / 1024:.2f} GB "
          f"(before: {peak_before / 1024 / 1024:.2f} GB)   (target <= 10 s, <= 2 GB)")

    wall, rss, _ = timed([*snakemake, "--cores", "2", "--quiet", "all"], directory)
    print(f"first run (tables+plots+report): {wall:4.1f} s   peak RSS {rss:.2f} GB")
    wall, rss, out = timed([*snakemake, "--cores", "2"], directory)
    assert "Nothing to be done" in out, out[-2000:]
    print(f"no-op rerun:                  {wall:7.1f} s   peak RSS {rss:.2f} GB   (target <= 30 s)")
    wall, rss, _ = timed([*snakemake, "-n", "--cores", "2", "--quiet", "all"], directory)
    print(f"dry-run, all cells present:   {wall:7.1f} s   peak RSS {rss:.2f} GB")
    if not args.keep:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
