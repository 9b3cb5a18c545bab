"""Run a cell's runner in a child process and turn its death into the cell's result.

    python -m speedatlas.measure.supervisor --python PY --spec JSON --out PATH

A segfault or a kill inside torch takes the runner's process with it, and Snakemake would then
fail the job, delete its output and never run the aggregate. The supervisor (standard library +
pyarrow, under snakemake's interpreter) waits for the runner; if it died without writing its
file, it writes the cell with status `error` and the exit reason, so the study completes and the
report shows the crash. Only the supervisor's own death fails the job (then `--keep-going`
finishes the other cells, and the next run redoes this one).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys

from speedatlas.measure import cellio, envinfo
from speedatlas.measure.runner import key_columns


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the cell's process was killed by {name}"
    return f"the cell's process exited with code {returncode}"


def launch(python: str, spec_json: str, out: str) -> int:
    """Run the cell: forked from the fork server when one serves this interpreter, else a fresh
    process. Returns its exit status (negative: killed by that signal)."""
    server = os.environ.get("SPEEDATLAS_FORKSERVER")
    if server and python == "python" and os.path.exists(server):
        from speedatlas.measure.forkserver import request_cell

        try:
            return request_cell(server, json.loads(spec_json), out)
        except (OSError, ValueError) as error:
            print(f"speedatlas: fork server unreachable ({error}); starting a fresh process", file=sys.stderr)
    return subprocess.call([python, "-m", "speedatlas.measure.runner", "--spec", spec_json, "--out", out])


def record_unusable_env(spec_json: str, out: str, reason: str) -> None:
    """A torch version whose environment could not be built: its cells are `unavailable`."""
    spec = json.loads(spec_json)
    row = {**key_columns(spec, spec.get("protocol", 0)), "status": "unavailable", "error": reason}
    cellio.write_atomic(cellio.rows_to_table([row]), out)
    print(f"speedatlas: {reason}; recorded as status unavailable", file=sys.stderr)


def supervise(python: str, spec_json: str, out: str) -> int:
    """Run the runner; record a crash as the cell's result. Returns the runner's exit code.

    A cell of a built torch environment names its marker in the spec ("torch_env"); a failed
    build recorded there becomes the cell's result without starting the runner.
    """
    env = json.loads(spec_json).get("torch_env") or {}
    reason = envinfo.unusable_reason(env["marker"]) if env.get("marker") else None
    if reason is not None:
        record_unusable_env(spec_json, out, reason)
        return 0
    returncode = launch(python, spec_json, out)
    if returncode != 0:
        reason = exit_reason(returncode)
        if os.path.exists(out):
            print(f"speedatlas: {reason} after writing its result; the result is kept", file=sys.stderr)
        else:
            spec = json.loads(spec_json)
            row = {**key_columns(spec, spec.get("protocol", 0)), "status": "error",
                   "error": f"{reason} (see the cell's log)"}
            cellio.write_atomic(cellio.rows_to_table([row]), out)
            print(f"speedatlas: {reason}; recorded as status error", file=sys.stderr)
    return returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one cell, recording a crash as its result")
    parser.add_argument("--python", required=True, help="interpreter of the cell's torch environment")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    supervise(args.python, args.spec, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
