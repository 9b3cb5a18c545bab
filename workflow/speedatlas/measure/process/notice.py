"""One-line notices that must reach the user's terminal even when the job's log cannot be written.

A cell job's output goes to its log under results/logs/; on a full disk that log stays empty, so a
failure to write the cell would be silent. The Snakefile's shell prefix keeps a copy of the
terminal's stderr open as a file descriptor and names it in SPEEDATLAS_NOTICE_FD; the supervisor
passes it on to the runner (and through the fork server to its child). Runner side: standard
library only.
"""

from __future__ import annotations

import os

NOTICE_ENV = "SPEEDATLAS_NOTICE_FD"


def notice_fd() -> int | None:
    """The terminal's descriptor named by the environment, if it is open."""
    try:
        fd = int(os.environ.get(NOTICE_ENV, ""))
        os.fstat(fd)
    except (ValueError, OSError):
        return None
    return fd


def notify(line: str) -> None:
    """Write one line to stderr (the job's log) and to the terminal, best effort, each once."""
    data = (line.rstrip("\n") + "\n").encode()
    targets, seen = [], set()
    for fd in (2, notice_fd()):
        if fd is None:
            continue
        try:
            stat = os.fstat(fd)
        except OSError:
            continue
        key = (stat.st_dev, stat.st_ino)
        if key not in seen:
            seen.add(key)
            targets.append(fd)
    for fd in targets:
        try:
            os.write(fd, data)
        except OSError:  # the log on a full disk: the terminal copy is the one that counts
            pass
