"""Result sets of other machines: read their cells and merge them with this study's.

Where they are and whether a bundle is intact was settled while the plan was built
(speedatlas.plan.comparisons). A result set is a Hive-partitioned tree of cell files (`machine=…/workload=…/…/cell.parquet`) as
another machine's `results/cells` holds it, or a published bundle (`results/publish/<name>/`, with
`cells/` and a sha256 manifest). Cell files carry their own environment columns, so merging
loses nothing. Like pyperf, we refuse to merge sets that disagree about what a machine is (one
machine label, different CPUs) or that hold different measurements of the same cell.

Orchestration side (pyarrow, pandas); pure functions of paths and DataFrames.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow.dataset as ds

from speedatlas import cellkey
from speedatlas.measure import cellio
from speedatlas.plan.comparisons import PARTITIONING, HashCache, MergeError, ResultSet, locate, verify_manifest

LOCAL_SOURCE = "this study"

# Columns an included cell file must have; newer optional columns may be missing (older sets).
REQUIRED_COLUMNS = (*cellkey.KEY_COLUMNS, "status", "error", "step_time_s")
# What identifies a machine (pyperf's "checked metadata"): per label, and per label and device.
CHECKED_PER_MACHINE = ("cpu_model",)
CHECKED_PER_DEVICE = ("device_name",)


def read_result_set(result_set: ResultSet, files: Iterable[str] | None = None) -> pd.DataFrame:
    """Rows of a set's cell files; each file's folder names must agree with its key columns.

    Columns added to the cell schema after the set was written are read as nulls.
    """
    files = list(result_set.files if files is None else files)
    if not files:
        return cellio.arrow_schema().empty_table().to_pandas()
    discovered = ds.dataset(files, format="parquet", partitioning=PARTITIONING, partition_base_dir=result_set.root)
    for fragment in discovered.get_fragments():
        present = fragment.physical_schema.names
        missing = [c for c in REQUIRED_COLUMNS if c not in present]
        if missing:
            raise MergeError(f"{fragment.path}: not a speedatlas cell file (missing columns {missing})")
        keys = ds.get_partition_keys(fragment.partition_expression)
        row = fragment.to_table(columns=list(cellkey.KEY_COLUMNS)).slice(0, 1).to_pylist()
        if not row:
            raise MergeError(f"{fragment.path}: an empty cell file")
        for partition, column in cellkey.COLUMNS.items():
            if str(keys.get(partition)) != str(row[0][column]):
                raise MergeError(
                    f"{fragment.path}: its folder says {partition}={keys.get(partition)} but its rows say "
                    f"{column}={row[0][column]}; cell files must stay where the pipeline wrote them"
                )
    return ds.dataset(files, format="parquet", schema=cellio.arrow_schema()).to_table().to_pandas()


def merge(parts: Sequence[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Concatenate the rows of several sources (first = this study), refusing inconsistent sets.

    Refused: one machine label whose sources share no CPU model (or, for one device, no device
    name): two machines under one label; one model label built from two different sources
    (model_source: another factory file or hash); and one cell key in two sources with different
    measurements. The same cell with the same rows in two sources (a bundle included twice)
    is kept once.
    """
    if not parts:
        return cellio.arrow_schema().empty_table().to_pandas()
    non_empty = [(source, frame) for source, frame in parts if len(frame)]
    if len(non_empty) < 2:  # one source: nothing to check against, nothing to copy
        return (non_empty or parts)[0][1]
    frames = [frame.assign(_source=source) for source, frame in non_empty]
    raw = pd.concat(frames, ignore_index=True)
    _check_machines(raw)
    _check_model_sources(raw)
    raw = _drop_duplicate_cells(raw)
    return raw.drop(columns="_source").reset_index(drop=True)


def _check_model_sources(raw: pd.DataFrame) -> None:
    """One model label, one model: a factory edited between two machines' runs (another sha256),
    or a factory named like a built-in, would compare different networks as if they were one."""
    if "model_source" not in raw:
        return
    known = raw[raw["model_source"].notna()]
    known = known.assign(_identity=known["model_source"].map(model_identity))
    for model, group in known.groupby("model", sort=True):
        sources = group.drop_duplicates("_identity")
        if len(sources) > 1:
            first, second = sources.iloc[0], sources.iloc[1]
            raise MergeError(
                f"model label {model!r} names two different models: {first['model_source']} in "
                f"{first['_source']!r} but {second['model_source']} in {second['_source']!r}. Measure "
                "the same factory file everywhere, or give each version its own name"
            )


