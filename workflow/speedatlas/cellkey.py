"""The cell key: what identifies a cell, in the one place every stage reads it.

A cell is stored at a Hive path whose folders are its key (the matrix writes the path, result
sets read it back), and every row of its file repeats the key as columns (the runner writes them,
the tables group by them). Three keys are spelled differently in the path and in the columns,
for history's sake: files on disk and published bundles use both spellings, so they are mapped
here rather than renamed (path `torch` = column `torch_requested`, `batch` = `batch_size`; of
the settings, `warmup` = `warmup_steps`).

Standard library only: below every stage (plan, measure, analyze and present all import it).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePath
from typing import Any

# Path partitions, in order (the matrix's Cell fields of the same names).
KEYS = ("machine", "workload", "torch", "device", "model", "dtype", "mode", "variant", "batch")
# Path partition -> the column of a cell file holding the same value.
COLUMNS = {key: key for key in KEYS} | {"torch": "torch_requested", "batch": "batch_size"}
# The key as columns, in path order: what the tables group a cell's rows by.
KEY_COLUMNS = tuple(COLUMNS[key] for key in KEYS)
# Settings of a cell (its spec's names) -> the columns that repeat them on every row.
SETTING_COLUMNS = {"input_size": "input_size", "num_classes": "num_classes", "warmup": "warmup_steps",
                   "repeats": "repeats", "steps_per_repeat": "steps_per_repeat", "seed": "seed"}

CELL_FILE = "cell.parquet"
CELL_PATTERN = "results/cells/" + "/".join(f"{key}={{{key}}}" for key in KEYS) + "/" + CELL_FILE
# One fresh process of a cell (its own job): the samples it timed, beside a small JSON receipt
# (status, median, duration) that later processes of the cell read to decide whether they are
# needed. The cell file is made from them. Outside results/cells, so no reader of cells sees them.
PROCESS_PATTERN = "results/processes/" + "/".join(f"{key}={{{key}}}" for key in KEYS) + "/process-{process}.parquet"
RECEIPT_SUFFIX = ".json"


def receipt_path(part: str) -> str:
    """The receipt beside a process's samples."""
    return part[: -len(".parquet")] + RECEIPT_SUFFIX if part.endswith(".parquet") else part + RECEIPT_SUFFIX


def process_part(part: str, process: int) -> str:
    """Process `process`'s samples, beside another process's part of the same cell."""
    folder, _, _ = part.rpartition("/")
    return f"{folder}/process-{process}.parquet"

# What a folder name of the key may hold: every label the config allows (devices with ':',
# torch versions with '.'). Labels reach file paths, report headings and sentences.
SAFE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def cell_path(key: dict[str, Any]) -> str:
    """The cell file of a key given by path names ({"machine": ..., "batch": 8, ...})."""
    return CELL_PATTERN.format(**key)


def path_key(path: str) -> dict[str, str] | None:
    """The key a cell file's folders name ({"machine": "m1max", ..., "batch": "8"}, as text), read
    from the end of its path (any root: results/cells, a bundle's cells/); None if they do not."""
    parts = PurePath(path).parts[-len(KEYS) - 1 : -1]
    if len(parts) != len(KEYS):
        return None
    key = {}
    for part, name in zip(parts, KEYS):
        label, equals, value = part.partition("=")
        if not equals or label != name:
            return None
        key[name] = value
    return key


def spec_sha256(spec: dict[str, Any] | str) -> str:
    """sha256 of the cell's spec (`Cell.spec()`, with its environment where it has one: the
    params of its cell_file job): every row records it (speedatlas.measure.cell_merge), so a file
    can be checked against the spec its path stands for now. Given as a dict, what belongs to one
    process of the cell (`process`, and keys starting with `_`) is left out.

    A spec given as text must be the job's JSON as the plan writes it (sorted keys, json's default
    separators): the hash of its bytes is then the hash of the parsed spec, without parsing it.
    """
    if not isinstance(spec, str):
        kept = {name: value for name, value in spec.items() if name != "process" and not name.startswith("_")}
        spec = json.dumps(kept, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()


def model_source_columns(spec: dict[str, Any]) -> dict[str, Any]:
    """What built the model (torchvision, a built-in transformer, a factory and its file's hash)
    and the kind of input; the vocabulary of token inputs (speedatlas.measure.models.custom)."""
    source = spec.get("model_source") or {}
    given = source.get("input", {"kind": "image"})
    if not source:
        label = "torchvision"
    elif "builtin" in source:
        label = f"builtin:{source['builtin']}"
    else:
        label = f"factory:{source['factory']}@sha256:{source['sha256'][:12]}"
    return {"model_source": label, "input_kind": given["kind"], "vocab_size": given.get("vocab")}


def row_columns(spec: dict[str, Any], protocol: int) -> dict[str, Any]:
    """The cell's key and settings, repeated on every row of its file (the runner's rows, and the
    one row the supervisor writes for a cell that crashed or could not start)."""
    return {
        **{COLUMNS[key]: spec[key] for key in KEYS},
        **{column: spec[name] for name, column in SETTING_COLUMNS.items()},
        "protocol": protocol,
        "process": spec.get("process", 0),
        **model_source_columns(spec),
    }


def pilot_of(sampling: dict[str, Any]) -> int:
    """Processes of a cell that always run: the precision rule's pilot, or every process of a
    fixed count (a cell's `sampling`: {"processes": P} or the rule's {"precision", "pilot", ...})."""
    return sampling.get("processes") or sampling["pilot"]


def most_processes(sampling: dict[str, Any]) -> int:
    """The most processes a cell may take: its fixed count, or the precision rule's max_processes."""
    return sampling.get("processes") or sampling["max_processes"]


def process_spec(cell_spec: dict[str, Any], process: int) -> dict[str, Any]:
    """What process `process` of a cell measures, from the cell's spec: the measurement alone for
    a process that always runs (so a new precision target re-measures none of them), with the
    precision rule for one after the pilot (whether it runs depends on the rule)."""
    sampling = cell_spec.get("sampling") or {"processes": 1}
    spec = {name: value for name, value in cell_spec.items() if name != "sampling"}
    spec["process"] = process
    if process >= pilot_of(sampling):
        spec["sampling"] = sampling
    return spec
