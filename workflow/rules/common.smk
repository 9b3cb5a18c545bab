# Config loading, validation, the cell matrix and the final targets. Rules live in one .smk per
# stage, and the functions they read in workflow/rules/inputs/<stage>.smk.
import json
import mimetypes
import os
import re
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO / "workflow"))

from speedatlas import cellkey  # noqa: E402
from speedatlas.plan import config as study_config  # noqa: E402
from speedatlas.measure import mlx  # noqa: E402 - names only, no MLX import
from speedatlas.plan import (
    comparisons,
    invocation,
    launcher,
    matrix,
    mlx_env,
    support_jobs,
    terminal,
    torch_envs,
)  # noqa: E402
from speedatlas.plan.job_env import export_job_environment  # noqa: E402
from speedatlas.plan.workarounds import quote_script_interpreter  # noqa: E402

DEFAULT_CONFIG = REPO / "config" / "config.yaml"

# A checkout under a folder with a space (its .venv too): script rules quote the interpreter.
quote_script_interpreter()


def load_study_config(cli_config, cli_configfiles):
    """The embedded default unless --configfile is given; --config values apply on top.

    We avoid the `configfile:` directive because it merges the default into every user config,
    so a key left out of config/m1max.yaml would silently take the quick default's value.
    """
    if cli_configfiles:
        return {"study": study_config.default_study_name(cli_configfiles), **cli_config}
    with open(DEFAULT_CONFIG) as handle:
        base = yaml.safe_load(handle)
    return {"study": "default", **base, **cli_config}


# A dry run changes nothing on disk: the parse-time steps below read, and say what a run would do.
DRY_RUN = invocation.is_dry_run()
# A person's terminal shows one line per finished cell and the report's path; Snakemake's own
# per-job lines go to its log (plan/terminal.py).
if workflow.is_main_process:
    terminal.quiet_snakemake(DRY_RUN)
# One run at a time in this working directory: a second run, or --unlock, beside a live one is
# refused in one sentence (a dry run only says so). Not in cluster jobs (they re-read this).
if workflow.is_main_process:
    from speedatlas.plan import live_run  # noqa: E402

    try:
        for line in filter(None, [live_run.claim(dry_run=DRY_RUN)]):
            print(line, file=sys.stderr)
    except live_run.LiveRun as error:
        raise WorkflowError(f"speedatlas: {error}") from None
    except OSError as error:
        raise WorkflowError(
            f"speedatlas: cannot take the run lock {live_run.LOCK}: {error.strerror or error}"
        ) from None
try:
    STUDY = study_config.prepare(
        load_study_config(config, workflow.overwrite_configfiles),
        known_models=study_config.torchvision_models(study_config.cache_dir(), write=not DRY_RUN),
    )
except study_config.ConfigError as error:
    raise WorkflowError(f"speedatlas config error: {error}") from None
# This study's tables, plots and report (its cells are shared by every study of the machine):
# results/studies/<study>/, so a second study never replaces the first's report.
STUDY_DIR = f"results/studies/{STUDY['study']}"

# A study's size is counted before any cell is built: above max_cells it is refused in one line.
from speedatlas.plan import study_size  # noqa: E402

try:
    study_size.check(STUDY, launcher.wanted(STUDY["launcher"]))
except study_config.ConfigError as error:
    raise WorkflowError(f"speedatlas config error: {error}") from None
CELLS = matrix.expand(STUDY)
CELLS_BY_PATH = matrix.index_by_path(CELLS)
# Each process of a cell is a job of its own, run in rounds across the study, up to
# matrix.ROUNDS_MAX_CELLS cells; a larger study runs each cell's processes back to back in one job.
# (test hook: SPEEDATLAS_ROUNDS_MAX_CELLS moves the threshold; never set in normal use)
ROUNDS = len(CELLS) <= int(os.environ.get("SPEEDATLAS_ROUNDS_MAX_CELLS", matrix.ROUNDS_MAX_CELLS))
# Unreadable cell files (cut short) are set aside, never deleted, before the plan is built, so
# this very run measures them again (a dry run only names them). Not in cluster jobs (they re-read this).
if workflow.is_main_process:
    from speedatlas.plan import quarantine  # noqa: E402

    try:
        for line in quarantine.quarantine_cells([cell.path for cell in CELLS], dry_run=DRY_RUN):
            print(line, file=sys.stderr)
    except quarantine.CannotSetAside as error:
        raise WorkflowError(f"speedatlas: {error}") from None
SUPPORT_JOBS = support_jobs.expand(STUDY)
SUPPORT_BY_PATH = {job.path: job for job in SUPPORT_JOBS}
try:
    PUBLISHED = comparisons.resolve_published(STUDY["published"], REPO, Path.cwd())
except study_config.ConfigError as error:
    raise WorkflowError(f"speedatlas config error: {error}") from None