def model_identity(label: str) -> str:
    """What makes two cells' models one model: for a factory, its function and its file's sha256,
    not where the file lay (`factory:/home/me/a/model.py:build@sha256:…` on one machine is
    `factory:factories/a/model.py:build@sha256:…` where its published bundle was run again);
    any other label as it is."""
    kind, _, rest = label.partition(":")
    target, marker, digest = rest.rpartition("@sha256:")
    if kind != "factory" or not marker:
        return label
    return f"factory:{target.rpartition(':')[2]}@sha256:{digest}"


def _check_machines(raw: pd.DataFrame) -> None:
    checks = [(("machine",), column) for column in CHECKED_PER_MACHINE]
    checks += [(("machine", "device"), column) for column in CHECKED_PER_DEVICE]
    for keys, column in checks:
        known = raw[raw[column].notna()]
        for key, group in known.groupby(list(keys), sort=True):
            by_source = group.groupby("_source", sort=False)[column].agg(lambda v: frozenset(v))
            if len(by_source) < 2:
                continue
            sources = list(by_source.index)
            for i, a in enumerate(sources):
                for b in sources[i + 1 :]:
                    if not by_source[a] & by_source[b]:
                        label = "/".join(map(str, key if isinstance(key, tuple) else (key,)))
                        raise MergeError(
                            f"machine label {label!r} means two different machines: {column} is "
                            f"{sorted(by_source[a])} in {a!r} but {sorted(by_source[b])} in {b!r}. "
                            "Give each machine its own `machine:` label, or leave one result set out"
                        )


def _drop_duplicate_cells(raw: pd.DataFrame) -> pd.DataFrame:
    """Keep one copy of a cell found in several sources; refuse copies that differ.

    Vectorised over the duplicated cells: one groupby fingerprints every (cell, source) pair by
    its statuses and sorted step times (a loop of masks over the whole frame grew quadratically).
    """
    keys = list(cellkey.KEY_COLUMNS)
    sources_per_key = raw.groupby(keys, sort=False)["_source"].nunique()
    duplicated = sources_per_key[sources_per_key > 1]
    if duplicated.empty:
        return raw
    in_duplicated = pd.MultiIndex.from_frame(raw[keys]).isin(duplicated.index)
    copies = raw[in_duplicated]
    prints = copies.groupby(keys + ["_source"], sort=False).agg(
        statuses=("status", lambda s: tuple(sorted(s.unique()))),
        times=("step_time_s", lambda s: tuple(sorted(s.dropna().round(12)))),
    )
    differing = prints.groupby(level=keys, sort=False).nunique().max(axis=1) > 1
    if differing.any():
        key = differing[differing].index[0]
        sources = list(dict.fromkeys(prints.loc[key].index))
        described = ", ".join(f"{k}={v}" for k, v in zip(keys, key))
        raise MergeError(
            f"cell ({described}) is in {sources[0]!r} and {sources[1]!r} with different measurements; "
            "keep it in one result set only (or give the machines different labels)"
        )
    first_source = copies.drop_duplicates(keys).set_index(keys)["_source"]
    kept_source = first_source.reindex(pd.MultiIndex.from_frame(copies[keys])).to_numpy()
    drop = pd.Series(False, index=raw.index)
    drop[copies.index[copies["_source"].to_numpy() != kept_source]] = True
    return raw[~drop.to_numpy()]


def read_study(
    local_files: Sequence[str],
    include_roots: Sequence[str],
    included: Sequence[str],
    read_local,
) -> pd.DataFrame:
    """This study's cells (`read_local(paths)`) merged with the included ones, all checked.

    `include_roots` are the configured `include_results` entries (re-located here so that the
    aggregate job verifies bundles' manifests); `included` the extra files the rule declared.
    """
    parts = [(LOCAL_SOURCE, read_local(local_files))]
    wanted = {os.path.realpath(p) for p in included}
    for index, entry in enumerate(include_roots):
        result_set = locate(entry, index)
        verify_manifest(result_set, digest=HashCache().sha256)  # checked at start; cached hashes
        files = [f for f in result_set.files if os.path.realpath(f) in wanted]
        wanted -= {os.path.realpath(f) for f in files}
        parts.append((entry, read_result_set(result_set, files)))
    return merge(parts)
