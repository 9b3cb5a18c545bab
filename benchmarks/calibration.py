"""Do the intervals hold on a rerun? Prints the share of cells whose second median falls
inside the first run's interval, split by kind of cell (issue 14).

Runs a study (or a slice of one: any config) twice, each time from scratch in its own folder,
so every cell of the second run comes from new processes; or compares two finished runs.

    uv run python benchmarks/calibration.py --config CONFIG --dir /tmp/calibration [--cores 2]
    uv run python benchmarks/calibration.py --first RESULTS_A --second RESULTS_B [--host-bound-share 0.9]

For every ok cell of the first run: the 95% interval the tables give it (per image): for a
cell of several processes, where a rerun should land (Student's t on the processes' spread,
the pilot's under the precision rule: speedatlas.analyze.stats.rerun_draws); for a cell of one process, the
single-level bootstrap of its median, which is not a prediction interval and covers a rerun at
most about 83% of the time even when exact. Then whether the second run's median lies inside.
Kinds: host-bound accelerator cells (host_share >= the threshold), other accelerator cells,
cpu cells. Then how the precision rule sized the first run's cells, and the device speed-ups'
interval widths (high / low) by kind, with the share of the second run's speed-ups inside.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from speedatlas import cellkey  # noqa: E402
from speedatlas.analyze import tables  # noqa: E402


def run_study(config: str, directory: Path, cores: int) -> float:
    """Run the study's cells and tables from scratch in `directory`; return the wall seconds."""
    from speedatlas.plan.config import default_study_name

    directory.mkdir(parents=True, exist_ok=True)
    target = f"results/studies/{default_study_name([config])}/tables/speedups.parquet"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(directory),
         "--cores", str(cores), target, "--configfile", str(Path(config).resolve())],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def cell_files(results: Path) -> list[str]:
    return sorted(str(p) for p in (results / "cells").rglob("cell.parquet"))


def read(results: Path, processes: int | None) -> pd.DataFrame:
    """The cells' rows; with `processes`, only those of each cell's first `processes` processes
    (what a study with that many would have measured: one pair of runs at P = 6 also tells
    the coverage at P = 2..5)."""
    raw = tables.read_cells(cell_files(results), tables.AGGREGATE_COLUMNS)
    if processes is not None and "process" in raw:
        raw = raw[raw["process"].fillna(0) < processes]
    return raw


def intervals(raw: pd.DataFrame, confidence: float, resamples: int, seed: int) -> pd.DataFrame:
    """Per ok cell: the median per image and its interval (tables.Samples: for cells of
    several processes, where a rerun may land)."""
    samples = tables.Samples(raw, resamples, seed)
    tail = (1 - confidence) / 2 * 100
    rows = []
    for key in samples.keys:
        low, high = np.percentile(samples.boot[key], [tail, 100 - tail])
        rows.append({**dict(zip(cellkey.KEY_COLUMNS, key)), "median": samples.medians[key], "low": low, "high": high})
    return pd.DataFrame(rows)


def kinds(raw: pd.DataFrame, threshold: float) -> pd.DataFrame:
    cells = tables.summarize_cells(raw, host_bound_share=threshold)
    cells = cells[cells["status"] == "ok"]
    kind = np.where(cells["device"] == "cpu", "cpu",
                    np.where(cells["host_bound"], "accelerator, host-bound", "accelerator, not host-bound"))
    return cells[list(cellkey.KEY_COLUMNS)].assign(kind=kind, processes=cells["processes"].to_numpy(),
                                                host_share=cells["host_share"].to_numpy())


def compare(
    first: Path, second: Path, threshold: float, confidence: float = 0.95, resamples: int = 2000,
    processes: int | None = None,
) -> pd.DataFrame:
    return compare_rows(read(first, processes), read(second, processes), threshold, confidence, resamples)


def compare_rows(
    first: pd.DataFrame, second: pd.DataFrame, threshold: float, confidence: float = 0.95, resamples: int = 2000
) -> pd.DataFrame:
    """Each ok cell of the first run's rows, its interval, and whether the second run's median lies inside."""
    a = intervals(first, confidence, resamples, seed=0).merge(kinds(first, threshold), on=list(cellkey.KEY_COLUMNS))
    b = intervals(second, confidence, resamples, seed=1)[[*cellkey.KEY_COLUMNS, "median"]]
    both = a.merge(b, on=list(cellkey.KEY_COLUMNS), suffixes=("", "_second"))
    both["ratio"] = both["median_second"] / both["median"]
    both["inside"] = (both["median_second"] >= both["low"]) & (both["median_second"] <= both["high"])
    return both


