"""Run one process of a cell (its runner, in a child process) and turn its death into a result.

    python -m speedatlas.measure.supervisor --python PY --spec JSON --out PART

A segfault or a kill inside torch takes the runner's process with it, and Snakemake would then
fail the job, delete its output and never run the aggregate. The supervisor (standard library,
and pyarrow only to write a crash's row, under snakemake's interpreter) first decides whether
the process is needed at all (process 0 ran? the precision rule's pilot asks for it?), then
waits for the runner; if it died without writing its part, it writes the part with status
`error` and the exit reason, so the study completes and the report shows the crash. Only the
supervisor's own death fails the job (then `--keep-going` finishes the other cells, and the next
run redoes this one). The cell's file is made from the parts by speedatlas.measure.cell_merge.

A process that holds the timing lock longer than its time limit (speedatlas.measure.process.
time_limit) is stopped with all it started, and recorded as `timeout`; one that exits with status
0 without writing its part (os._exit(0) or sys.exit(0) in a model's code) is recorded as `error`.
Nothing the runner starts outlives it: it leads a process group of its own, which is ended when
it exits, with the orphans this process adopted as a subreaper (Linux; speedatlas.measure.process.
children); under the fork server, the server's keeper of the cell does the same.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # the cell's set-up time starts here (runner.LAUNCHED_KEY)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from speedatlas import cellkey  # noqa: E402
from speedatlas.measure.hardware import envinfo  # noqa: E402
from speedatlas.measure.process import children, lifeline, receipts, subreaper, time_limit  # noqa: E402
from speedatlas.measure.process.gpu_slot import PREFER_KEY  # noqa: E402
from speedatlas.measure.process.notice import notice_fd, notify  # noqa: E402
from speedatlas.measure.process.runner import EXIT_WRITE_FAILED, LAUNCHED_KEY, RECEIPT_KEY, CellWriteError  # noqa: E402
from speedatlas.measure.protocol import precision  # noqa: E402 - standard library only

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


def fork_or_spawn(python: str, spec_json: str, out: str, limit_s: float) -> tuple[int, float | None]:
    """Run the cell: forked from the fork server when one serves this interpreter, else a fresh
    process. Returns its exit status (negative: killed by that signal), and the seconds it had held
    the lock when it was stopped for passing its time limit `limit_s` (None if it was not).

    Ctrl-C or SIGTERM stops the cell too: the fresh process is stopped here; the fork server
    stops its child when this process (its client) goes away.
    """
    server = os.environ.get("SPEEDATLAS_FORKSERVER")
    if server and python == "python" and os.path.exists(server):
        from speedatlas.measure.process.forkserver import request_cell

        clock = time_limit.Clock()
        try:
            return request_cell(server, json.loads(spec_json), out, clock, limit_s)
        except (OSError, ValueError) as error:
            print(f"speedatlas: fork server unreachable ({error}); starting a fresh process", file=sys.stderr)
        finally:
            clock.close()
    return spawn(python, spec_json, out, limit_s)


def spawn(python: str, spec_json: str, out: str, limit_s: float) -> tuple[int, float | None]:
    """Run the cell in a fresh interpreter that leads a process group of its own; this process
    is the keeper of the cell's process tree (as the fork server's keeper is of a forked cell)."""
    subreaper.become()
    clock = time_limit.Clock()
    alive, keep_alive = lifeline.make()  # the runner ends its group if this process dies
    passed = [fd for fd in (clock.write_fd, alive, notice_fd()) if fd is not None]
    env = {**os.environ, time_limit.CLOCK_ENV: str(clock.write_fd), lifeline.LIFELINE_ENV: str(alive)}
    try:
        child = subprocess.Popen([python, "-m", "speedatlas.measure.process.runner", "--spec", spec_json, "--out", out],
                                 pass_fds=passed, process_group=0, env=env)
    except BaseException:
        for fd in (alive, keep_alive):
            os.close(fd)
        clock.close()
        raise
    os.close(alive)
    clock.handed_over()
    exited = children.exit_fd(child)
    try:
        held_s = clock.wait(exited, limit_s)
        returncode = children.end_tree(child.pid, 2.0 if held_s is not None else 0.0, child.wait)
    except BaseException:  # Ctrl-C, SIGTERM: the cell stops with us
        children.end_tree(child.pid, 5.0, child.wait)
        raise
    finally:
        for fd in (exited, keep_alive):
            os.close(fd)
        clock.close()
    return returncode, held_s


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def write_row(row: dict, out: str) -> None:
    from speedatlas.measure import cellio

    try:
        with cellio.pandas_hidden():
            cellio.write_atomic(cellio.rows_to_table([row]), out)
    except OSError as error:  # e.g. ENOSPC: the job fails and says so on the terminal
        raise CellWriteError(out, error) from error


def reason_to_skip(spec: dict, out: str) -> str | None:
    """Why this process of the cell need not run (None: it runs).

    Process 0 always runs. A later one stops where process 0 did not come out ok (the cell
    cannot run; its result is that first process's). A process after the pilot of the precision
    rule runs only if the pilot's spread asks for it (speedatlas.measure.protocol.precision).
    """
    process = spec.get("process", 0)
    if process == 0:
        return None
    first = receipts.read(cellkey.receipt_path(cellkey.process_part(out, 0)))
    if first["status"] != "ok":
        return f"process 0 of this cell was {first['status']}: the cell ends there"
    rule = spec.get("sampling") or {}
    if "precision" not in rule:
        return None
    pilot = [receipts.read(cellkey.receipt_path(cellkey.process_part(out, k))) for k in range(rule["pilot"])]
    failed = [k for k, receipt in enumerate(pilot) if receipt["status"] != "ok"]
    if failed:
        return f"process {failed[0]} of the pilot was {pilot[failed[0]]['status']}: the cell ends there"
    plan = precision.plan([math.log(r["median_step_s"]) for r in pilot], rule["precision"], rule["confidence"],
                          rule["max_processes"], statistics.fmean(r["seconds"] for r in pilot), rule.get("max_seconds"))
    if process >= plan.processes:
        return f"not needed: the pilot's spread asks for {plan.processes} processes (±{plan.precision:.1%})"
    return None


def write_skipped(out: str, reason: str) -> None:
    """An empty part and a receipt saying why: the cell's file is made without this process."""
    Path(out).write_bytes(b"")
    receipts.write(cellkey.receipt_path(out), status=receipts.SKIPPED, reason=reason, median_step_s=None, seconds=0.0,
                   gpu_index=None)
    print(f"speedatlas: {reason}; this process is not run", file=sys.stderr)


def supervise(python: str, spec_json: str, out: str) -> int:
    """Run one process of a cell (the runner, forked or fresh); record a crash as its result.
    Returns the runner's exit code.

    Every process job leaves its part (`out`) and a receipt beside it. A process that need not
    run (reason_to_skip) leaves an empty part. A cell of a built torch environment names its
    marker in the spec ("torch_env"); a failed build recorded there becomes the cell's result
    without starting the runner. Later processes of a `cuda` cell prefer the GPU process 0 ran on.
    """
    spec = json.loads(spec_json)
    skip = reason_to_skip(spec, out)
    if skip is not None:
        write_skipped(out, skip)
        return 0
    env = spec.get("torch_env") or {}
    reason = envinfo.unusable_reason(env["marker"]) if env.get("marker") else None
    if reason is not None:
        record_failure(spec, out, "unavailable", reason)  # a torch version whose environment could not be built
        return 0
    prefer = {}
    if spec.get("process", 0) > 0:
        gpu = receipts.read(cellkey.receipt_path(cellkey.process_part(out, 0))).get("gpu_index")
        prefer = {PREFER_KEY: gpu} if gpu is not None else {}
    return run_process(python, {**spec, LAUNCHED_KEY: _T0, RECEIPT_KEY: cellkey.receipt_path(out), **prefer}, out)


def run_process(python: str, spec: dict, out: str) -> int:
    """One process of the cell writes `out` and its receipt; a crash, a process that passed its
    time limit or one that exited 0 without writing its part becomes a failed row there."""
    limit_s = time_limit.seconds(spec)
    returncode, held_s = fork_or_spawn(python, json.dumps(spec), out, limit_s)
    written = os.path.exists(out) and os.path.exists(cellkey.receipt_path(out))
    if held_s is not None:
        if written:  # it wrote its result, then hung (e.g. a helper it waits for at exit)
            print("speedatlas: the cell's process passed its time limit after writing its result; the result is kept",
                  file=sys.stderr)
        else:
            record_failure(spec, out, "timeout",
                           f"the cell's process held the timing lock for {held_s:.0f} s, past its time limit of "
                           f"{time_limit.describe(spec, limit_s)}; it was stopped with every process it started "
                           f"(raise timing.time_limit_seconds if the cell is only slow)")
        return returncode
    if returncode == EXIT_WRITE_FAILED:  # the runner could not write its file and said why
        raise CellWriteError(out, OSError(f"see the message above (exit status {returncode})"))
    if returncode in (-signal.SIGINT, -signal.SIGTERM) and not os.path.exists(out):
        raise KeyboardInterrupt  # interrupted, not crashed: no result for this cell
    if returncode == 0 and not written:
        record_failure(spec, out, "error",
                       "the cell's process exited with status 0 without writing its result (something in the "
                       "cell, e.g. the model's code, called os._exit(0) or sys.exit(0); see the cell's log)")
    elif returncode != 0:
        reason = exit_reason(returncode)
        if written:
            print(f"speedatlas: {reason} after writing its result; the result is kept", file=sys.stderr)
        else:
            record_failure(spec, out, "error", f"{reason} (see the cell's log)")
    return returncode


def supervise_cell(python: str, cell_spec_text: str, out: str) -> str:
    """Every process of a cell in one job, back to back, then the cell's file (`out`): the way of
    a study too large for one job per process (matrix.ROUNDS_MAX_CELLS: Snakemake plans about
    1.6 ms a job). The same processes, receipts and precision rule as in rounds; returns the
    cell's status."""
    from speedatlas.measure import cell_merge

    cell = json.loads(cell_spec_text)
    folder = out.replace("results/cells/", "results/processes/", 1).rpartition("/")[0]
    Path(folder).mkdir(parents=True, exist_ok=True)
    parts = []
    for process in range(cellkey.most_processes(cell.get("sampling") or {"processes": 1})):
        part = f"{folder}/process-{process}.parquet"
        supervise(python, json.dumps(cellkey.process_spec(cell, process), sort_keys=True), part)
        parts.append(part)
    return cell_merge.merge(cell_spec_text, parts, out, rounds=False)


def record_failure(spec: dict, out: str, status: str, reason: str) -> None:
    """The part and receipt of a process that left none: one row with `status` and `reason`."""
    write_row({**cellkey.row_columns(spec, spec.get("protocol", 0)), "status": status, "error": reason}, out)
    receipts.write(cellkey.receipt_path(out), status=status, median_step_s=None,
                   seconds=time.perf_counter() - _T0, gpu_index=None)
    print(f"speedatlas: {reason}; recorded as status {status}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one process of a cell (or --cell: all of them), recording "
                                                 "a crash as its result")
    parser.add_argument("--python", required=True, help="interpreter of the cell's torch environment")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cell", action="store_true",
                        help="--spec is the cell's, --out its cell file: every process back to back, then the file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop the cell, as Ctrl-C does
    try:
        if args.cell:
            supervise_cell(args.python, args.spec, args.out)
        else:
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
