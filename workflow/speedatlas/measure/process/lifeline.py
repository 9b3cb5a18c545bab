"""A cell's process dies with the process that keeps it, on Linux and on macOS.

A cell's process leads a process group of its own (so that the group, with whatever the cell
started, can be ended without touching anything else). That also takes it out of reach of a
signal to Snakemake's group: `kill -9` of the job's supervisor would leave it measuring, holding
the machine's lock. So its keeper (the supervisor, or the fork server's keeper) holds the write
end of a pipe that only it holds, and the cell's process watches the read end in a thread that
blocks on it: when the keeper is gone, however it died, the pipe reads as closed and the process
ends its own group. Standard library only (runner side).
"""

from __future__ import annotations

import os
import signal
import threading

LIFELINE_ENV = "SPEEDATLAS_LIFELINE_FD"


def make() -> tuple[int, int]:
    """A new lifeline: (read end, for the cell's process; write end, kept by the keeper alone)."""
    return os.pipe()


def watch(fd: int | None = None) -> None:
    """Runner side: end this process's group (or this process, if it leads none) once the
    keeper's end of the lifeline `fd` (default: LIFELINE_ENV's) is closed. No-op without one."""
    if fd is None:
        try:
            fd = int(os.environ.pop(LIFELINE_ENV))
        except (KeyError, ValueError):
            return
    os.set_inheritable(fd, False)  # programs the cell runs do not need it

    def wait_for_keeper() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_for_keeper, name="speedatlas-lifeline", daemon=True).start()