def speedup_widths(first: pd.DataFrame, second: pd.DataFrame, threshold: float, confidence: float = 0.95,
                   resamples: int = 2000) -> pd.DataFrame:
    """Each device speed-up of the first run (its baseline: the cpu): its interval's width
    (high / low), whether either cell is host-bound, and whether the second run's speed-up lies
    inside (both sides' uncertainty, issue 23)."""
    from speedatlas.analyze import multiprocess

    def table(raw, seed):
        cells = tables.summarize_cells(raw, host_bound_share=threshold)
        speedups = tables.speedup_table(raw, "cpu", "current", confidence, resamples, seed)
        speedups = multiprocess.mark_host_bound(speedups, cells, cellkey.KEY_COLUMNS)
        return speedups[speedups["axis"] == "device"]

    a, b = table(first, 0), table(second, 1)
    keys = [*cellkey.KEY_COLUMNS, "baseline"]
    both = a.merge(b[[*keys, "speedup"]], on=keys, suffixes=("", "_second"))
    both["width"] = both["ci_high"] / both["ci_low"]
    both["inside"] = (both["speedup_second"] >= both["ci_low"]) & (both["speedup_second"] <= both["ci_high"])
    both["kind"] = np.where(both["host_bound"], "host-bound", "other")
    return both


def print_widths(widths: pd.DataFrame) -> None:
    print("\ndevice speed-ups (cuda or mps over cpu): interval width high / low, and reruns inside:")
    for kind, group in widths.groupby("kind"):
        print(f"  {kind:12s} {len(group):3d} speed-ups: width median {group['width'].median():.2f}, max "
              f"{group['width'].max():.2f}, {int((group['width'] <= 1.5).sum())} at or below 1.5; second run inside "
              f"{group['inside'].mean():.1%} ({int(group['inside'].sum())} of {len(group)})")


def print_precision(raw: pd.DataFrame) -> None:
    """How the precision rule sized the cells of a run: processes, and the precision reached."""
    samples = tables.Samples(raw, 2000, 0)
    cells = tables.add_intervals(tables.summarize_cells(raw), samples, 0.95)
    ok = cells[cells["status"] == "ok"]
    if "precision_target" not in ok or ok["precision_target"].isna().all():
        return
    met = ok["precision_met"].fillna(True).astype(bool)
    print(f"\nprecision rule: {len(ok)} ok cells, processes {int(ok['processes'].min())}-{int(ok['processes'].max())} "
          f"(median {ok['processes'].median():g}); {int(met.sum())} met the target, {int((~met).sum())} short "
          f"(precision reached: median {ok['precision'].median():.1%}, max {ok['precision'].max():.1%})")


def print_report(both: pd.DataFrame, confidence: float) -> None:
    view = both.assign(
        cell=both["model"] + " " + both["device"] + " " + both["dtype"] + " " + both["mode"] + " b" + both["batch_size"].astype(str),
        interval=[f"[{lo / m:.3f}, {hi / m:.3f}]" for lo, hi, m in zip(both["low"], both["high"], both["median"])],
    )
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(view[["cell", "kind", "processes", "host_share", "ratio", "interval", "inside"]].to_string(index=False))
    print(f"\nshare of second medians inside the first run's {confidence:.0%} interval:")
    for kind, group in both.groupby("kind"):
        print(f"  {kind:30s} {group['inside'].mean():6.1%}  ({int(group['inside'].sum())} of {len(group)} cells; "
              f"median |change| {np.median(np.abs(group['ratio'] - 1)):.1%})")
    print(f"  {'all':30s} {both['inside'].mean():6.1%}  ({int(both['inside'].sum())} of {len(both)} cells)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="study to run twice")
    parser.add_argument("--dir", default="/tmp/speedatlas-calibration", help="scratch folder for the two runs")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--first", help="results/ folder of a finished first run (instead of --config)")
    parser.add_argument("--second", help="results/ folder of a finished second run")
    parser.add_argument("--host-bound-share", type=float, default=0.9)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--processes", type=int, help="use only each cell's first K processes, in both runs")
    parser.add_argument("--both-ways", action="store_true",
                        help="also check the first run's medians against the second run's intervals")
    args = parser.parse_args()
    if args.config:
        walls = [run_study(args.config, Path(args.dir) / name, args.cores) for name in ("first", "second")]
        print(f"study wall time: first {walls[0]:.0f} s, second {walls[1]:.0f} s")
        first, second = Path(args.dir) / "first" / "results", Path(args.dir) / "second" / "results"
    elif args.first and args.second:
        first, second = Path(args.first), Path(args.second)
    else:
        parser.error("give --config, or --first and --second")
    runs = read(first, args.processes), read(second, args.processes)
    both = compare_rows(*runs, args.host_bound_share, args.confidence)
    if args.both_ways:
        both = pd.concat([both, compare_rows(*reversed(runs), args.host_bound_share, args.confidence)], ignore_index=True)
    print_report(both, args.confidence)
    print_precision(runs[0])
    print_widths(speedup_widths(*runs, args.host_bound_share, args.confidence))


if __name__ == "__main__":
    main()
