"""Does a dtype work on a device, with this torch? Measure it instead of trusting a blog table.

    python -m speedatlas.measure.dtype_probe [--python PY] --spec '<json>' --out results/support/.../support.parquet

One job per device × torch version, probing every dtype (float32, float16, bfloat16): a job costs
mostly the import of torch, so one process does all three, and a supervising parent (--python)
restarts it without a dtype that killed it, so a crash costs only that dtype. The probe builds a
small seeded model and batch, computes a float32 CPU reference, then runs the same inputs and
weights on the device in each dtype, once per method:

- autocast: float16/bfloat16 under torch.autocast, exactly as speedatlas's timing cells run them;
- cast: model and inputs converted to the dtype (what "bfloat16 is not supported" usually means).

Each mode × method gets one outcome: `runs` (finite, drift within the dtype's tolerance),
`drift` (finite, but further from the reference than the tolerance), `nonfinite`, `raises`
(with the error), `crashes` (the process died; recorded by the supervising parent) or
`unavailable` (no such device here). Drift in inference = max |x - ref| / max |ref| over the
logits; in training, how differently the loss fell over the N steps (see progress_drift).

Runner side: standard library, torch, torchvision and pyarrow only (torch >= 2.0).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from speedatlas.measure import cellio

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "support.schema.json"
OUTCOMES = ("runs", "drift", "nonfinite", "raises", "crashes", "unavailable")
MODES = ("infer", "train")


def methods_for(dtype: str, methods: list[str]) -> list[str]:
    """float32 is float32 whichever way it is applied: one 'native' method."""
    return ["native"] if dtype == "float32" else list(methods)


def key_rows(spec: dict[str, Any], dtype: str) -> list[dict[str, Any]]:
    """The probe's key columns for one dtype, one row per mode × method (filled in by the probe)."""
    base = {
        "machine": spec["machine"],
        "torch_requested": spec["torch"],
        "device": spec["device"],
        "dtype": dtype,
        "model": spec["model"],
        "input_size": spec["input_size"],
        "batch_size": spec["batch"],
        "train_steps": spec["train_steps"],
        "protocol": spec["protocol"],
    }
    return [
        {**base, "mode": mode, "method": method, "tolerance": spec["tolerance"][mode][dtype]}
        for method in methods_for(dtype, spec["methods"])
        for mode in MODES
    ]


def relative_drift(value, reference) -> float:
    """max |value - reference| / max |reference|: robust where single logits are near zero."""
    value = value.detach().float().cpu()
    reference = reference.detach().float().cpu()
    scale = float(reference.abs().max())
    return float((value - reference).abs().max()) / (scale if scale > 0 else 1.0)


def progress_drift(losses, reference) -> float:
    """How differently training progressed: |Δ - Δref| / |Δref|, Δ = first loss - loss after N steps.

    The loss after a few Adam steps is itself chaotic in low precision (Adam's first updates
    are about lr·sign(gradient), so rounding flips the sign of tiny gradients; resnet18 at
    32×32 in float16 drifted by up to 60 %), and near zero once the batch is learnt. The
    progress is well conditioned (<= 0.5 % float16, <= 6 % bfloat16 on CPU). The denominator
    is at least 10 % of the reference's first loss, so a reference that barely learns cannot
    blow the ratio up.
    """
    first, last = (float(v) for v in losses)
    ref_first, ref_last = (float(v) for v in reference)
    scale = max(abs(ref_first - ref_last), 0.1 * abs(ref_first), 1e-12)
    return abs((first - last) - (ref_first - ref_last)) / scale


