"""Stopping a child process we started: ask (SIGTERM), wait a grace period, then insist (SIGKILL).

The one home of that pattern, for the supervisor's cell process and the fork server (plan side).
Standard library only.
"""

from __future__ import annotations

import subprocess


def stop(child: subprocess.Popen, grace_s: float) -> int:
    """Terminate `child`, kill it if it has not exited within `grace_s`; its exit status."""
    child.terminate()
    try:
        return child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()
