# A stand-in for the speedatlas workflow, small enough to push through SLURM in a minute:
# the same rule names (bench, aggregate), the same {device} wildcard in the cell path and
# the same bench resources, so profiles/slurm applies to it as to the real workflow. Each
# job records what SLURM gave it (job id, CPUs, GPUs, the interpreter) instead of timing.
#
#   snakemake -s tests/cluster/smoke.smk --directory TMP --profile profiles/slurm \
#       --config 'devices=["cpu","cuda:1","mps"]'
import json
import os
import sys

DEVICES = config.get("devices", ["cpu"])

# As in the real workflow: one timing job at a time unless the profile says otherwise.
workflow.global_resources.setdefault("speedatlas_timing", 1)


localrules:
    all,


rule all:
    input:
        "results/cells.json",


rule bench:
    output:
        "results/cells/device={device}/cell.json",
    resources:
        speedatlas_timing=1,
    params:
        device=lambda w: w.device,
    run:
        env = os.environ
        with open(output[0], "w") as f:
            json.dump(
                {
                    "device": params.device,
                    "slurm_job_id": env.get("SLURM_JOB_ID"),
                    "cpus_on_node": env.get("SLURM_CPUS_ON_NODE"),
                    "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
                    "host": os.uname().nodename,
                    "python": sys.executable,
                },
                f,
            )


rule aggregate:
    input:
        expand(rules.bench.output, device=DEVICES),
    output:
        "results/cells.json",
    run:
        cells = [json.load(open(p)) for p in input]
        with open(output[0], "w") as f:
            json.dump({"cells": cells, "slurm_job_id": os.environ.get("SLURM_JOB_ID")}, f)
