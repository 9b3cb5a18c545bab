"""What the platform offers to keep a cell's processes attached: Linux's child subreaper.

A process that dies leaves its children to their nearest "subreaper" ancestor, and to PID 1 where
there is none. A cell's helper that detaches itself (`setsid()`, a double fork) leaves the cell's
process group, so killing the group misses it, and once its parent is gone nobody could find it.
On Linux the process that runs a cell (the supervisor, or the fork server's keeper) makes itself a
subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so every such orphan becomes its child, and when the
cell ends it ends them (speedatlas.measure.process.children.end_adopted). macOS has no subreaper:
there a cell's process group is all we can end. Standard library only (ctypes for prctl).
"""

from __future__ import annotations

import os
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: only a process that runs a cell pays its import

    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols, libc's prctl among them
        return libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


def become() -> bool:
    """Make this process the subreaper of its descendants (Linux); False where the platform has none.
    Not inherited by children: only this process adopts."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(signum: int) -> bool:
    """Have the kernel send `signum` to this process when its parent dies (Linux); False elsewhere."""
    return _prctl(_PR_SET_PDEATHSIG, signum)


def children() -> list[int]:
    """This process's children that are still there (zombies included): its own and, as a
    subreaper, those it adopted. Linux only; [] elsewhere (where nothing is ever adopted)."""
    if not sys.platform.startswith("linux"):
        return []
    found: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
        for task in tasks:
            with open(f"/proc/self/task/{task}/children") as handle:
                found.update(int(pid) for pid in handle.read().split())
        return sorted(found)
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: read every process's parent
        return _children_from_stat(os.getpid())


def _children_from_stat(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:  # after "pid (comm)": state, ppid
            found.append(int(entry))
    return sorted(found)
