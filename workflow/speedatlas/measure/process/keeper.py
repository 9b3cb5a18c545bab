"""The fork server's keeper of one cell: the process that outlives the cell's process to end
everything the cell started (issue 27, item 6).

The fork server forks a keeper per cell; the keeper forks the cell's process, which leads a
process group of its own. When the cell's process exits, or the server stops it (SIGTERM: the
client went away, the supervisor's time limit passed, the server itself is stopping), the keeper
ends the group and, as a subreaper (Linux), the orphans that left it (setsid, double forks), then
exits as the cell's process did, so the server answers its client as before. The keeper is a
process of its own because the one that ends a cell must outlive it and be the cell's alone:
the server is shared by every cell, and must never be in a group that is killed.

Forked, never exec'd: standard library only, and nothing that needs the interpreter's threads.
"""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Callable, Sequence
from typing import NoReturn

from speedatlas.measure.process import children, lifeline, subreaper

STOP_GRACE_S = 1.0  # a stopped cell's process may remove its temporary file; the rest is killed


def keep(run_cell: Callable[[], NoReturn], parent: int, hand_over: Sequence[int] = ()) -> NoReturn:
    """In the process the fork server forked for a cell: fork the cell's process (which calls
    `run_cell`), end its process tree when it exits or when this process gets SIGTERM, and exit as
    it did. `hand_over`: descriptors only the cell's process keeps (closed here after the fork)."""
    watched = {signal.SIGTERM, signal.SIGCHLD}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, watched)  # from here no SIGTERM is lost
    subreaper.become()
    subreaper.die_with_parent(signal.SIGTERM)  # the server gone (even by SIGKILL): stop the cell
    read_end, write_end = lifeline.make()
    pid = os.fork()
    if pid == 0:  # the cell's process
        os.close(write_end)
        os.setpgid(0, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        lifeline.watch(read_end)
        run_cell()
    os.close(read_end)
    for fd in hand_over:
        os.close(fd)
    try:
        os.setpgid(pid, pid)  # also here: the group exists before anything could signal it
    except OSError:
        pass  # the child did it already, or it is gone
    stopping = os.getppid() != parent  # the server died before die_with_parent took effect
    while not stopping and not children.exited(pid):
        stopping = signal.sigwait(watched) == signal.SIGTERM  # SIGCHLD: some child exited; look again
    status = children.end_tree(pid, STOP_GRACE_S if stopping else 0.0, lambda: os.waitpid(pid, 0)[1])
    exit_as(status)


def exit_as(status: int) -> NoReturn:
    """Exit with the wait status `status` of the cell's process: its exit code, or its signal."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))  # one core is enough
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL cannot be handled: it needs no reset
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
