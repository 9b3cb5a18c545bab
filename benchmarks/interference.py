"""Do cells timed side by side disturb each other? (concurrency: device, issue 19)

Each cell is timed on one GPU (the target, cuda:0 by default) by the pipeline's own runner, as a
study under `concurrency: device` would time it (its slot's lock and host cores), twice per round:
alone (every other GPU idle) and busy (every other GPU running the neighbour load, each neighbour
pinned to its own slot's cores as a slot job is). Rounds alternate alone/busy to cancel drift.
Prints per cell: median step time alone and busy, ratio = busy / alone, and whether it is within
the 2% target. Cells whose ratio misses it are what the report's "Cells timed beside others"
section warns about.

    uv run python benchmarks/interference.py                         # default cells, target cuda:0
    uv run python benchmarks/interference.py --cells resnet50:train:bfloat16:128 vgg16:infer:float32:64 \
        --neighbour resnet50:train:bfloat16:128 --rounds 5 --csv results/interference.csv
    uv run python benchmarks/interference.py --targets all           # every GPU in turn
    SPEEDATLAS_FAKE_GPUS=2 uv run python benchmarks/interference.py --cells resnet18:infer:float32:2 \
        --input-size 32 --rounds 1 --repeats 5                       # smoke test on the CPU

A cell is MODEL:MODE:DTYPE:BATCH. The neighbour load defaults to the same cell as the target
(the worst case of a study: every GPU running the same heavy cell at once).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from speedatlas.measure.process import gpu_slot as slots  # noqa: E402
from speedatlas.plan import concurrency  # noqa: E402
from speedatlas.plan.matrix import Cell  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "workflow"), os.environ.get("PYTHONPATH", "")])}
TARGET = 0.02  # the target: within 2% for compute-bound cells
DEFAULT_CELLS = ["resnet50:train:float32:64", "resnet50:infer:bfloat16:128", "vgg16:infer:float32:64",
                 "mobilenet_v2:infer:bfloat16:64", "resnet18:infer:float32:4"]

# The neighbour: one slot job's load, stepped until the stop file appears. Pinned to its slot's
# cores like a real slot job; writes `ready` after its warm-up so the target starts under load.
NEIGHBOUR = r'''
import json, os, sys, torch
from speedatlas.measure.models import zoo
from speedatlas.measure.process import gpu_slot
from speedatlas.measure.protocol import steps
a = json.loads(sys.argv[1])
gpu_slot.pin(tuple(a["cpus"]))
torch.set_num_threads(len(os.sched_getaffinity(0)))
dev = a["device"]
if dev.startswith("cuda"):
    torch.cuda.set_device(dev)
model = zoo.build_model(a["model"], 10, 0).to(dev)
x, y = zoo.synthetic_batch(a["batch"], a["input_size"], 10, 0)
step = steps.make_step(model, x.to(dev), y.to(dev), a["mode"], dev, a["dtype"])
sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
for _ in range(3):
    step()
sync()
open(a["ready"], "w").close()
while not os.path.exists(a["stop"]):
    for _ in range(5):
        step()
    sync()
'''


def parse_cell(text: str) -> dict:
    model, mode, dtype, batch = text.split(":")
    return {"model": model, "mode": mode, "dtype": dtype, "batch": int(batch)}


def spec(cell: dict, device: str, args: argparse.Namespace) -> str:
    return Cell(machine="interference", workload="synthetic", torch="current", device=device, model=cell["model"],
                dtype=cell["dtype"], mode=cell["mode"], variant="eager", batch=cell["batch"],
                input_size=args.input_size, num_classes=10, warmup=args.warmup, repeats=args.repeats,
                steps_per_repeat=args.steps_per_repeat, cpu_threads=0, seed=0).spec()


def time_cell(cell: dict, target: slots.Slot, table: list[slots.Slot], work: Path, args) -> float:
    """Median step time of the cell on the target GPU, timed by the pipeline's runner."""
    import pyarrow.parquet as pq

    out = work / f"cell-{time.monotonic_ns()}.parquet"
    env = {**ENV, slots.CONCURRENCY_ENV: "device", slots.SLOTS_ENV: concurrency.table_json(table),
           "SPEEDATLAS_LOCK": str(work / "timing.lock"), "CUDA_DEVICE_ORDER": ENV.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID")}
    subprocess.run([sys.executable, "-m", "speedatlas.measure.process.runner", "--spec", spec(cell, target.device, args),
                    "--out", str(out)], env=env, check=True)
    rows = pq.read_table(out).to_pylist()
    if rows[0]["status"] != "ok":
        raise RuntimeError(f"{cell} on {target.device}: {rows[0]['status']}: {rows[0]['error']}")
    return statistics.median(r["step_time_s"] for r in rows)


def start_neighbours(load: dict, others: list[slots.Slot], work: Path, args) -> tuple[list, Path]:
    stop = work / f"stop-{time.monotonic_ns()}"
    procs, ready = [], []
    for slot in others:
        flag = work / f"ready-{slot.index}-{time.monotonic_ns()}"
        device = "cpu" if slots.fake() else slot.device
        payload = {**load, "device": device, "cpus": list(slot.cpus), "input_size": args.input_size,
                   "ready": str(flag), "stop": str(stop)}
        procs.append(subprocess.Popen([sys.executable, "-c", NEIGHBOUR, json.dumps(payload)], env=ENV))
        ready.append(flag)
    deadline = time.monotonic() + 600
    while not all(flag.exists() for flag in ready):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            stop_neighbours(procs, stop)
            raise RuntimeError("a neighbour load failed to start")
        time.sleep(0.1)
    return procs, stop


def stop_neighbours(procs: list, stop: Path) -> None:
    stop.touch()
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=DEFAULT_CELLS, help="MODEL:MODE:DTYPE:BATCH ...")
    parser.add_argument("--neighbour", default=None, help="load on the other GPUs (default: the cell itself)")
    parser.add_argument("--targets", default="0", help="GPU index timed, or 'all' (each GPU in turn)")
    parser.add_argument("--rounds", type=int, default=3, help="alone/busy pairs per cell (alternating)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps-per-repeat", type=int, default=5)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--csv", default=None, help="also write the table here")
    args = parser.parse_args(argv)

    table = concurrency.plan_slots()
    if len(table) < 2:
        print("interference: needs two or more GPUs (nvidia-smi lists fewer); nothing to measure", file=sys.stderr)
        return 2
    targets = table if args.targets == "all" else [s for s in table if s.index == int(args.targets)]
    print(f"slots: {', '.join(f'{s.device} {s.name} cpus {slots.format_cpulist(s.cpus)} numa {s.numa_node}' for s in table)}",
          file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="speedatlas-interference-") as tmp:
        work = Path(tmp)
        for text in args.cells:
            cell = parse_cell(text)
            load = parse_cell(args.neighbour) if args.neighbour else cell
            for target in targets:
                others = [s for s in table if s.index != target.index]
                alone, busy = [], []
                for _ in range(args.rounds):
                    alone.append(time_cell(cell, target, table, work, args))
                    procs, stop = start_neighbours(load, others, work, args)
                    try:
                        busy.append(time_cell(cell, target, table, work, args))
                    finally:
                        stop_neighbours(procs, stop)
                a, b = statistics.median(alone), statistics.median(busy)
                ratio = b / a
                results.append({"cell": text, "gpu": target.device, "gpu_name": target.name,
                                "cpus": slots.format_cpulist(target.cpus), "neighbours_busy": len(others),
                                "alone_ms": round(a * 1e3, 4), "busy_ms": round(b * 1e3, 4),
                                "ratio": round(ratio, 4), "within_2pct": abs(ratio - 1) <= TARGET,
                                "rounds": args.rounds})
                print(f"{text} on {target.device}: alone {a * 1e3:.3f} ms, busy {b * 1e3:.3f} ms, ratio {ratio:.4f}",
                      file=sys.stderr)
    columns = list(results[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in results:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
    missed = [r for r in results if not r["within_2pct"]]
    print(f"\n{len(results) - len(missed)} of {len(results)} cells within {TARGET:.0%} beside busy neighbours"
          + (f"; missed: {', '.join(r['cell'] + ' on ' + r['gpu'] for r in missed)}" if missed else ""))
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
