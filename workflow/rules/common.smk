# Config loading, validation, the cell matrix and every input function. No rule lives here.
import json
import os
import re
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO / "workflow"))

from speedatlas import config as study_config  # noqa: E402
from speedatlas import dtype_support  # noqa: E402
from speedatlas import matrix  # noqa: E402
from speedatlas import seed as seed_study  # noqa: E402
from speedatlas.jobenv import export_job_environment  # noqa: E402

DEFAULT_CONFIG = REPO / "config" / "config.yaml"


def load_study_config(cli_config, cli_configfiles):
    """The embedded default unless --configfile is given; --config values apply on top.

    We avoid the `configfile:` directive because it merges the default into every user config,
    so a key left out of config/m1max.yaml would silently take the quick default's value.
    """
    if cli_configfiles:
        return dict(cli_config)
    with open(DEFAULT_CONFIG) as handle:
        base = yaml.safe_load(handle)
    return {**base, **cli_config}


def fill_defaults(data, schema):
    validate(data, str(study_config.SCHEMA_PATH), set_default=True)


try:
    STUDY = study_config.prepare(
        load_study_config(config, workflow.overwrite_configfiles),
        known_models=study_config.torchvision_models(study_config.cache_dir()),
        fill_defaults=fill_defaults,
    )
except study_config.ConfigError as error:
    raise WorkflowError(f"speedatlas config error: {error}") from None

CELLS = matrix.expand(STUDY)
CELLS_BY_PATH = matrix.index_by_path(CELLS)
SUPPORT_JOBS = dtype_support.expand(STUDY)
SUPPORT_BY_PATH = {job.path: job for job in SUPPORT_JOBS}
try:
    PUBLISHED = seed_study.resolve_published(STUDY["published"], REPO, Path.cwd())
except study_config.ConfigError as error:
    raise WorkflowError(f"speedatlas config error: {error}") from None

# Jobs inherit the runner package, `python` = the interpreter running snakemake (torch version
# "current") and the pipeline commit (recorded in each cell, deliberately not a rerun trigger).
export_job_environment(REPO)

# Timing jobs never overlap: the bench rule holds one unit of this resource. Local runs ignore
# a resource without a limit, so the limit is set here (and in profiles/default) by default.
workflow.global_resources.setdefault("speedatlas_timing", 1)


wildcard_constraints:
    **{
        key: "|".join(re.escape(value) for value in values)
        for key, values in matrix.wildcard_values(CELLS).items()
    },


def cell_of(wildcards):
    return CELLS_BY_PATH[matrix.CELL_PATTERN.format(**wildcards)]


def get_cell_spec(wildcards):
    """The cell's own settings, canonical JSON: the params trigger reruns exactly this cell."""
    return cell_of(wildcards).spec()


def get_cell_python(wildcards):
    """Interpreter of the cell's torch environment ("current" = the one running snakemake)."""
    return "python"


def get_cell_files():
    return [cell.path for cell in CELLS]


def get_final_output():
    return [
        "results/report.md",
        "results/tables/cells.parquet",
        "results/tables/speedups.parquet",
        "results/tables/speedups.csv",
        "results/tables/speedups.md",
        "results/plots/throughput.png",
        *get_epoch_outputs(),
        *get_support_outputs(),
    ]


def get_study_summary():
    """The configured matrix for the report (plain JSON, canonical order)."""
    return json.dumps(
        {
            "machine": STUDY["machine"],
            "devices": STUDY["devices"],
            "baseline_device": STUDY["baseline_device"],
            "torch_versions": STUDY["torch_versions"],
            "baseline_torch": STUDY["baseline_torch"],
            "models": STUDY["models"],
            "batch_sizes": STUDY["batch_sizes"],
            "dtypes": STUDY["dtypes"],
            "modes": STUDY["modes"],
            "variants": STUDY["variants"],
            "workload": STUDY["workload"],
            "input_size": STUDY["input_size"],
            "num_classes": STUDY["num_classes"],
            "timing": STUDY["timing"],
            "cpu_threads": STUDY["cpu_threads"],
            "seed": STUDY["seed"],
            "confidence": STUDY["confidence"],
            "bootstrap_resamples": STUDY["bootstrap_resamples"],
            "noise_cv": STUDY["noise_cv"],
            "data": STUDY["data"],
            "published": STUDY["published"],
            "dtype_support": STUDY["dtype_support"],
            "cells": len(CELLS),
            "configfiles": [str(f) for f in workflow.overwrite_configfiles] or [str(DEFAULT_CONFIG.relative_to(REPO))],
        },
        sort_keys=True,
    )


# --- the mnist_epoch workload, the seed side by side, the dtype support matrix ---------------


def epoch_tables_wanted():
    return "mnist_epoch" in STUDY["workload"] or PUBLISHED is not None


def get_epoch_cell_files():
    return [cell.path for cell in CELLS if cell.workload == "mnist_epoch"]


def get_published():
    return [str(PUBLISHED)] if PUBLISHED is not None else []


def get_epoch_outputs():
    outputs = ["results/tables/epochs.parquet"] if epoch_tables_wanted() else []
    if PUBLISHED is not None:
        outputs.append("results/tables/seed_side_by_side.parquet")
    return outputs


def get_support_outputs():
    return ["results/tables/dtype_support.parquet"] if SUPPORT_JOBS else []


def get_report_sections():
    """Extra report sections (Markdown files), in the order they appear after the speed-ups."""
    sections = []
    if PUBLISHED is not None:
        sections.append("results/tables/seed_side_by_side.md")
    if "mnist_epoch" in STUDY["workload"]:
        sections.append("results/tables/epochs.md")
    if SUPPORT_JOBS:
        sections.append("results/tables/dtype_support.md")
    return sections


def get_support_spec(wildcards):
    """The probe's own settings, canonical JSON: the params trigger reruns exactly this probe."""
    return SUPPORT_BY_PATH[dtype_support.SUPPORT_PATTERN.format(**wildcards)].spec()


def get_support_python(wildcards):
    """The probe runs in the torch environment of its torch version, like the cells."""
    return get_cell_python(wildcards)


def get_support_files():
    return [job.path for job in SUPPORT_JOBS]


def get_support_wildcard_constraints():
    """The probes' own constraints (their dtypes and devices need not be the cells')."""
    values = dtype_support.wildcard_values(SUPPORT_JOBS)
    return {key: "|".join(re.escape(v) for v in vals) or "(?!)" for key, vals in values.items()}
