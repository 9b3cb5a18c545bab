"""Snakemake's own faults that we work around at start, each with its upstream issue.

An interpreter path with a space (snakemake/snakemake#2645, open in 9.27): every `script:` rule
runs `{py_exec} {fname:q}`, the interpreter's path unquoted, so from a checkout such as
`~/My Drive/speedatlas` (its `.venv` inside) the shell runs `/Users/me/My` and every script rule
fails with status 127. `quote_script_interpreter` makes the same command quote it, exactly the
fix the issue proposes; it changes nothing where the path has no character the shell would split
or expand, and nothing once Snakemake quotes the path itself.

Plan side: runs in the snakemake process while the Snakefile is read.
"""

from __future__ import annotations

import shlex
import sys

UNQUOTED = "{py_exec} "
QUOTED = "{py_exec:q} "


def needs_quoting(path: str) -> bool:
    """Whether a shell would split or expand `path` written unquoted."""
    return shlex.quote(path) != path


def quote_script_interpreter(executable: str = sys.executable) -> bool:
    """Make Snakemake's Python `script:` command quote the interpreter's path (see the module's
    docstring). Returns whether the command was changed."""
    if not needs_quoting(executable):
        return False
    from snakemake.script import PythonScript

    run = PythonScript._execute_cmd
    if getattr(run, "speedatlas_quotes", False):
        return True

    def execute_cmd(self, cmd, **kwargs):
        if "py_exec" in kwargs and cmd.startswith(UNQUOTED):
            cmd = QUOTED + cmd[len(UNQUOTED):]
        return run(self, cmd, **kwargs)

    execute_cmd.speedatlas_quotes = True
    PythonScript._execute_cmd = execute_cmd
    return True
