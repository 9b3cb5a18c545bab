"""Does a dtype work on a device, with this torch? Measure it instead of trusting a blog table.

    python -m speedatlas.dtype_probe [--python PY] --spec '<json>' --out results/support/.../support.parquet

One job per device × dtype × torch version. It builds a small seeded model and batch, computes
a float32 CPU reference (logits in inference; the loss after N Adam steps in training), then runs
the same inputs and weights on the device in the dtype, once per method:

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

from . import cellio

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "support.schema.json"
OUTCOMES = ("runs", "drift", "nonfinite", "raises", "crashes", "unavailable")
MODES = ("infer", "train")


def methods_for(dtype: str, methods: list[str]) -> list[str]:
    """float32 is float32 whichever way it is applied: one 'native' method."""
    return ["native"] if dtype == "float32" else list(methods)


def key_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The probe's key columns, one row per mode × method (filled in by the probe)."""
    base = {
        "machine": spec["machine"],
        "torch_requested": spec["torch"],
        "device": spec["device"],
        "dtype": spec["dtype"],
        "model": spec["model"],
        "input_size": spec["input_size"],
        "batch_size": spec["batch"],
        "train_steps": spec["train_steps"],
        "protocol": spec["protocol"],
    }
    return [
        {**base, "mode": mode, "method": method, "tolerance": spec["tolerance"][mode]}
        for method in methods_for(spec["dtype"], spec["methods"])
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
        from . import models

        self.spec = spec
        self.models = models
        self.images, self.labels = models.synthetic_batch(spec["batch"], spec["input_size"], spec["num_classes"], spec["seed"])
        self.initial = models.build_model(spec["model"], spec["num_classes"], spec["seed"]).state_dict()

    def _model(self):
        model = self.models.build_model(self.spec["model"], self.spec["num_classes"], self.spec["seed"])
        model.load_state_dict(copy.deepcopy(self.initial))
        return model

    def run(self, mode: str, device: str, dtype: str, method: str):
        """(output, logits dtype): the logits (infer), or a tensor [loss of the first step, loss
        after the N steps] on the training batch (train)."""
        import torch

        from . import devices

        models = self.models
        model = self._model().to(device)
        images, labels = self.images.to(device), self.labels.to(device)
        step_dtype = dtype
        if method == "cast":
            model = model.to(models.DTYPES[dtype])
            images = images.to(models.DTYPES[dtype])
            step_dtype = "float32"  # already in the dtype: no autocast on top
        autocast = models.autocast_context(device, step_dtype)
        if mode == "infer":
            model.eval()
            with torch.inference_mode(), autocast():
                logits = models.logits_of(model(images))
            devices.synchronize(device)
            return logits, logits.dtype
        step = models.make_step(model, images, labels, "train", device, step_dtype)
        losses = []
        for index in range(self.spec["train_steps"]):
            losses.append(float(step().float().item()))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"the loss of training step {index + 1} is {losses[-1]}")
        with torch.no_grad(), autocast():
            logits = models.logits_of(model(images))
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        devices.synchronize(device)
        return torch.tensor([losses[0], float(loss.float().item())]), logits.dtype


def probe(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """All rows of one device × dtype job."""
    import torch

    from . import devices, envinfo
    from .runner import error_text
    from .timing import utcnow

    torch.set_num_threads(spec["cpu_threads"] or devices.default_threads())
    env = envinfo.collect(torch)
    env.pop("threads", None)
    device, dtype = spec["device"], spec["dtype"]
    rows = [{**row, **env, "device_name": devices.device_name(device, env["cpu_model"]), "started_at": utcnow()}
            for row in key_rows(spec)]
    reason = devices.unavailable_reason(device)
    if reason is not None:
        return [{**row, "outcome": "unavailable", "error": reason} for row in rows]

    import torchvision

    probe_ = _Probe(spec)
    reference = {mode: probe_.run(mode, "cpu", "float32", "native")[0] for mode in MODES}
    for row in rows:
        row["torchvision_version"] = torchvision.__version__
        mode, method = row["mode"], row["method"]
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
            row.update(outcome="raises", error=error_text(exc), error_kind=devices.classify(exc))
            devices.release_memory(device)
        row["seconds"] = time.perf_counter() - start
    return rows


def write(rows: list[dict[str, Any]], out: str) -> None:
    cellio.write_atomic(cellio.rows_to_table(rows, SCHEMA_FILE), out)


def run_job(spec: dict[str, Any], out: str) -> None:
    """Probe under the machine's timing lock (a probe must not disturb a timed cell), then write."""
    from .runner import error_text, exclusive_machine

    try:
        with exclusive_machine():
            rows = probe(spec)
    except Exception as exc:  # noqa: BLE001 - e.g. torch fails to import in this environment
        rows = [{**row, "outcome": "raises", "error": error_text(exc), "error_kind": "error"} for row in key_rows(spec)]
    write(rows, out)


def supervise(python: str, spec_json: str, out: str) -> int:
    """Run the probe in a child; if it dies without writing, every row says how it died."""
    from .supervisor import exit_reason

    returncode = subprocess.call([python, "-m", "speedatlas.dtype_probe", "--spec", spec_json, "--out", out])
    if returncode != 0 and not os.path.exists(out):
        reason = f"{exit_reason(returncode)} (see the job's log)"
        write([{**row, "outcome": "crashes", "error": reason} for row in key_rows(json.loads(spec_json))], out)
    return returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="probe one device × dtype, write its support rows")
    parser.add_argument("--python", help="supervise: run the probe with this interpreter in a child process")
    parser.add_argument("--spec", required=True, help="canonical JSON of the probe (dtype_support.SupportJob.spec)")
    parser.add_argument("--out", required=True, help="path of the probe's Parquet file")
    args = parser.parse_args(argv)
    if args.python:
        supervise(args.python, args.spec, args.out)
        return 0
    spec = json.loads(args.spec)
    if os.environ.get("SPEEDATLAS_FAULT", "") == f"dtype_probe:{spec['dtype']}:segv":  # test hook
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)
    run_job(spec, args.out)
    print(f"speedatlas: dtype support of {spec['dtype']} on {spec['device']} written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
