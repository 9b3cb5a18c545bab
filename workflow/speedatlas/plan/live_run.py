"""One run at a time in a working directory: a live run is told from a dead one.

Snakemake locks a working directory with files under `.snakemake/locks/`. A run killed with
`kill -9` (or a machine that lost power) leaves them behind, and `snakemake --unlock` removes
them without asking whether the run that made them is still alive: after `--unlock` beside a
live run, two runs rebuilt the same plots and report at once and the first one failed.

So every run holds a lock of its own from the moment the Snakefile is read until its process
ends: an exclusive `flock` on `.speedatlas/run.lock` in the working directory. The kernel releases
it when the process ends, however it ends (`kill -9` included), so a held lock means a live run
and a free one a dead or finished run. A second run (and `--unlock`, and `--report`) started
while the lock is held is refused in one sentence naming the live run (its process id, host,
start time and command, which the holder writes into the file). A dry run only looks: it changes
nothing on disk and says in one line that a run now would be refused.

Jobs never hold the lock: the file is opened close-on-exec, and cluster jobs (which read the
Snakefile again) do not take it. On a network filesystem `flock` is only as good as the
filesystem's locking; across hosts, `.snakemake/locks/` still guards as Snakemake's own lock does.

Plan side: standard library only.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import shlex
import socket
import sys
from pathlib import Path

LOCK = Path(".speedatlas") / "run.lock"
_held: int | None = None  # this process's lock, kept open for its whole life


class LiveRun(RuntimeError):
    """Another run of this working directory is alive; the message says which and what to do."""


def describe(argv: list[str] | None = None) -> str:
    """Who holds the lock, as written into the file for a second run's message."""
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    command = shlex.join(["snakemake", *(sys.argv if argv is None else argv)[1:]])
    return f"process {os.getpid()} on {socket.gethostname()}, started {started}: {command}"


def claim(path: Path = LOCK, dry_run: bool = False) -> str | None:
    """Hold the run lock until this process ends; raise LiveRun when another process holds it.

    A dry run takes nothing and writes nothing: it returns one line to print when a run is alive
    (None otherwise). Calling again in a process that holds the lock does nothing.
    """
    global _held
    if _held is not None:
        return None
    if dry_run:
        holder = _holder(path)
        return None if holder is None else f"speedatlas: {_alive(holder, path)}; a run (not a dry run) would be refused now"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = _read(fd)
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise LiveRun(
                f"{_alive(holder, path)}; wait for it to finish or stop it (kill {_pid(holder)}) and run again "
                "(not --unlock, which is only for a run that is no longer alive)"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, (describe() + "\n").encode(), 0)
    _held = fd
    return None


def _holder(path: Path) -> str | None:
    """What the holder wrote, if a process holds the lock at `path` now; None if none does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace").strip()


def _alive(holder: str, path: Path) -> str:
    return f"another run of this working directory is alive ({holder or 'its details were not written yet'}; it holds {path})"


def _pid(holder: str) -> str:
    words = holder.split()
    return words[1] if len(words) > 1 and words[0] == "process" and words[1].isdigit() else "<its process id>"
