# Config loading, validation, the cell matrix and every input function. No rule lives here.
import json
import mimetypes
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
from speedatlas import matrix  # noqa: E402
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

# `snakemake --report` embeds tables by MIME type; Parquet is not in Python's list.
mimetypes.add_type("application/vnd.apache.parquet", ".parquet")

# Result sets of other machines (include_results): located and checked before any job starts.
from speedatlas import crossmachine, resultsets  # noqa: E402

try:
    INCLUDED_SETS = [resultsets.locate(entry, i) for i, entry in enumerate(STUDY["include_results"])]
    crossmachine.check_baselines(STUDY, resultsets.devices_by_machine(INCLUDED_SETS))
except (resultsets.MergeError, study_config.ConfigError) as error:
    raise WorkflowError(f"speedatlas config error: {error}") from None
INCLUDED_FILES = resultsets.included_files(
    INCLUDED_SETS, [cell.path for cell in CELLS], f"results/cells/machine={STUDY['machine']}"
)

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


def get_included_cell_files():
    """Cell files of other machines' result sets: inputs, so a change there reruns aggregation."""
    return INCLUDED_FILES


def get_included_manifests():
    return [result_set.manifest for result_set in INCLUDED_SETS if result_set.manifest]


def get_publish_plots():
    """Every plot of the study, PNG and SVG, for the publish bundle."""
    names = ("throughput", "speedup_heatmap", "noise")
    return [f"results/plots/{name}.{ext}" for name in names for ext in ("png", "svg")]


def get_publish_tables():
    return [
        "results/tables/cells.parquet",
        "results/tables/speedups.parquet",
        "results/tables/speedups.csv",
        "results/tables/speedups.md",
    ]


def get_configfiles():
    """The config files this run was given (absolute paths), else the embedded default."""
    return [str(f) for f in workflow.overwrite_configfiles] or [str(DEFAULT_CONFIG)]


def get_final_output():
    return [
        "results/report.md",
        "results/tables/cells.parquet",
        "results/tables/speedups.parquet",
        "results/tables/speedups.csv",
        "results/tables/speedups.md",
        "results/plots/throughput.png",
        "results/plots/speedup_heatmap.png",
        "results/plots/noise.png",
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
            "include_results": STUDY["include_results"],
            "cross_machine_baselines": STUDY["cross_machine_baselines"],
            "publish_name": STUDY["publish_name"],
            "cells": len(CELLS),
            "configfiles": [str(f) for f in workflow.overwrite_configfiles] or [str(DEFAULT_CONFIG.relative_to(REPO))],
        },
        sort_keys=True,
    )
