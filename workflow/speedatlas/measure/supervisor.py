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

import time

_T0 = time.perf_counter()  # the cell's set-up time starts here (runner.LAUNCHED_KEY)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from speedatlas import cellkey  # noqa: E402
from speedatlas.measure.hardware import envinfo  # noqa: E402
from speedatlas.measure.process import children  # noqa: E402
from speedatlas.measure.process.gpu_slot import PREFER_KEY  # noqa: E402
from speedatlas.measure.process.notice import notice_fd, notify  # noqa: E402
from speedatlas.measure.process.runner import EXIT_WRITE_FAILED, LAUNCHED_KEY, CellWriteError  # noqa: E402

# pyarrow (cellio) is imported only where a file is written here (a crash, an unusable
# environment, the merge of several processes): 0.2 s of every cell's start otherwise.


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the cell's process was killed by {name}"
    return f"the cell's process exited with code {returncode}"


def fork_or_spawn(python: str, spec_json: str, out: str) -> int:
    """Run the cell: forked from the fork server when one serves this interpreter, else a fresh
    process. Returns its exit status (negative: killed by that signal).

    Ctrl-C or SIGTERM stops the cell too: the fresh process is terminated here; the fork server
    stops its child when this process (its client) goes away.
    """
    server = os.environ.get("SPEEDATLAS_FORKSERVER")
    if server and python == "python" and os.path.exists(server):
        from speedatlas.measure.process.forkserver import request_cell

        try:
            return request_cell(server, json.loads(spec_json), out)
        except (OSError, ValueError) as error:
            print(f"speedatlas: fork server unreachable ({error}); starting a fresh process", file=sys.stderr)
    fd = notice_fd()
    child = subprocess.Popen([python, "-m", "speedatlas.measure.process.runner", "--spec", spec_json, "--out", out],
                             pass_fds=(fd,) if fd is not None else ())
    try:
        return child.wait()
    except BaseException:
        children.stop(child, grace_s=5)
        raise


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def write_row(row: dict, out: str) -> None:
    from speedatlas.measure import cellio

    try:
        with cellio.pandas_hidden():
            cellio.write_atomic(cellio.rows_to_table([row]), out)
    except OSError as error:  # e.g. ENOSPC: the job fails and says so on the terminal
        raise CellWriteError(out, error) from error


def record_unusable_env(spec_json: str, out: str, reason: str) -> None:
    """A torch version whose environment could not be built: its cells are `unavailable`."""
    spec = json.loads(spec_json)
    row = {**cellkey.row_columns(spec, spec.get("protocol", 0)), "status": "unavailable", "error": reason}
    write_row(row, out)
    print(f"speedatlas: {reason}; recorded as status unavailable", file=sys.stderr)


def supervise(python: str, spec_json: str, out: str) -> int:
    """Run the runner; record a crash as the cell's result. Returns the runner's exit code.

    A cell of a built torch environment names its marker in the spec ("torch_env"); a failed
    build recorded there becomes the cell's result without starting the runner. A cell with
    `processes` > 1 runs that many fresh processes one after another (see run_processes).
    """
    spec = json.loads(spec_json)
    env = spec.get("torch_env") or {}
    reason = envinfo.unusable_reason(env["marker"]) if env.get("marker") else None
    if reason is not None:
        record_unusable_env(spec_json, out, reason)
        return 0
    if spec.get("processes", 1) > 1:
        return run_processes(python, spec, out)
    return run_process(python, {**spec, LAUNCHED_KEY: _T0}, out)


def run_process(python: str, spec: dict, out: str) -> int:
    """One process of the cell writes `out`; a crash becomes an error row there."""
    returncode = fork_or_spawn(python, json.dumps(spec), out)
    if returncode == EXIT_WRITE_FAILED:  # the runner could not write its file and said why
        raise CellWriteError(out, OSError(f"see the message above (exit status {returncode})"))
    if returncode in (-signal.SIGINT, -signal.SIGTERM) and not os.path.exists(out):
        raise KeyboardInterrupt  # interrupted, not crashed: no result for this cell
    if returncode != 0:
        reason = exit_reason(returncode)
        if os.path.exists(out):
            print(f"speedatlas: {reason} after writing its result; the result is kept", file=sys.stderr)
        else:
            row = {**cellkey.row_columns(spec, spec.get("protocol", 0)), "status": "error",
                   "error": f"{reason} (see the cell's log)"}
            write_row(row, out)
            print(f"speedatlas: {reason}; recorded as status error", file=sys.stderr)
    return returncode


def part_path(out: str, index: int) -> Path:
    """Process `index`'s own file, beside the cell's (hidden, never matched as a cell file)."""
    return Path(out).with_name(f".{Path(out).stem}-process{index}.parquet")


def run_processes(python: str, spec: dict, out: str) -> int:
    """`processes` fresh processes (forked from the fork server where one serves), each with
    its own model build, warm-up and timed blocks; their rows, with column `process`, make the
    cell's file. The first process whose status is not ok ends the cell: its rows are the
    cell's result (the others would most likely fail the same way)."""
    import pyarrow.compute as pc

    from speedatlas.measure import cellio

    returncode, parts, prefer = 0, [], {}
    try:
        for index in range(spec["processes"]):
            part = part_path(out, index)
            part.unlink(missing_ok=True)
            parts.append(part)
            launched = _T0 if index == 0 else time.perf_counter()
            code = run_process(python, {**spec, "process": index, LAUNCHED_KEY: launched, **prefer}, str(part))
            returncode = returncode or code
            with cellio.pandas_hidden():  # pyarrow would import pandas (2 s) for the "ok" scalar
                table = cellio.read_part(part)
                ok = pc.all(pc.equal(table["status"], "ok")).as_py()
            if index == 0 and "gpu_index" in table.column_names and table["gpu_index"][0].as_py() is not None:
                prefer = {PREFER_KEY: table["gpu_index"][0].as_py()}  # concurrency: device: stay on this GPU
            if not ok:
                tables = [table]
                break
        else:
            tables = [cellio.read_part(part) for part in parts]
        try:
            cellio.write_atomic(cellio.concat_parts(tables), out)
        except OSError as error:  # e.g. ENOSPC: the job fails and says so on the terminal
            raise CellWriteError(out, error) from error
    finally:  # also after Ctrl-C or a failed write: no process file is left beside the cell
        for part in parts:
            part.unlink(missing_ok=True)
    return returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one cell, recording a crash as its result")
    parser.add_argument("--python", required=True, help="interpreter of the cell's torch environment")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop the cell, as Ctrl-C does
    try:
        supervise(args.python, args.spec, args.out)
    except CellWriteError as error:
        if error.errno is not None:  # the supervisor's own write failed; the runner reported its own
            notify(str(error))
        return EXIT_WRITE_FAILED
    except KeyboardInterrupt:
        print(f"speedatlas: interrupted; no result for {args.out}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
