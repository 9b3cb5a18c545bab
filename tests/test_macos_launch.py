"""macOS: forkserver refused, auto never forks; the timing lock is machine-wide, not $TMPDIR."""

from __future__ import annotations

import os

import pytest

from speedatlas.measure import runner
from speedatlas.plan import config, launch


def test_forkserver_is_refused_on_macos_with_a_clear_message():
    with pytest.raises(config.ConfigError, match="forkserver cannot be used on macOS"):
        config.check_launcher({"launcher": "forkserver"}, platform="darwin")
    config.check_launcher({"launcher": "forkserver"}, platform="linux")
    config.check_launcher({"launcher": "auto"}, platform="darwin")


@pytest.mark.parametrize(("launcher", "platform", "forks"), [
    ("auto", "darwin", False), ("forkserver", "darwin", False), ("process", "darwin", False),
    ("auto", "linux", True), ("forkserver", "linux", True), ("process", "linux", False),
])
def test_auto_never_forks_on_macos(launcher, platform, forks):
    assert launch.wanted(launcher, platform) is forks


def test_lock_path_ignores_tmpdir(monkeypatch, tmp_path):
    monkeypatch.delenv(runner.LOCK_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # make gettempdir() re-read TMPDIR
    assert runner.lock_path() == "/tmp/speedatlas-timing.lock"
    monkeypatch.setenv(runner.LOCK_ENV, str(tmp_path / "lock"))
    assert runner.lock_path() == str(tmp_path / "lock")


def test_lock_file_is_usable_by_every_user(monkeypatch, tmp_path):
    path = tmp_path / "lock"
    monkeypatch.setenv(runner.LOCK_ENV, str(path))
    with runner.exclusive_machine() as waited:
        assert waited >= 0
    assert (path.stat().st_mode & 0o777) == 0o666
    os.chmod(path, 0o444)  # another user's file: opened read-only, still lockable
    with runner.exclusive_machine():
        pass
