"""Stopping what we started: ask (SIGTERM), wait a grace period, then insist (SIGKILL).

The one home of that pattern: for the fork server (plan side), for a cell's process (the
supervisor under `launcher: process`, the fork server's keeper under `launcher: forkserver`), and
for everything a cell's process started. A cell's process leads a process group of its own; when
it ends (or is stopped), the group goes with it, and so do the orphans this process adopted as a
subreaper (speedatlas.measure.process.subreaper). A group is signalled while its leader is our
child and not yet reaped, so its number can never be somebody else's. Standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from speedatlas.measure.process import subreaper

T = TypeVar("T")
_POLL_S = 0.01


def stop(child: subprocess.Popen, grace_s: float) -> int:
    """Terminate `child`, kill it if it has not exited within `grace_s`; its exit status."""
    child.terminate()
    try:
        return child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


def stop_pid(pid: int, grace_s: float) -> int | None:
    """`stop` for a child we forked ourselves: its raw wait status, None if it was reaped already."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            os.kill(pid, signum)
        except (ChildProcessError, ProcessLookupError):
            return None
        deadline = time.monotonic() + grace_s
        while signum == signal.SIGTERM and time.monotonic() < deadline:
            if exited(pid):
                break
            time.sleep(_POLL_S)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


# os.waitid with WNOWAIT tells that a child exited without reaping it. Python has it on Linux,
# not on macOS before 3.13: there the supervisor's waiting thread reaps the cell's process
# (Popen.wait) and its group is signalled just after; POSIX keeps a group's number from reuse
# while the group has members, so only a group already empty could meet a newcomer of the same
# number, in the microseconds between the two.
HAS_WAITID = hasattr(os, "waitid")


def exited(pid: int) -> bool:
    """Whether our child `pid` has exited (with os.waitid: not reaped, its pid stays ours;
    without it: whether it is gone, i.e. reaped)."""
    if not HAS_WAITID:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
    except ChildProcessError:
        return True


def wait_exited(pid: int, timeout_s: float | None = None) -> bool:
    """Wait until our child `pid` has exited, without reaping it; False if `timeout_s` passed first."""
    if timeout_s is None and HAS_WAITID:
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        return True
    if timeout_s is None:
        raise RuntimeError("waiting without reaping needs os.waitid; use exit_fd(child)")
    deadline = time.monotonic() + timeout_s
    while not exited(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def exit_fd(child: subprocess.Popen) -> int:
    """A descriptor that becomes readable once `child` has exited, for select() beside other
    descriptors; the caller closes it. A thread waits (macOS has no pidfd): without reaping the
    child where os.waitid is there, else reaping it through Popen (see HAS_WAITID)."""
    read_end, write_end = os.pipe()

    def wait() -> None:
        try:
            wait_exited(child.pid) if HAS_WAITID else child.wait()
        finally:
            os.close(write_end)

    threading.Thread(target=wait, name=f"speedatlas-wait-{child.pid}", daemon=True).start()
    return read_end


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def end_group(leader: int, grace_s: float) -> None:
    """End the process group that our unreaped child `leader` leads, and the leader: SIGTERM to the
    group while the leader is still running, up to `grace_s` for it to exit, then SIGKILL to all
    that is left (helpers that outlived their cell get no grace)."""
    if grace_s > 0 and not exited(leader):
        _signal_group(leader, signal.SIGTERM)
        wait_exited(leader, grace_s)
    _signal_group(leader, signal.SIGKILL)
    if HAS_WAITID:  # the leader itself, should it have moved to another group (unreaped: still ours)
        try:
            os.kill(leader, signal.SIGKILL)
        except ProcessLookupError:
            pass


def end_adopted(grace_s: float = 5.0) -> list[int]:
    """Kill and reap every child this process still has: once its cell's process is reaped, those
    are the orphans it adopted as a subreaper (Linux), with the groups they lead. Returns their
    pids; gives up after `grace_s` on a process that does not die (uninterruptible sleep)."""
    own_group = os.getpgrp()
    ended: list[int] = []
    deadline = time.monotonic() + grace_s
    while True:
        for pid in subreaper.children():
            try:
                if os.getpgid(pid) == pid != own_group:  # a group it made itself (setsid): its own children
                    _signal_group(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid:
            ended.append(pid)
            continue
        if time.monotonic() >= deadline:
            return ended
        time.sleep(_POLL_S)


def end_tree(leader: int, grace_s: float, reap: Callable[[], T]) -> T:
    """End a cell's process `leader` (our child) with its group and adopted orphans; `reap` reaps
    the leader and returns its exit status, which is returned."""
    end_group(leader, grace_s)
    status = reap()
    end_adopted()
    return status
