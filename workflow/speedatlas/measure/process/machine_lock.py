"""The machine lock: one file that every timing job on the machine locks (flock), whoever runs it.

One fixed, machine-wide path, not $TMPDIR: on macOS $TMPDIR is per user (/var/folders/...),
changes under sudo, and Snakemake's tmpdir resource changes it per job, so two runs could each
hold "the" lock and time at once. /tmp is machine-wide on Linux and macOS (/private/tmp), and
node-local on a cluster, which is the scope we want.

Because /tmp is writable by every user, the path is opened as if someone else had prepared it:
never through a symbolic link (O_NOFOLLOW), never a file with a second name (a hard link to
somebody's private file), never anything but a regular file, and only ever read-only: flock
needs no write access, so nothing is written to the file and no file we did not create is ever
chmod-ed. The file we create is made readable by everyone (0644), so other users' studies can
lock it too; a lock file another user created is used as it is (read-only), and the two users'
timing jobs take turns. Standard library only (runner side).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from typing import BinaryIO

LOCK_ENV = "SPEEDATLAS_LOCK"
DEFAULT_LOCK = "/tmp/speedatlas-timing.lock"
_READ_ONLY = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # O_NONBLOCK: a FIFO never blocks the open


class UnsafeLock(OSError):
    """The lock path holds something we must not open or lock: the message says what and what to do."""


def lock_path() -> str:
    """One lock per machine (per node on a cluster): timing jobs never overlap."""
    return os.environ.get(LOCK_ENV) or DEFAULT_LOCK


def _refuse(path: str, what: str) -> UnsafeLock:
    return UnsafeLock(
        f"the machine lock {path} is {what}, so it was not used; remove it if it is yours "
        f"(rm {path}), or set {LOCK_ENV} to a file of your own"
    )


def _checked(fd: int, path: str) -> int:
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "not a regular file"
    elif info.st_nlink != 1:
        problem = f"a file with {info.st_nlink} names (a hard link, perhaps to somebody's private file)"
    if problem is not None:
        os.close(fd)
        raise _refuse(path, problem)
    return fd


def open_descriptor(path: str) -> int:
    """A read-only descriptor of the lock file, created (0644) if absent; see the module docstring."""
    for _ in range(5):
        try:
            fd = os.open(path, _READ_ONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # also a symbolic link, dangling or not: O_EXCL never follows one
            pass
        else:
            os.fchmod(fd, 0o644)  # ours, just created: the umask may have hidden it from other users
            return fd
        try:
            return _checked(os.open(path, _READ_ONLY), path)
        except FileNotFoundError:
            continue  # removed between the two calls: create it
        except OSError as error:
            if error.errno == errno.ELOOP or (error.errno == errno.EMLINK and os.path.islink(path)):
                raise _refuse(path, "a symbolic link") from None
            if error.errno == errno.EACCES:
                raise _refuse(path, "not readable by you (another user created it without read access)") from None
            raise
    raise _refuse(path, "appearing and disappearing")


def open_lock(path: str) -> BinaryIO:
    """The lock file as a file object for fcntl.flock (closing it releases any lock it holds)."""
    return os.fdopen(open_descriptor(path), "rb")


@contextlib.contextmanager
def held(path: str | None = None, shared: bool = False) -> Iterator[float]:
    """Hold the lock (exclusive, or shared for a GPU slot's job) for the body; yield the seconds
    spent waiting for it (another timing job held the machine)."""
    with open_lock(path or lock_path()) as handle:
        start = time.perf_counter()
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield time.perf_counter() - start
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
