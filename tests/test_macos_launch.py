"""macOS: forkserver refused, auto never forks (the lock's own tests: test_machine_lock.py)."""

from __future__ import annotations

import pytest

from speedatlas.plan import config, launcher


def test_forkserver_is_refused_on_macos_with_a_clear_message():
    with pytest.raises(config.ConfigError, match="forkserver cannot be used on macOS"):
        config.check_launcher({"launcher": "forkserver"}, platform="darwin")
    config.check_launcher({"launcher": "forkserver"}, platform="linux")
    config.check_launcher({"launcher": "auto"}, platform="darwin")


@pytest.mark.parametrize(("setting", "platform", "forks"), [
    ("auto", "darwin", False), ("forkserver", "darwin", False), ("process", "darwin", False),
    ("auto", "linux", True), ("forkserver", "linux", True), ("process", "linux", False),
])
def test_auto_never_forks_on_macos(setting, platform, forks):
    assert launcher.wanted(setting, platform) is forks