# `snakemake --report` embeds tables by MIME type; Parquet is not in Python's list.
mimetypes.add_type("application/vnd.apache.parquet", ".parquet")

# Result sets of other machines (include_results): located and checked before any job starts.
try:
    INCLUDED_SETS = [comparisons.locate(entry, i) for i, entry in enumerate(STUDY["include_results"])]
    comparisons.check_baselines(STUDY, comparisons.devices_by_machine(INCLUDED_SETS))
except (comparisons.MergeError, study_config.ConfigError) as error:
    raise WorkflowError(f"speedatlas config error: {error}") from None
# Bundles are checked against their manifest.json now, not after every cell has been timed.
try:
    comparisons.verify_bundles(INCLUDED_SETS, remember=not DRY_RUN)
except comparisons.MergeError as error:
    raise WorkflowError(f"speedatlas: an included bundle was changed: {error}") from None
INCLUDED_FILES = comparisons.included_files(
    INCLUDED_SETS, [cell.path for cell in CELLS], f"results/cells/machine={STUDY['machine']}"
)

# Jobs inherit the runner package, `python` = the interpreter running snakemake (torch version
# "current") and the pipeline commit (recorded in each cell, deliberately not a rerun trigger).
export_job_environment(REPO)

# A cell job that cannot write its file must say so on the terminal even when its log cannot be
# written either (a full disk): shell jobs keep the terminal's stderr open as descriptor 3 for
# speedatlas.measure.process.notice. The prefix is added when a job runs, not part of any rule's text: no rerun.
shell.prefix(
    ("set -euo pipefail; " if os.path.basename(shell.get_executable() or "") == "bash" else "")
    + "exec 3>&2; export SPEEDATLAS_NOTICE_FD=3; "
)


# Cells of torch "current" fork from one process that imported torch once (launcher), which
# cuts the per-cell fixed cost; it starts only when jobs run, never for a dry run.
onstart:
    launcher.check_machine_lock()
    terminal.start([cell.path for cell in CELLS])
    launcher.start(STUDY["launcher"])


onsuccess:
    launcher.stop()
    terminal.finish(STUDY_DIR)


onerror:
    launcher.stop()


# Timing jobs never overlap: the bench rule holds one unit of this resource. Local runs ignore
# a resource without a limit, so the limit is set here (and in profiles/default) by default.
workflow.global_resources.setdefault("speedatlas_timing", 1)

# concurrency: device (on a machine with 2+ GPUs) gives each GPU a timing slot of its own:
# resources per slot and for the GPUs, the slot table exported to the jobs (plan/concurrency.py).
from speedatlas.plan import concurrency  # noqa: E402

SLOTS = concurrency.study_slots(STUDY["concurrency"])
for resource, limit in concurrency.limits(SLOTS).items():
    workflow.global_resources.setdefault(resource, limit)
os.environ.update(concurrency.job_environment(STUDY["concurrency"], SLOTS))
# (only with slots: reading workflow.cores raises when no --cores was given, as on a cluster)
if SLOTS and concurrency.cores_warning(workflow.cores, SLOTS):
    print(concurrency.cores_warning(workflow.cores, SLOTS), file=sys.stderr)


def get_machine_resources():
    """A job that takes the whole machine in either mode (torch builds, dtype probes)."""
    return concurrency.machine_resources(SLOTS)


wildcard_constraints:
    **{key: "|".join(re.escape(value) for value in values) for key, values in matrix.wildcard_values(CELLS).items()},


def get_configfiles():
    """The config files this run was given (absolute paths), else the embedded default."""
    return [str(f) for f in workflow.overwrite_configfiles] or [str(DEFAULT_CONFIG)]


def get_final_output():
    return [
        f"{STUDY_DIR}/report.md",
        f"{STUDY_DIR}/tables/cells.parquet",
        f"{STUDY_DIR}/tables/speedups.parquet",
        f"{STUDY_DIR}/tables/speedups.csv",
        f"{STUDY_DIR}/tables/speedups.md",
        f"{STUDY_DIR}/plots/throughput.png",
        *get_torch_versions_plot().values(),
        f"{STUDY_DIR}/plots/speedup_heatmap.png",
        f"{STUDY_DIR}/plots/noise.png",
        f"{STUDY_DIR}/plots/energy.png",
        *get_epoch_outputs(),
        *get_support_outputs(),
        *get_mlx_outputs(),
    ]


def repo_relative(path):
    """A config path as a reader can use it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def get_study_summary():
    """The resolved config for the report (plain JSON, canonical order): every key of the study
    with its defaults filled in, the number of cells and the config files that were given."""
    configfiles = [repo_relative(f) for f in workflow.overwrite_configfiles] or [repo_relative(DEFAULT_CONFIG)]
    return json.dumps({**STUDY, "cells": len(CELLS), "configfiles": configfiles}, sort_keys=True)
