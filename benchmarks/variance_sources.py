"""Which sources of variance between fresh processes can be removed? (issue 23, item 1)

    python benchmarks/variance_sources.py [--device cuda] [--processes 6] [--out runs.jsonl]
    python benchmarks/variance_sources.py --summarize runs.jsonl

Runs the same cells under each candidate change of the protocol, one at a time against a
baseline, and prints each candidate's between-process spread: the standard deviation of the log
of each process's median step time (about its coefficient of variation), per cell, and its
median over host-bound cells (host share >= 0.9) and over the others. Every process goes
through the real supervisor and runner, as a study's do. Rounds: process k of every candidate
and every cell, then process k + 1, so a disturbance of some seconds hits one process of many
cells and candidates, not all processes of one; within a round each cell's candidates run side by
side, their order turning from round to round.

Candidates (what differs from the baseline, which is protocol 1: garbage collector on, warm-up
counted in steps only, the host thread free to migrate, processes forked from the fork server):
  gc      the garbage collector off in the timed blocks (pyperf, timeit)
  warmup  the warm-up also lasts --warmup-seconds (clocks, allocator caches, autotuners settle by time)
  pin     the measuring (host) thread pinned to one core (accelerator cells)
  fresh   a fresh interpreter per process instead of a fork of the fork server
  all     gc + warmup + pin (what protocol 2 keeps, where each helps)
Each process appends one line to --out as it finishes, so a run stopped by a time limit keeps
what it measured; --resume skips the lines already there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from speedatlas.plan import launcher, matrix  # noqa: E402
from speedatlas.plan.config import prepare  # noqa: E402
from speedatlas.plan.job_env import export_job_environment  # noqa: E402

export_job_environment(REPO)  # what the Snakefile gives every job: the package, the commit
CANDIDATES = {
    "baseline": {},
    "gc": {"gc_off": True},
    "warmup": {"warmup_seconds": None},  # filled from --warmup-seconds
    "pin": {"pin_host": True},
    "fresh": {"_fresh": True},
    "all": {"gc_off": True, "warmup_seconds": None, "pin_host": True},
}
BASELINE = {"gc_off": False, "warmup_seconds": 0.0, "pin_host": False}
# host-bound on an H100 (published/h100: host share >= 0.9) and compute-bound there
GPU_CELLS = ["resnet18:infer:bfloat16:4", "mobilenet_v2:infer:bfloat16:4", "efficientnet_b0:infer:float32:4",
             "alexnet:infer:bfloat16:4", "resnet18:train:float32:4", "mobilenet_v2:infer:bfloat16:64",
             "resnet50:train:float32:64", "vgg16:infer:float32:32", "resnet50:infer:bfloat16:128"]
# on a CPU: small steps (a few ms, dominated by the host's per-op cost) and larger ones
CPU_CELLS = ["resnet18:infer:float32:1", "mobilenet_v3_small:infer:float32:1", "mobilenet_v3_small:train:float32:1",
             "squeezenet1_0:infer:float32:1", "alexnet:infer:float32:1", "shufflenet_v2_x0_5:infer:float32:2",
             "resnet18:train:float32:8", "resnet50:infer:float32:4", "mobilenet_v2:train:float32:8"]


def cell_specs(cells: list[str], device: str, input_size: int, warmup: int, repeats: int, threads: int) -> dict[str, dict]:
    """{cell label: the spec of process 0 of that cell, as the matrix makes it}."""
    out = {}
    for text in cells:
        model, mode, dtype, batch = text.split(":")[:4]
        config = prepare({"machine": "variance", "devices": [device], "baseline_device": device, "models": [model], "batch_sizes": [int(batch)],
                          "dtypes": [dtype], "modes": [mode], "input_size": input_size, "cpu_threads": threads,
                          "timing": {"warmup": warmup, "repeats": repeats, "steps_per_repeat": 1, "processes": 1},
                          "energy": {"enabled": False}, "dtype_support": {"enabled": False}},
                         [model])
        (cell,) = matrix.expand(config)
        out[text] = json.loads(cell.process_spec(0))
    return out


def run_process(spec: dict, fresh: bool, work: Path) -> dict:
    """One process through the real supervisor; its median step time, samples and host share."""
    import pyarrow.parquet as pq

    part = work / f"process-{time.monotonic_ns()}.parquet"
    env = {k: v for k, v in os.environ.items() if not (fresh and k == launcher.SOCKET_ENV)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "speedatlas.measure.supervisor", "--python", "python",
                    "--spec", json.dumps(spec, sort_keys=True), "--out", str(part)], env=env, cwd=work, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = pq.read_table(part).to_pylist()
    ok = [r["step_time_s"] for r in rows if r["status"] == "ok"]
    for path in (part, Path(str(part)[: -len(".parquet")] + ".json")):
        path.unlink(missing_ok=True)
    return {"status": rows[0]["status"], "median_s": statistics.median(ok) if ok else None,
            "within_cv": statistics.stdev(ok) / statistics.fmean(ok) if len(ok) > 1 else None,
            "host_share": rows[0].get("host_share"), "host_cpu": rows[0].get("host_cpu"),
            "warmup_steps_run": rows[0].get("warmup_steps_run"), "seconds": time.perf_counter() - started,
            "error": rows[0].get("error")}


def measure(args) -> None:
    specs = cell_specs(args.cells, args.device, args.input_size, args.warmup, args.repeats, args.threads)
    out = Path(args.out)
    done = set()
    if args.resume and out.exists():
        done = {(r["round"], r["candidate"], r["cell"]) for r in map(json.loads, out.read_text().splitlines())}
    launcher.start("forkserver")
    try:
        with tempfile.TemporaryDirectory() as tmp, out.open("a") as sink:
            for round_ in range(args.processes):
                # Cell by cell, the candidates side by side in an order that turns each round: a
                # candidate run after all the others' cells would meet other minutes of the machine.
                turn = round_ % len(args.candidates)
                order = args.candidates[turn:] + args.candidates[:turn]
                for label, spec in specs.items():
                    for name in order:
                        change = {k: (args.warmup_seconds if v is None else v) for k, v in CANDIDATES[name].items()}
                        if (round_, name, label) in done:
                            continue
                        run = {**spec, **BASELINE, **{k: v for k, v in change.items() if not k.startswith("_")}}
                        result = run_process(run, bool(change.get("_fresh")), Path(tmp))
                        sink.write(json.dumps({"round": round_, "candidate": name, "cell": label, **result}) + "\n")
                        sink.flush()
                print(f"round {round_ + 1} of {args.processes} done", file=sys.stderr, flush=True)
    finally:
        launcher.stop()


def summarize(path: str, host_bound_share: float = 0.9) -> str:
    runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    by: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        if run["status"] == "ok":
            by.setdefault((run["candidate"], run["cell"]), []).append(run)
    cells = sorted({cell for _, cell in by})
    shares = {cell: statistics.median([r["host_share"] for (c, k), rs in by.items() if k == cell for r in rs
                                       if r.get("host_share") is not None] or [float("nan")]) for cell in cells}
    kind = {cell: ("host-bound" if shares[cell] >= host_bound_share else "other") if not math.isnan(shares[cell])
            else ("small steps" if statistics.median(r["median_s"] for (c, k), rs in by.items() if k == cell
                                                     for r in rs) < 0.01 else "larger steps") for cell in cells}
    candidates = [c for c in CANDIDATES if any(name == c for name, _ in by)]
    lines = ["between-process spread (sd of log medians, ~CV) per cell; n = processes", "",
             "| cell | kind | " + " | ".join(candidates) + " |", "|---|---|" + "---|" * len(candidates)]
    spread: dict[tuple[str, str], float] = {}
    for cell in cells:
        row = []
        for name in candidates:
            medians = [r["median_s"] for r in by.get((name, cell), [])]
            if len(medians) > 1:
                spread[(name, cell)] = statistics.stdev(math.log(m) for m in medians)
                row.append(f"{spread[(name, cell)]:.1%} (n={len(medians)})")
            else:
                row.append("—")
        lines.append(f"| {cell} | {kind[cell]} | " + " | ".join(row) + " |")
    lines += ["", "| kind | " + " | ".join(candidates) + " |", "|---|" + "---|" * len(candidates)]
    for group in sorted(set(kind.values())):
        members = [c for c in cells if kind[c] == group]
        row = [statistics.median([spread[(n, c)] for c in members if (n, c) in spread] or [float("nan")]) for n in candidates]
        lines.append(f"| median, {group} ({len(members)} cells) | " + " | ".join(f"{v:.1%}" for v in row) + " |")
    within = {n: statistics.median([r["within_cv"] for (c, _), rs in by.items() if c == n for r in rs
                                    if r.get("within_cv") is not None] or [float("nan")]) for n in candidates}
    lines.append("| median within-process CV | " + " | ".join(f"{within[n]:.1%}" for n in candidates) + " |")
    seconds = {n: sum(r["seconds"] for (c, _), rs in by.items() if c == n for r in rs) for n in candidates}
    lines.append("| seconds of processes | " + " | ".join(f"{seconds[n]:.0f}" for n in candidates) + " |")
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        lines.append(f"\n{len(failed)} processes not ok, e.g. {failed[0]['cell']}: {failed[0]['status']} {failed[0].get('error')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summarize", help="print the table of a runs file and stop")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cells", nargs="+", help="model:mode:dtype:batch (default: a set for the device)")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--input-size", type=int, default=None, help="default 224 on a GPU, 64 on the cpu")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="cpu_threads of the cells (0: every core)")
    parser.add_argument("--out", default="variance_runs.jsonl")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    args.cells = args.cells or (CPU_CELLS if args.device == "cpu" else GPU_CELLS)
    args.input_size = args.input_size or (64 if args.device == "cpu" else 224)
    measure(args)
    print(summarize(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
