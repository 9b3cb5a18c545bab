"""What a study is compared against, found and checked while the plan is built.

- Result sets of other machines (`include_results`): a results/ folder, a cells tree, one
  machine=… folder or a published bundle, located on disk; a bundle's files are checked against
  the sha256 its manifest lists, before any job starts (hashes cached by path, size, mtime and
  inode in `.speedatlas/sha256-cache.json`, so a large bundle costs seconds once, not every run).
- The cross-machine baselines (`cross_machine_baselines`): each must name a machine and device of
  the study.
- The published seed figures (`published`): the CSV the seed study's epoch times come from.
Every mistake is refused with one sentence naming the key (ConfigError or MergeError), before
any cell is timed. Reading and merging the sets' cells is analysis (speedatlas.analyze.resultsets).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import yaml

from speedatlas import cellkey
from speedatlas.plan.config import ConfigError

MANIFEST = "manifest.json"


PARTITIONING = ds.partitioning(pa.schema([(key, pa.string()) for key in cellkey.KEYS]), flavor="hive")


class MergeError(ValueError):
    """Result sets that cannot be merged, or an include entry that holds no result set."""


@dataclass(frozen=True)
class ResultSet:
    """One configured `include_results` entry, located on disk."""

    source: str  # the entry as the user wrote it
    root: str  # Hive root: the folder holding the machine=… folders
    files: tuple[str, ...]  # its cell files, sorted
    manifest: str | None  # a published bundle's manifest.json

    @property
    def machines(self) -> list[str]:
        return sorted({machine_of(path, self.root) for path in self.files})


def machine_of(path: str, root: str) -> str:
    """The machine label of a cell file, from its first path partition below the root."""
    first = Path(os.path.relpath(path, root)).parts[0]
    return first.split("=", 1)[1]


def _has_machine_folders(folder: Path) -> bool:
    return folder.is_dir() and any(c.is_dir() and c.name.startswith("machine=") for c in folder.iterdir())


def locate(entry: str, index: int = 0) -> ResultSet:
    """Find the Hive root, cell files and manifest of one `include_results` entry.

    Accepts a published bundle (holding manifest.json and cells/), a results/ folder, a
    results/cells tree, or a single machine=… folder. Hidden and `_` files (unfinished writes are
    `.cell-*.tmp`) and files that are not at a cell's depth are ignored.
    """
    key = f"include_results[{index}]"
    path = Path(entry)
    if not path.exists():
        raise MergeError(f"key '{key}': {entry!r} does not exist")
    if path.is_file() and path.name == MANIFEST:
        path = path.parent
    if not path.is_dir():
        raise MergeError(f"key '{key}': {entry!r} is not a folder; give a results/ folder, a cells tree or a bundle")
    manifest = path / MANIFEST
    within = None
    for candidate in (path / "cells", path / "results" / "cells", path):
        if _has_machine_folders(candidate):
            root = within = candidate
            break
    else:
        if path.name.startswith("machine="):
            root, within = path.parent, path
        else:
            raise MergeError(
                f"key '{key}': {entry!r} holds no result set; expected machine=… folders, a results/ "
                "folder or a published bundle (results/publish/<name>/)"
            )
    dataset = ds.dataset(str(within), format="parquet", partitioning=PARTITIONING, ignore_prefixes=[".", "_"])
    files = tuple(sorted(f for f in dataset.files if _is_cell_path(f, str(root))))
    for path in files:
        unsafe = [part for part in Path(os.path.relpath(path, root)).parts[:-1]
                  if not cellkey.SAFE_LABEL.fullmatch(part.split("=", 1)[1])]
        if unsafe:
            raise MergeError(f"key '{key}': {path!r} has a folder name that is not a label ({unsafe[0]!r}); "
                             "labels are letters, digits, '.', '_', ':' and '-'")
    if not files:
        raise MergeError(f"key '{key}': no cell files under {str(within)!r}")
    return ResultSet(entry, str(root), files, str(manifest) if manifest.is_file() else None)


def _is_cell_path(path: str, root: str) -> bool:
    parts = Path(os.path.relpath(path, root)).parts
    return (
        len(parts) == len(cellkey.KEYS) + 1
        and parts[-1] == cellkey.CELL_FILE
        and all(part.startswith(f"{key}=") for part, key in zip(parts, cellkey.KEYS))
    )


def included_files(sets: Sequence[ResultSet], local_files: Iterable[str], local_tree: str | None = None) -> list[str]:
    """Cell files the included sets add to this study, each once.

    Files that are this study's own cells are left out, and so is anything under `local_tree`
    (this machine's own results/cells/machine=<label> folder: its cells are the ones the config
    asks for, never stale ones from an older config).
    """
    if not sets:  # the usual study: no realpath of every one of its cells (0.7 s at 10,800)
        return []
    own = {os.path.realpath(p) for p in local_files}
    local_tree = os.path.realpath(local_tree) + os.sep if local_tree else None
    seen, out = set(), []
    for result_set in sets:
        for path in result_set.files:
            real = os.path.realpath(path)
            if real in own or real in seen or (local_tree and real.startswith(local_tree)):
                continue
            seen.add(real)
            out.append(path)
    return out


def sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_manifest(result_set: ResultSet, digest=None) -> None:
    """A bundle's cell files must match the checksums its manifest lists (no silent corruption).

    `digest(path)` gives a file's sha256 (default: read it; HashCache below caches it)."""
    digest = digest or sha256
    if result_set.manifest is None:
        return
    bundle = Path(result_set.manifest).parent
    listed = json.loads(Path(result_set.manifest).read_text()).get("files", {})
    for path in result_set.files:
        name = Path(os.path.relpath(path, bundle)).as_posix()
        entry = listed.get(name)
        if entry is None:
            raise MergeError(f"{result_set.source}: {name} is not listed in its {MANIFEST}; the bundle was changed by hand")
        if ("bytes" in entry and os.path.getsize(path) != entry["bytes"]) or digest(path) != entry["sha256"]:
            raise MergeError(f"{result_set.source}: {name} does not match the sha256 in its {MANIFEST}; the file is corrupt or was edited")


