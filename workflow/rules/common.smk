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
from speedatlas import dtype_support  # noqa: E402
from speedatlas import matrix  # noqa: E402
from speedatlas import launch  # noqa: E402
from speedatlas import torchenv  # noqa: E402
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

# Cells of torch "current" fork from one process that imported torch once (launcher), which
# cuts the per-cell fixed cost; it starts only when jobs run, never for a dry run.
onstart:
    launch.start(STUDY["launcher"])


onsuccess:
    launch.stop()


onerror:
    launch.stop()


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
    """The cell's own settings, canonical JSON: the params trigger reruns exactly this cell.

    A cell of a torch version other than "current" also carries its environment (marker and the
    hash of its spec), so a new spec reruns exactly that version's cells.
    """
    cell = cell_of(wildcards)
    if cell.torch == torchenv.CURRENT:
        return cell.spec()
    return torchenv.spec_with_env(cell.spec(), cell.torch, TORCH_ENV_SPECS[cell.torch])


def get_cell_python(wildcards):
    """Interpreter of the cell's torch environment ("current" = the one running snakemake)."""
    return torchenv.python_path(wildcards.torch)


# The rendered spec of every torch version other than "current" (envs/torch-<v>.txt, else the
# template envs/torch-default.txt): the torch_env rule's param, so editing a spec rebuilds it.
TORCH_ENV_SPECS = {
    version: torchenv.render_spec(version, REPO / "envs")
    for version in sorted({cell.torch for cell in CELLS} - {torchenv.CURRENT})
}


def get_cell_env(wildcards):
    """The cell's torch environment marker as a named input ({} for "current")."""
    if wildcards.torch == torchenv.CURRENT:
        return {}
    return {"torch_env": torchenv.marker_path(wildcards.torch)}


def get_env_spec(wildcards):
    return TORCH_ENV_SPECS[wildcards.torch]


def get_torch_versions_plot(wildcards=None):
    """The torch-version plot for the report, only when the study has more than one version."""
    if len({cell.torch for cell in CELLS}) < 2:
        return {}
    return {"torch_versions_png": "results/plots/torch_versions.png"}


def get_cell_threads(wildcards):
    """CPU threads of the cell (cpu_threads), or all cores given to snakemake for 0.

    Snakemake then runs nothing else beside a timing job on this machine, and on a cluster
    the job step gets that many CPUs (set cpu_threads explicitly there).
    """
    return cell_of(wildcards).cpu_threads or workflow.cores


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
    plots = [f"results/plots/{name}.{ext}" for name in names for ext in ("png", "svg")]
    for png in get_torch_versions_plot().values():  # only with several torch versions
        plots += [png, png.replace(".png", ".svg")]
    return plots


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
        *get_torch_versions_plot().values(),
        "results/plots/speedup_heatmap.png",
        "results/plots/noise.png",
        *get_epoch_outputs(),
        *get_support_outputs(),
    ]


def repo_relative(path):
    """A config path as a reader can use it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


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
            "data": STUDY["data"],
            "published": STUDY["published"],
            "dtype_support": STUDY["dtype_support"],
            "cells": len(CELLS),
            "configfiles": [repo_relative(f) for f in workflow.overwrite_configfiles]
            or [repo_relative(DEFAULT_CONFIG)],
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
    spec = SUPPORT_BY_PATH[dtype_support.SUPPORT_PATTERN.format(**wildcards)].spec()
    if wildcards.torch == torchenv.CURRENT:
        return spec
    # as a cell: the environment travels with the spec (a failed build becomes `unavailable`)
    return torchenv.spec_with_env(spec, wildcards.torch, TORCH_ENV_SPECS[wildcards.torch])


def get_support_python(wildcards):
    """The probe runs in the torch environment of its torch version, like the cells."""
    return get_cell_python(wildcards)


def get_support_files():
    return [job.path for job in SUPPORT_JOBS]


def get_support_wildcard_constraints():
    """The probes' own constraints (their dtypes and devices need not be the cells')."""
    values = dtype_support.wildcard_values(SUPPORT_JOBS)
    return {key: "|".join(re.escape(v) for v in vals) or "(?!)" for key, vals in values.items()}
