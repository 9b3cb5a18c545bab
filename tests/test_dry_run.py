"""A dry run changes nothing on disk and starts nothing (issue 26, item 5; issue 27, item 11).

Snakemake itself keeps its bookkeeping in .snakemake/ and its own cache (~/.cache/snakemake) even
for a dry run; everything else in the study's folder, the user's cache and the temporary folder
(where a fork server's socket would appear) must be exactly as before, also with a damaged cell
file and a results/ folder the user cannot write to. (The bundle check's hash cache: test_faults.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SNAKEFILE, write_config

from speedatlas.plan import invocation

CONFIG = {"machine": "dry", "models": [{"name": "resnet18", "batch_sizes": [1, 2], "modes": ["infer"]}],
          "input_size": 32, "num_classes": 4, "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 1, "processes": 1},
          "cpu_threads": 1, "dtype_support": {"enabled": False}}


@pytest.mark.parametrize(("argv", "dry"), [
    (["snakemake", "-n"], True), (["snakemake", "--cores", "1", "-np"], True), (["snakemake", "--dry-run"], True),
    (["snakemake", "--dryrun", "--cores", "1"], True), (["snakemake", "--cores", "1"], False),
    (["snakemake", "--cores", "1", "--configfile", "n.yaml"], False), (["snakemake", "-c1"], False),
    (["snakemake", "--", "-n"], False),
])
def test_the_command_line_says_whether_it_is_a_dry_run(argv, dry):
    assert invocation.is_dry_run(argv) is dry


def snapshot(*roots: Path) -> dict[str, tuple]:
    out = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if {".snakemake", "snakemake"} & set(path.relative_to(root).parts):
                continue  # Snakemake's own bookkeeping and cache
            info = path.lstat()
            out[str(path)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_size, info.st_mtime_ns)
    return out


@pytest.mark.slow
def test_a_dry_run_changes_nothing_and_starts_nothing(tmp_path):
    study, cache, tmp = tmp_path / "study", tmp_path / "cache", tmp_path / "tmp"
    for folder in (study, cache, tmp):
        folder.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "TMPDIR": str(tmp), "SPEEDATLAS_LOCK": str(tmp_path / "lock")}
    configfile = write_config(study, CONFIG)
    base = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(study), "--configfile",
            str(configfile)]
    assert subprocess.run([*base, "--cores", "1"], env=env, capture_output=True, timeout=600).returncode == 0
    # a cell file cut short: what the parse-time check looks at
    cell = next((study / "results" / "cells").rglob("cell.parquet"))
    cell.write_bytes(cell.read_bytes()[:100])
    shutil.rmtree(cache)
    cache.mkdir()  # no cached model list: a real run would write one
    before = snapshot(study, cache, tmp)

    result = subprocess.run([*base, "-n", "--cores", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is unreadable" in result.stderr and "a run without --dry-run sets it aside" in result.stderr
    assert snapshot(study, cache, tmp) == before

    # with results/ read-only the dry run still changes nothing and never fails in our checks;
    # Snakemake itself may refuse a plan whose jobs would write into write-protected files
    with read_only(study / "results"):
        before = snapshot(study, cache, tmp)
        result = subprocess.run([*base, "-n", "--cores", "1"], env=env, capture_output=True, text=True, timeout=600)
        terminal = result.stdout + result.stderr
        assert "a run without --dry-run sets it aside" in terminal and "Traceback" not in terminal
        assert result.returncode == 0 or "Write-protected output files" in terminal, terminal[-3000:]
        assert snapshot(study, cache, tmp) == before
        # a real run cannot move the file aside: one sentence that says what to do, no stack
        result = subprocess.run([*base, "--cores", "1"], env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode != 0
        assert "could not be moved aside" in result.stderr and "make results/ writable" in result.stderr
        assert "Traceback" not in result.stderr


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only for this user: a read-only bind mount for root (who ignores modes),
    the modes themselves for anyone else."""
    if os.geteuid() != 0:
        dirs = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        for path in dirs:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path in dirs:
                path.chmod(0o755)
        return
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode != 0:
        pytest.skip("root here, and no bind mount to make a folder read-only")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)