def devices_by_machine(sets: Sequence[ResultSet]) -> dict[str, set[str]]:
    """Machine labels and their devices in the included sets (from the folder names)."""
    found: dict[str, set[str]] = {}
    for result_set in sets:
        for path in result_set.files:
            parts = Path(os.path.relpath(path, result_set.root)).parts
            found.setdefault(parts[0].split("=", 1)[1], set()).add(parts[3].split("=", 1)[1])
    return found


CACHE = Path(".speedatlas") / "sha256-cache.json"


class HashCache:
    """sha256 of files, remembered by (size, mtime_ns, inode) of each real path."""

    def __init__(self, path: str | os.PathLike[str] = CACHE):
        self.path = Path(path)
        try:
            self.entries: dict[str, list] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False
        self.hashed = 0  # files actually read (the rest came from the cache)

    def sha256(self, path: str | os.PathLike[str]) -> str:
        real = os.path.realpath(path)
        info = os.stat(real)
        key = [info.st_size, info.st_mtime_ns, info.st_ino]
        entry = self.entries.get(real)
        if entry and entry[:3] == key:
            return entry[3]
        digest = sha256(real)
        self.hashed += 1
        self.entries[real] = [*key, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries, sort_keys=True))
            os.replace(tmp, self.path)
        except OSError:  # a read-only working directory: verify without remembering
            pass


def verify_bundles(sets: Sequence[ResultSet], cache_path: str | os.PathLike[str] = CACHE, remember: bool = True) -> int:
    """Raise MergeError (one line, naming the entry and the file) if a bundle's cell file does not
    match its manifest. Returns how many files had to be hashed. `remember=False` (a dry run)
    reads the cache but writes nothing."""
    cache = HashCache(cache_path)
    try:
        for index, result_set in enumerate(sets):
            try:
                verify_manifest(result_set, digest=cache.sha256)
            except MergeError as error:
                raise MergeError(f"include_results[{index}]: {error}") from None
    finally:
        if remember:
            cache.save()
    return cache.hashed


def resolve_published(value: str | None, repo: Path, cwd: Path) -> Path | None:
    """The `published` CSV: as given (absolute or relative to the working directory), else
    relative to the speedatlas checkout (where config/seed-figures/ lives)."""
    if value is None:
        return None
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [cwd / path, repo / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(
        f"key 'published': {value!r} is not a file (looked in {', '.join(str(c.parent) for c in candidates)})"
    )


# How a machine and device are named in tables, sentences and cross_machine_baselines.
SEPARATOR = "/"


def label(machine: str, device: str) -> str:
    """'m1max/mps': how a machine and device are named in tables and sentences."""
    return f"{machine}{SEPARATOR}{device}"


def split(value: str) -> tuple[str, str]:
    machine, _, device = value.partition(SEPARATOR)
    return machine, device


def check_baselines(config: dict, devices_by_machine: dict[str, set[str]]) -> None:
    """Each `cross_machine_baselines` entry must name a machine and device of the study.

    `devices_by_machine` holds the included result sets' machines and their devices; this
    machine's devices come from the config.
    """
    known = {config["machine"]: set(config["devices"])}
    for machine, devices in devices_by_machine.items():
        known.setdefault(machine, set()).update(devices)
    for index, entry in enumerate(config["cross_machine_baselines"]):
        machine, device = split(entry)
        if machine not in known:
            raise ConfigError(
                f"key 'cross_machine_baselines[{index}]': machine {machine!r} is neither this machine "
                f"({config['machine']!r}) nor in include_results; known machines: {', '.join(sorted(known))}"
            )
        if device not in known[machine]:
            raise ConfigError(
                f"key 'cross_machine_baselines[{index}]': machine {machine!r} has no device {device!r}; "
                f"its devices: {', '.join(sorted(known[machine]))}"
            )


# The result set the report suggests comparing with when a study has no device comparison of its
# own: shipped in the repository, measured on a lent H100 (published/README.md).
SHIPPED = {"name": "h100", "label": "H100"}


def shipped_result_set(repo: Path, cwd: Path) -> dict | None:
    """Where the shipped H100 result set is, as a study in `cwd` would name it in
    `include_results`, and which (model, batch size) cells and input size it holds (read from its
    manifest and resolved config: the summary tells a study whose cells have no counterpart there
    which ones to take). None when the repository has no such bundle."""
    bundle = repo / "published" / SHIPPED["name"]
    manifest = bundle / MANIFEST
    if not manifest.is_file():
        return None
    cells = set()
    for name in json.loads(manifest.read_text())["files"]:
        parts = dict(part.split("=", 1) for part in Path(name).parts[1:-1] if "=" in part)
        if name.startswith("cells/") and "model" in parts and "batch" in parts:
            cells.add((parts["model"], int(parts["batch"])))
    resolved = bundle / "config" / "resolved.yaml"
    input_size = yaml.safe_load(resolved.read_text()).get("input_size") if resolved.is_file() else None
    relative = os.path.relpath(bundle, cwd)  # as the README runs it, from the repository: published/h100
    return {"path": str(bundle) if relative.startswith("..") else relative, "label": SHIPPED["label"], "cells": sorted(cells),
            "input_size": input_size}
