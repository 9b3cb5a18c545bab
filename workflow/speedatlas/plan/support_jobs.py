"""The dtype support probes to run: one job per device × torch version, each covering every dtype.

Pure, like speedatlas.plan.matrix: a job's path is its key, its canonical JSON its params (the
probe's rerun rule). The probe: speedatlas.measure.dtype_probe; its table:
speedatlas.analyze.dtype_support_table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


# Bump when what a probe measures changes: it is part of every probe's params.
SUPPORT_PROTOCOL_VERSION = 1


DTYPES = ("float32", "float16", "bfloat16")


KEYS = ("machine", "torch", "device")


SUPPORT_PATTERN = "results/support/" + "/".join(f"{k}={{{k}}}" for k in KEYS) + "/support.parquet"


@dataclass(frozen=True, order=True)
class SupportJob:
    """One probe: its key (the path) and everything that determines its result (the params)."""

    machine: str
    torch: str
    device: str
    model: str
    input_size: int
    batch: int
    train_steps: int
    num_classes: int
    seed: int
    cpu_threads: int
    methods: tuple[str, ...]
    tolerance: str  # canonical JSON {"infer": {dtype: tol}, "train": {dtype: tol}} (hashable)

    @property
    def path(self) -> str:
        return SUPPORT_PATTERN.format(**{k: getattr(self, k) for k in KEYS})

    def spec(self) -> str:
        """Canonical JSON (sorted keys): Snakemake's params trigger reruns exactly this probe."""
        fields = {
            k: getattr(self, k)
            for k in ("machine", "torch", "device", "model", "input_size", "batch", "train_steps",
                      "num_classes", "seed", "cpu_threads")
        }
        fields.update(
            dtypes=list(DTYPES),
            methods=list(self.methods),
            tolerance=json.loads(self.tolerance),
            protocol=SUPPORT_PROTOCOL_VERSION,
        )
        return json.dumps(fields, sort_keys=True)


def expand(config: dict[str, Any]) -> list[SupportJob]:
    """Every configured device × every torch version (none when turned off); each job probes
    every dtype."""
    probe = config["dtype_support"]
    if not probe["enabled"]:
        return []
    tolerance = json.dumps({"infer": probe["tolerance"], "train": probe["train_tolerance"]}, sort_keys=True)
    jobs = {
        SupportJob(
            machine=config["machine"],
            torch=torch_version,
            device=device,
            model=probe["model"],
            input_size=probe["input_size"],
            batch=probe["batch"],
            train_steps=probe["train_steps"],
            num_classes=config["num_classes"],
            seed=config["seed"],
            cpu_threads=config["cpu_threads"],
            methods=tuple(probe["methods"]),
            tolerance=tolerance,
        )
        for torch_version in config["torch_versions"]
        for device in config["devices"]
    }
    return sorted(jobs)


def wildcard_values(jobs: list[SupportJob]) -> dict[str, list[str]]:
    return {k: sorted({str(getattr(job, k)) for job in jobs}) for k in KEYS}