class _Probe:
    """Seeded model and batch; runs one mode in one dtype/method on one device."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from speedatlas.measure.models import zoo

        self.spec = spec
        self.images, self.labels = zoo.synthetic_batch(spec["batch"], spec["input_size"], spec["num_classes"], spec["seed"])
        self.initial = zoo.build_model(spec["model"], spec["num_classes"], spec["seed"]).state_dict()

    def _model(self):
        from speedatlas.measure.models import zoo

        model = zoo.build_model(self.spec["model"], self.spec["num_classes"], self.spec["seed"])
        model.load_state_dict(copy.deepcopy(self.initial))
        return model

    def run(self, mode: str, device: str, dtype: str, method: str):
        """(output, logits dtype): the logits (infer), or a tensor [loss of the first step, loss
        after the N steps] on the training batch (train)."""
        import torch

        from speedatlas.measure.hardware import devices
        from speedatlas.measure.models import zoo
        from speedatlas.measure.protocol import steps

        model = self._model().to(device)
        images, labels = self.images.to(device), self.labels.to(device)
        step_dtype = dtype
        if method == "cast":
            model = model.to(steps.DTYPES[dtype])
            images = images.to(steps.DTYPES[dtype])
            step_dtype = "float32"  # already in the dtype: no autocast on top
        autocast = steps.autocast_context(device, step_dtype)
        if mode == "infer":
            model.eval()
            with torch.inference_mode(), autocast():
                logits = zoo.logits_of(model(images))
            devices.synchronize(device)
            return logits, logits.dtype
        step = steps.make_step(model, images, labels, "train", device, step_dtype)
        losses = []
        for index in range(self.spec["train_steps"]):
            losses.append(float(step().float().item()))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"the loss of training step {index + 1} is {losses[-1]}")
        with torch.no_grad(), autocast():
            logits = zoo.logits_of(model(images))
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        devices.synchronize(device)
        return torch.tensor([losses[0], float(loss.float().item())]), logits.dtype


def inject_fault(dtype: str) -> None:
    """Test hook: SPEEDATLAS_FAULT=dtype_probe:<dtype>:segv kills the probe when it reaches that
    dtype, to prove a crash costs only that dtype. Never set in normal use."""
    if os.environ.get("SPEEDATLAS_FAULT", "") == f"dtype_probe:{dtype}:segv":
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)


def probe(spec: dict[str, Any], on_dtype_done: Any = None) -> list[dict[str, Any]]:
    """All rows of one device: every dtype of spec["dtypes"], in order.

    `on_dtype_done(rows)` is called after each dtype, so a supervising parent keeps what was
    measured before a crash.
    """
    import torch

    from speedatlas.measure.hardware import devices, envinfo
    from speedatlas.measure.protocol.rows import error_text
    from speedatlas.measure.protocol.timing import utcnow

    torch.set_num_threads(spec["cpu_threads"] or devices.default_threads())
    env = envinfo.collect(torch)
    env.pop("threads", None)
    device = spec["device"]
    env["device_name"] = devices.device_name(device, env["cpu_model"])
    reason = devices.unavailable_reason(device)
    probe_ = reference = None
    out: list[dict[str, Any]] = []
    for dtype in spec["dtypes"]:
        inject_fault(dtype)
        rows = [{**row, **env, "started_at": utcnow()} for row in key_rows(spec, dtype)]
        if reason is not None:
            rows = [{**row, "outcome": "unavailable", "error": reason} for row in rows]
        else:
            if probe_ is None:
                probe_ = _Probe(spec)
                reference = {mode: probe_.run(mode, "cpu", "float32", "native")[0] for mode in MODES}
            for row in rows:
                _probe_one(row, probe_, reference, spec, error_text)
        out.extend(rows)
        if on_dtype_done is not None:
            on_dtype_done(rows)
    return out


def _probe_one(row: dict[str, Any], probe_: _Probe, reference: dict[str, Any], spec: dict[str, Any], error_text) -> None:
    """Run one mode × method of one dtype and fill in its outcome."""
    import torch
    import torchvision

    from speedatlas.measure.hardware import devices

    device, dtype, mode, method = row["device"], row["dtype"], row["mode"], row["method"]
    row["torchvision_version"] = torchvision.__version__
    row["metric"] = (
        "max |logit - ref| / max |ref|" if mode == "infer"
        else f"|progress - ref| / |ref progress|, progress = first loss - loss after {spec['train_steps']} Adam steps"
    )
    if mode == "train":
        row["reference_initial"], row["reference"] = (float(v) for v in reference[mode])
    start = time.perf_counter()
    try:
        output, logits_dtype = probe_.run(mode, device, dtype, method)
        row["output_dtype"] = str(logits_dtype).replace("torch.", "")
        finite = bool(torch.isfinite(output.detach().float().cpu()).all())
        if mode == "train":
            row["value_initial"], row["value"] = (float(v) for v in output)
        if not finite:
            row["outcome"] = "nonfinite"
            row["error"] = f"the {'logits' if mode == 'infer' else 'loss'} contain NaN or infinity"
        else:
            measure_drift = relative_drift if mode == "infer" else progress_drift
            row["drift"] = measure_drift(output, reference[mode])
            row["outcome"] = "runs" if row["drift"] <= row["tolerance"] else "drift"
        if method == "autocast" and dtype != "float32" and row["output_dtype"] == "float32":
            row["note"] = f"autocast left the logits in float32: it did not run the model in {dtype}"
    except FloatingPointError as exc:
        row.update(outcome="nonfinite", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - an op that raises is the finding
        row.update(outcome="raises", error=error_text(exc), error_kind=devices.status_of(exc))
        devices.release_memory(device)
    row["seconds"] = time.perf_counter() - start


def write(rows: list[dict[str, Any]], out: str) -> None:
    cellio.write_atomic(cellio.rows_to_table(rows, SCHEMA_FILE), out)


def _append_progress(path: str, rows: list[dict[str, Any]]) -> None:
    """One JSON line per finished dtype, flushed to disk before the next dtype starts."""
    with open(path, "a") as handle:
        handle.write(json.dumps(rows, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _read_progress(path: str) -> list[list[dict[str, Any]]]:
    import datetime as dt

    batches = []
    if os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    rows = json.loads(line)
                    for row in rows:
                        if row.get("started_at"):
                            row["started_at"] = dt.datetime.fromisoformat(row["started_at"])
                    batches.append(rows)
    return batches


def run_job(spec: dict[str, Any], out: str | None = None, progress: str | None = None) -> list[dict[str, Any]]:
    """Probe under the machine's timing lock (a probe must not disturb a timed cell); write the
    Parquet file (`out`) and/or one progress line per dtype (`progress`)."""
    from speedatlas.measure.protocol.rows import error_text
    from speedatlas.measure.process import machine_lock

    done = (lambda rows: _append_progress(progress, rows)) if progress else None
    try:
        with machine_lock.held():
            rows = probe(spec, done)
    except Exception as exc:  # noqa: BLE001 - e.g. torch fails to import in this environment
        finished = {row["dtype"] for batch in (_read_progress(progress) if progress else []) for row in batch}
        rows = [{**row, "outcome": "raises", "error": error_text(exc), "error_kind": "error"}
                for dtype in spec["dtypes"] if dtype not in finished for row in key_rows(spec, dtype)]
        if done is not None:
            done(rows)
    if out:
        write(rows, out)
    return rows


def supervise(python: str, spec_json: str, out: str) -> None:
    """Run the probe in a child; if it dies, record that dtype as `crashes` and go on without it."""
    import tempfile

    from speedatlas.measure.supervisor import exit_reason

    spec = json.loads(spec_json)
    env = spec.get("torch_env") or {}
    if env.get("marker"):
        from speedatlas.measure.hardware.envinfo import unusable_reason

        reason = unusable_reason(env["marker"])
        if reason is not None:  # a torch version whose environment could not be built
            print(f"speedatlas: {reason}; probes recorded as unavailable", file=sys.stderr)
            write([{**row, "outcome": "unavailable", "error": reason}
                   for dtype in spec["dtypes"] for row in key_rows(spec, dtype)], out)
            return
    remaining = list(spec["dtypes"])
    rows: list[dict[str, Any]] = []
    while remaining:
        fd, progress = tempfile.mkstemp(prefix="speedatlas-probe-", suffix=".jsonl")
        os.close(fd)
        try:
            child = json.dumps({**spec, "dtypes": remaining}, sort_keys=True)
            returncode = subprocess.call([python, "-m", "speedatlas.measure.dtype_probe", "--spec", child, "--progress", progress])
            batches = _read_progress(progress)
        finally:
            os.unlink(progress)
        for batch in batches:
            rows.extend(batch)
            remaining = [d for d in remaining if d not in {row["dtype"] for row in batch}]
        if returncode == 0 or not remaining:
            break
        crashed = remaining.pop(0)
        died = exit_reason(returncode).replace("the cell's process", "the probe's process")
        reason = f"{died} while probing {crashed} (see the job's log)"
        print(f"speedatlas: {reason}", file=sys.stderr)
        rows.extend({**row, "outcome": "crashes", "error": reason} for row in key_rows(spec, crashed))
    write(rows, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="probe every dtype on one device, write the support rows")
    parser.add_argument("--python", help="supervise: run the probe with this interpreter in child processes")
    parser.add_argument("--spec", required=True, help="canonical JSON of the probe (speedatlas.plan.support_jobs.SupportJob.spec)")
    parser.add_argument("--out", help="path of the probe's Parquet file")
    parser.add_argument("--progress", help="(child) append each finished dtype's rows to this JSON-lines file")
    args = parser.parse_args(argv)
    if not (args.out or args.progress):
        parser.error("give --out or --progress")
    if args.python:
        supervise(args.python, args.spec, args.out)
        return 0
    spec = json.loads(args.spec)
    run_job(spec, args.out, args.progress)
    print(f"speedatlas: dtype support of {', '.join(spec['dtypes'])} on {spec['device']} probed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
