"""Does the pipeline measure what a plain loop measures? Prints, per cell, the ratio of an
independent minimal loop's median to the pipeline's, and whether it lies in the pipeline's
interval (issue 14).

Every cell of the config runs through the pipeline (speedatlas.measure.supervisor: fresh processes,
timing.processes of them, each writing its rows) and through PLAIN_LOOP below (its own few
dozen lines, none of the runner's code, in as many fresh processes), alternately: pipeline,
plain, pipeline, plain... for --rounds rounds, so drift of the machine hits both alike.

    uv run python benchmarks/crosscheck.py --config CONFIG [--rounds 2] [--dir /tmp/crosscheck]

Targets (issue 14): compute-bound cells within +-3%; every ratio inside its own interval.
Variant `compile` is skipped (the plain loop times eager models and channels_last only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "workflow"), os.environ.get("PYTHONPATH", "")])}

from speedatlas.analyze import stats  # noqa: E402
from speedatlas.plan import matrix  # noqa: E402
from speedatlas.plan.config import cache_dir, prepare, torchvision_models  # noqa: E402

PLAIN_LOOP = r'''
import json, sys, time
import torch, torchvision
c = json.loads(sys.argv[1])
dev, kind = c["device"], c["device"].split(":")[0]
if c["cpu_threads"]:
    torch.set_num_threads(c["cpu_threads"])
torch.manual_seed(c["seed"])
model = torchvision.models.get_model(c["model"], weights=None, num_classes=c["num_classes"]).to(dev)
x = torch.randn(c["batch"], 3, c["input_size"], c["input_size"]).to(dev)
y = torch.randint(0, c["num_classes"], (c["batch"],)).to(dev)
if c["variant"] == "channels_last":
    model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
low = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[c["dtype"]]
amp = lambda: torch.autocast(kind, dtype=low, enabled=low is not None)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
scaler = torch.amp.GradScaler(kind) if (low is torch.float16 and kind == "cuda") else None
sync = {"cuda": torch.cuda.synchronize, "mps": getattr(torch, "mps", None) and torch.mps.synchronize}.get(kind) or (lambda: None)
if c["mode"] == "infer":
    model.eval()
def step():
    if c["mode"] == "infer":
        with torch.inference_mode(), amp():
            return model(x)
    opt.zero_grad(set_to_none=True)
    with amp():
        loss = torch.nn.functional.cross_entropy(model(x), y)
    if scaler is None:
        loss.backward(); opt.step()
    else:
        scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
    return loss
for _ in range(max(1, c["warmup"])):
    step()
sync()
samples = []
for _ in range(c["repeats"]):
    t0 = time.perf_counter()
    for _ in range(c["steps_per_repeat"]):
        step()
    sync()
    samples.append((time.perf_counter() - t0) / c["steps_per_repeat"])
print(json.dumps(samples))
'''


def plain(spec: dict) -> list[list[float]]:
    """The plain loop in `processes` fresh processes: one list of samples per process."""
    out = []
    for _ in range(spec.get("processes", 1)):
        done = subprocess.run([sys.executable, "-c", PLAIN_LOOP, json.dumps(spec)],
                              capture_output=True, text=True, env=ENV, check=True)
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def pipeline(spec: dict, out: Path) -> list[list[float]] | str:
    """The cell through speedatlas's supervisor; its samples per process, or its error."""
    import pyarrow.parquet as pq

    out.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "speedatlas.measure.supervisor", "--python", sys.executable,
                    "--spec", json.dumps(spec), "--out", str(out)], env=ENV, check=True, capture_output=True)
    rows = pq.read_table(out).to_pylist()
    if rows[0]["status"] != "ok":
        return f"{rows[0]['status']}: {rows[0]['error']}"
    by_process: dict[int, list[float]] = {}
    for row in rows:
        by_process.setdefault(row.get("process") or 0, []).append(row["step_time_s"])
    return [by_process[p] for p in sorted(by_process)]


def interval(per_process: list[list[float]], confidence: float = 0.95) -> tuple[float, float, float]:
    """The pipeline's estimate and interval, as the tables compute them (for several processes,
    where a rerun should land: stats.rerun_draws)."""
    rng = np.random.default_rng(0)
    estimate = center(per_process)
    if len(per_process) == 1:
        boot = stats.bootstrap_medians(np.asarray(per_process), 2000, rng)[0]
    else:
        if len({len(p) for p in per_process}) == 1:
            replicates = stats.bootstrap_process_medians(np.asarray(per_process)[None], 2000, rng)
        else:
            replicates = stats.bootstrap_ragged_process_medians([np.asarray(p) for p in per_process], 2000, rng)[None]
        boot = stats.rerun_draws(np.array([estimate]), replicates, len(per_process), rng)[0]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return estimate, float(low), float(high)


def center(per_process: list[list[float]]) -> float:
    return statistics.fmean(statistics.median(p) for p in per_process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default="/tmp/speedatlas-crosscheck")
    args = parser.parse_args()
    config = prepare(yaml.safe_load(Path(args.config).read_text()), torchvision_models(cache_dir()))
    cells = [c for c in matrix.expand(config) if c.variant != "compile" and c.workload == "synthetic"]
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{len(cells)} cells x {args.rounds} rounds, pipeline and plain loop alternately")
    print(f"{'cell':55s} {'round':>5s} {'pipeline ms':>12s} {'plain ms':>10s} {'plain/pipe':>10s} {'pipeline interval':>22s} inside")
    ratios, insides = [], []
    walls = {"pipeline": 0.0, "plain": 0.0}  # each side's processes, start to end
    for round_ in range(args.rounds):
        for cell in cells:
            spec = json.loads(cell.spec())
            name = f"{cell.model} {cell.device} {cell.dtype} {cell.mode} {cell.variant} b{cell.batch}"
            began = time.perf_counter()
            piped = pipeline(spec, work / "cell.parquet")
            walls["pipeline"] += time.perf_counter() - began
            if isinstance(piped, str):
                print(f"{name:55s} {round_:5d} pipeline cell not ok ({piped[:60]})")
                continue
            began = time.perf_counter()
            ours = plain(spec)
            walls["plain"] += time.perf_counter() - began
            estimate, low, high = interval(piped)
            theirs = center(ours)
            ratio, inside = theirs / estimate, low <= theirs <= high
            ratios.append(ratio)
            insides.append(inside)
            print(f"{name:55s} {round_:5d} {estimate * 1e3:12.3f} {theirs * 1e3:10.3f} {ratio:10.3f} "
                  f"{f'[{low * 1e3:.3f}, {high * 1e3:.3f}]':>22s} {'yes' if inside else 'NO'}")
    if ratios:
        print(f"\nmedian ratio plain/pipeline {statistics.median(ratios):.3f}; within +-3%: "
              f"{np.mean(np.abs(np.asarray(ratios) - 1) <= 0.03):.0%}; inside the pipeline's interval: "
              f"{np.mean(insides):.0%} of {len(ratios)}")
    print(f"wall time: pipeline (supervisor, fresh interpreters) {walls['pipeline']:.1f} s, plain loop "
          f"{walls['plain']:.1f} s, ratio {walls['pipeline'] / max(walls['plain'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
