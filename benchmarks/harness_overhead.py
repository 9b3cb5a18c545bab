"""How much does the harness cost? Prints two figures.

1. Step-time ratio: a bare, hand-written timing loop (no speedatlas code) against the
   pipeline's runner process on the same device and settings. ratio = bare / pipeline; 1.00
   means the harness adds nothing to the measured step, below 1 it inflates step times.
   A/B runs alternate (bare, pipeline, bare, pipeline, ...) to cancel drift.
2. Per-cell fixed cost: interpreter start, `import torch`, `import torchvision`, and the whole
   runner process for one tiny cell, split into set-up, timed region and the rest.

    python benchmarks/harness_overhead.py --device cuda --model resnet50 --batch 128 --dtype bfloat16
    python benchmarks/harness_overhead.py --device cpu --model resnet18 --batch 8 --input-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "workflow"), os.environ.get("PYTHONPATH", "")])}

BARE_LOOP = r'''
import json, sys, time, torch, torchvision
a = json.loads(sys.argv[1])
dev = a["device"]
torch.manual_seed(0)
model = torchvision.models.get_model(a["model"], weights=None, num_classes=10).to(dev)
x = torch.randn(a["batch"], 3, a["input_size"], a["input_size"]).to(dev)
y = torch.randint(0, 10, (a["batch"],)).to(dev)
dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[a["dtype"]]
kind = dev.split(":")[0]
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
sync = torch.cuda.synchronize if kind == "cuda" else (torch.mps.synchronize if kind == "mps" else (lambda: None))
def step():
    if a["mode"] == "infer":
        with torch.inference_mode(), torch.autocast(kind, dtype=dtype, enabled=dtype is not None):
            return model.eval()(x)
    opt.zero_grad(set_to_none=True)
    with torch.autocast(kind, dtype=dtype, enabled=dtype is not None):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward(); opt.step()
    return loss
for _ in range(a["warmup"]):
    step()
sync()
samples = []
for _ in range(a["repeats"]):
    t0 = time.perf_counter(); step(); sync(); samples.append(time.perf_counter() - t0)
print(json.dumps(samples))
'''


def bare(args: dict) -> float:
    out = subprocess.run([sys.executable, "-c", BARE_LOOP, json.dumps(args)], capture_output=True, text=True, env=ENV, check=True)
    return statistics.median(json.loads(out.stdout.strip().splitlines()[-1]))


def pipeline(args: dict) -> tuple[float, dict]:
    import pyarrow.parquet as pq

    spec = {
        "machine": "bench", "workload": "synthetic", "torch": "current", "device": args["device"],
        "model": args["model"], "dtype": args["dtype"], "mode": args["mode"], "variant": "eager",
        "batch": args["batch"], "input_size": args["input_size"], "num_classes": 10,
        "warmup": args["warmup"], "repeats": args["repeats"], "steps_per_repeat": 1,
        "cpu_threads": 0, "seed": 0, "protocol": 1,
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cell.parquet"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "speedatlas.measure.process.runner", "--spec", json.dumps(spec), "--out", str(out)],
                       env=ENV, check=True, capture_output=True)
        wall = time.perf_counter() - start
        table = pq.read_table(out).to_pylist()
    if table[0]["status"] != "ok":
        raise SystemExit(f"pipeline cell failed: {table[0]['status']}: {table[0]['error']}")
    times = [row["step_time_s"] for row in table]
    timed = (table[0]["finished_at"] - table[0]["started_at"]).total_seconds()
    return statistics.median(times), {"wall_s": wall, "setup_s": table[0]["setup_s"], "timed_s": timed}


def command_seconds(code: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--mode", default="train")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="A/B rounds")
    parser.add_argument("--skip-fixed-cost", action="store_true")
    a = parser.parse_args()
    args = {"device": a.device, "model": a.model, "batch": a.batch, "input_size": a.input_size, "dtype": a.dtype,
            "mode": a.mode, "warmup": a.warmup, "repeats": a.repeats}

    bares, pipes, costs = [], [], []
    for _ in range(a.rounds):
        bares.append(bare(args))
        median, cost = pipeline(args)
        pipes.append(median)
        costs.append(cost)
    b, p = statistics.median(bares), statistics.median(pipes)
    print(f"{a.model} {a.mode} {a.dtype} batch {a.batch} on {a.device}:")
    print(f"  bare loop median step      {b * 1000:9.3f} ms   (rounds: {', '.join(f'{x * 1000:.3f}' for x in bares)})")
    print(f"  pipeline median step       {p * 1000:9.3f} ms   (rounds: {', '.join(f'{x * 1000:.3f}' for x in pipes)})")
    print(f"  ratio bare/pipeline        {b / p:9.3f}")
    if a.skip_fixed_cost:
        return
    cost = costs[-1]
    print("per-cell fixed cost (best of 3 where repeated):")
    print(f"  python start               {command_seconds('pass'):9.2f} s")
    print(f"  python + import torch      {command_seconds('import torch'):9.2f} s")
    print(f"  python + import torchvision{command_seconds('import torchvision'):9.2f} s")
    print(f"  runner process, whole      {cost['wall_s']:9.2f} s")
    print(f"    set-up (start -> 1st step) {cost['setup_s']:7.2f} s")
    print(f"    timed region               {cost['timed_s']:7.2f} s")
    print(f"    rest (warm-up, FLOP count, write) {cost['wall_s'] - cost['setup_s'] - cost['timed_s']:.2f} s")


if __name__ == "__main__":
    main()
