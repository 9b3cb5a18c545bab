"""Start and stop the fork server for a snakemake run (orchestration side).

`launcher: forkserver` (or `auto` on Linux) makes the cells of torch version "current" fork from
one process that imported torch once, instead of starting a fresh interpreter each; see
speedatlas/measure/process/forkserver.py. Per-cell processes, files and rerun semantics are unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speedatlas.measure.process import children

SOCKET_ENV = "SPEEDATLAS_FORKSERVER"
_server: subprocess.Popen | None = None


def wanted(launcher: str, platform: str | None = None) -> bool:
    """`auto` forks on Linux only: on macOS, forking after Objective-C/Metal initialisation is
    unsafe, so there an explicit `forkserver` is refused (config.check_launcher) and never forks."""
    platform = platform or sys.platform
    if platform == "darwin":
        return False
    return launcher == "forkserver" or (launcher == "auto" and platform.startswith("linux"))


def start(launcher: str, timeout_s: float = 180) -> str | None:
    """Start the server if the config asks for it; export its socket path to the jobs."""
    global _server
    if not wanted(launcher) or _server is not None:
        return None
    path = os.path.join(tempfile.gettempdir(), f"speedatlas-fs-{os.getpid()}.sock")
    _server = subprocess.Popen(
        [sys.executable, "-m", "speedatlas.measure.process.forkserver", "--socket", path, "--parent", str(os.getpid())],
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while not Path(path).exists():
        if _server.poll() is not None or time.monotonic() > deadline:
            print("speedatlas: the fork server did not start; cells start their own processes", file=sys.stderr)
            stop()
            return None
        time.sleep(0.05)
    os.environ[SOCKET_ENV] = path
    return path


def stop() -> None:
    """Stop the server (SIGTERM: it stops a cell it is serving and removes its socket)."""
    global _server
    path = os.environ.pop(SOCKET_ENV, None)
    if _server is not None:
        children.stop(_server, grace_s=10)
        _server = None
    if path and os.path.exists(path):  # a server killed before its clean-up ran
        os.unlink(path)


def check_machine_lock() -> None:
    """Refuse to start timing jobs when the machine lock's path is unsafe (a link, a hard link,
    not a regular file): said once, before any job, instead of once per cell."""
    from speedatlas.measure.process import machine_lock

    try:
        machine_lock.open_lock(machine_lock.lock_path()).close()
    except machine_lock.UnsafeLock as error:
        raise SystemExit(f"speedatlas: {error}") from None
