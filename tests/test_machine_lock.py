"""The machine lock at a fixed path in a world-writable folder (issue 27, item 1): prepared by an
adversary, it must never open, change or expose another file; prepared by nobody, every user
can lock it."""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile

import pytest

from speedatlas.measure.process import machine_lock


def test_lock_path_is_machine_wide_and_ignores_tmpdir(monkeypatch, tmp_path):
    monkeypatch.delenv(machine_lock.LOCK_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # make gettempdir() re-read TMPDIR
    assert machine_lock.lock_path() == "/tmp/speedatlas-timing.lock"
    monkeypatch.setenv(machine_lock.LOCK_ENV, str(tmp_path / "lock"))
    assert machine_lock.lock_path() == str(tmp_path / "lock")


def test_created_lock_is_readable_by_every_user_and_writable_by_none(tmp_path):
    path = tmp_path / "lock"
    old = os.umask(0o077)  # a cautious user: the lock must still be lockable by the others
    try:
        with machine_lock.held(str(path)) as waited:
            assert waited >= 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_another_users_read_only_lock_is_still_lockable(tmp_path):
    path = tmp_path / "lock"
    path.write_text("")
    os.chmod(path, 0o444)
    with machine_lock.held(str(path)):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o444  # never chmod-ed: not ours to change


def test_symlink_to_a_private_file_is_refused_and_the_file_untouched(tmp_path):
    victim = tmp_path / "private.txt"
    victim.write_text("secret")
    os.chmod(victim, 0o600)
    path = tmp_path / "lock"
    path.symlink_to(victim)
    with pytest.raises(machine_lock.UnsafeLock, match="symbolic link"):
        with machine_lock.held(str(path)):
            pass
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert victim.read_text() == "secret"


def test_dangling_symlink_is_refused_and_creates_nothing(tmp_path):
    target = tmp_path / "created-by-us"
    path = tmp_path / "lock"
    path.symlink_to(target)
    with pytest.raises(machine_lock.UnsafeLock, match="symbolic link"):
        machine_lock.open_lock(str(path))
    assert not target.exists()


def test_hard_link_to_a_private_file_is_refused(tmp_path):
    victim = tmp_path / "private.txt"
    victim.write_text("secret")
    os.chmod(victim, 0o600)
    path = tmp_path / "lock"
    os.link(victim, path)
    with pytest.raises(machine_lock.UnsafeLock, match="hard link"):
        machine_lock.open_lock(str(path))
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "lock"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(OSError):
        machine_lock.open_lock(str(path))


def test_shared_holders_exclude_an_exclusive_one(tmp_path):
    path = str(tmp_path / "lock")
    with machine_lock.held(path, shared=True), machine_lock.held(path, shared=True):
        with open(path, "rb") as probe, pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_refusal_says_what_to_do(tmp_path):
    path = tmp_path / "lock"
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(machine_lock.UnsafeLock) as error:
        machine_lock.open_lock(str(path))
    assert str(path) in str(error.value) and machine_lock.LOCK_ENV in str(error.value)


@pytest.mark.slow
def test_a_study_refuses_an_unsafe_lock_before_any_job(tmp_path, monkeypatch):
    """Said once at the start, with what to do; no cell is measured, nothing is written."""
    from conftest import snakemake, write_config

    victim = tmp_path / "victim"
    victim.write_text("private")
    os.chmod(victim, 0o600)
    lock = tmp_path / "lock"
    lock.symlink_to(victim)
    monkeypatch.setenv(machine_lock.LOCK_ENV, str(lock))
    config = {"machine": "t", "models": [{"name": "resnet18", "batch_sizes": [1], "modes": ["infer"]}],
              "input_size": 32, "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 1, "processes": 1},
              "dtype_support": {"enabled": False}}
    result = snakemake(tmp_path, write_config(tmp_path, config), "--cores", "1", check=False)
    assert result.returncode != 0
    assert "is a symbolic link" in result.stderr and machine_lock.LOCK_ENV in result.stderr
    assert not (tmp_path / "results" / "cells").exists()
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600 and victim.read_text() == "private"
