"""Included bundles are checked against their manifest before any job starts, cheaply.

A published bundle (`results/publish/<name>/`) lists the sha256 of every file in manifest.json.
The aggregation verified it, but only after the study had timed all its own cells. The Snakefile
now verifies every included bundle while it builds the plan, and refuses the run with one line
naming the file. Hashing a large bundle on every start would cost seconds, so each file's sha256
is cached by its path, size, modification time and inode (`.speedatlas/sha256-cache.json`): a
file is hashed again only when one of those changed.

Orchestration side.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from speedatlas.analyze import resultsets

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
        digest = resultsets.sha256(real)
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


def verify_bundles(sets: Sequence[resultsets.ResultSet], cache_path: str | os.PathLike[str] = CACHE) -> int:
    """Raise MergeError (one line, naming the entry and the file) if a bundle's cell file does not
    match its manifest. Returns how many files had to be hashed."""
    cache = HashCache(cache_path)
    try:
        for index, result_set in enumerate(sets):
            try:
                resultsets.verify_manifest(result_set, digest=cache.sha256)
            except resultsets.MergeError as error:
                raise resultsets.MergeError(f"include_results[{index}]: {error}") from None
    finally:
        cache.save()
    return cache.hashed
