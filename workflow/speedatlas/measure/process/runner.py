"""Run one cell and write its Parquet file. Entry point of every benchmark job.

    python -m speedatlas.measure.process.runner --spec '<cell json>' --out results/cells/.../cell.parquet

Runs inside whichever torch environment the cell asks for, so it imports only the standard
library, torch, torchvision, numpy and pyarrow. Whatever happens inside the cell (device absent,
dtype unsupported, out of memory, non-finite loss, any exception) becomes the cell's status and
error text, and the process exits 0: a cell that cannot run is a result, not a crash.
"""

from __future__ import annotations

import time

_PROCESS_T0 = time.perf_counter()  # before importing torch: setup_s includes the import
_LAUNCHER = "process"

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from speedatlas import cellkey  # noqa: E402 - standard library only
from speedatlas.measure.process import gpu_slot, lifeline, machine_lock, receipts, time_limit  # noqa: E402 - standard library only
from speedatlas.measure.protocol.rows import error_text  # noqa: E402

# Set by the supervisor in the spec it hands on: its time.perf_counter() at start. perf_counter is
# one system-wide monotonic clock on Linux (CLOCK_MONOTONIC) and macOS (mach_absolute_time),
# so the runner's setup_s then includes the supervisor's start, the fork or interpreter start
# and the imports, not only what happens after the fork (issue 14, item 5).
LAUNCHED_KEY = "_launched_at"
# Set by the supervisor: where this process writes its receipt (speedatlas.measure.process.receipts).
RECEIPT_KEY = "_receipt"


def mark_process_start(t0: float, launcher: str) -> None:
    """A forked cell's set-up time starts at the fork, not at the server's imports."""
    global _PROCESS_T0, _LAUNCHER
    _PROCESS_T0, _LAUNCHER = t0, launcher


def measure(spec: dict[str, Any], base: dict[str, Any], lock_wait_s: float = 0.0,
            held: gpu_slot.Held | None = None) -> list[dict[str, Any]]:
    """Collect the environment, check the device, then let the cell's workload time it.

    A cell holding a timing slot (concurrency: device) computes on its slot's GPU; the key
    columns keep the device the study named (e.g. `cuda`), gpu_index says which one ran it.
    """
    import torch

    from speedatlas.measure.hardware import darwin, devices, envinfo
    from speedatlas.measure.protocol import workloads

    held = held or gpu_slot.Held("machine", lock_wait_s)
    compute = gpu_slot.compute_device(spec["device"], held)
    spec = {**spec, "device": compute}
    device = devices.get(compute)
    if held.slot is not None and not gpu_slot.fake() and device.unavailable_reason() is None:
        torch.cuda.set_device(held.slot.index)  # implicit allocations (no context on cuda:0) stay on the slot's GPU
    torch.set_num_threads(spec["cpu_threads"] or devices.default_threads())
    host_cpu = pin_host_thread() if spec.get("pin_host") and devices.device_type(compute) != "cpu" else None
    env = envinfo.collect(torch)
    base = {**base, **env, **darwin.collect(), "device_name": device.name(env["cpu_model"])}
    base.update(gpu_slot.columns(torch, base["device"], compute, held), host_cpu=host_cpu)

    reason = device.unavailable_reason()
    if reason is not None:
        return [{**base, "status": "unavailable", "error": reason}]
    start = workloads.CellStart(_PROCESS_T0, _LAUNCHER, lock_wait_s)
    return workloads.get(spec["workload"]).measure(spec, base, start)


def pin_host_thread() -> int | None:
    """Pin this (the measuring, host) thread to one CPU of those it may use, so it does not
    migrate between cores while it issues an accelerator's kernels; that CPU, or None where the
    OS offers no affinity. torch's own threads keep the cores they were given."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # pid 0 = the calling thread on Linux
    return cpu


def run_cell(spec: dict[str, Any], out: str, protocol: int) -> str:
    """Measure one cell under the machine lock and write its file atomically; return status."""
    global _PROCESS_T0
    if spec.get(LAUNCHED_KEY) is not None:  # the supervisor's start: setup_s covers its cost too
        _PROCESS_T0 = min(_PROCESS_T0, float(spec[LAUNCHED_KEY]))
    prefer, receipt = spec.get(gpu_slot.PREFER_KEY), spec.get(RECEIPT_KEY)
    spec = {k: v for k, v in spec.items() if k not in (LAUNCHED_KEY, gpu_slot.PREFER_KEY, RECEIPT_KEY)}
    base = cellkey.row_columns(spec, protocol)
    try:
        with gpu_slot.hold(spec["device"], machine_lock.lock_path(), prefer=prefer) as held:
            time_limit.start_clock()  # the supervisor counts the cell's time limit from here
            rows = measure(spec, base, held.waited_s, held)
    except Exception as exc:  # noqa: BLE001 - e.g. torch fails to import in this environment
        rows = [{**base, "status": "error", "error": error_text(exc)}]
    from speedatlas.measure import cellio  # here, not at the top: the supervisor imports this module without pyarrow

    try:
        if _fault(spec) == "enospc":
            import errno

            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), out)
        with cellio.pandas_hidden():
            cellio.write_atomic(cellio.rows_to_table(rows), out)
        if receipt:  # after the part: a receipt never stands for samples that are not there
            receipts.write(receipt, **receipts.of_rows(rows, time.perf_counter() - _PROCESS_T0))
    except OSError as exc:  # e.g. ENOSPC: nothing is left behind (write_atomic removes its temp file)
        raise CellWriteError(out, exc) from exc
    return rows[0]["status"]


# Exit status of a cell whose file could not be written (EX_IOERR of sysexits.h): the supervisor
# then fails the job (no result exists) instead of recording the cell as `error`.
EXIT_WRITE_FAILED = 74


class CellWriteError(OSError):
    """The cell was measured (or failed) but its file could not be written."""

    def __init__(self, out: str, cause: OSError):
        import errno

        reason = f"{cause.strerror} ({errno.errorcode.get(cause.errno, cause.errno)})" if cause.strerror else str(cause)
        super().__init__(cause.errno, f"speedatlas: cell {out} could not be written: {reason}")
        self.out = out

    def __str__(self) -> str:
        return self.strerror


def report_write_error(error: CellWriteError) -> int:
    """Tell the terminal which cell could not be written and why; the exit status to use."""
    from speedatlas.measure.process.notice import notify

    notify(str(error))
    return EXIT_WRITE_FAILED


FAULT_ENV = "SPEEDATLAS_FAULT"


def _fault(spec: dict[str, Any]) -> str:
    """The fault SPEEDATLAS_FAULT=<model>:<kind> asks for this cell ('' for none)."""
    model, _, kind = os.environ.get(FAULT_ENV, "").partition(":")
    return kind if model and model == spec["model"] else ""


def inject_fault(spec: dict[str, Any]) -> None:
    """Test hook: SPEEDATLAS_FAULT=<model>:<segv|kill> makes that model's cells die hard
    (<model>:enospc makes writing its file fail with ENOSPC, where no tiny filesystem can be mounted).

    Used by the tests to prove a crashing cell costs only itself; never set in normal use.
    """
    kind = _fault(spec)
    if kind in ("segv", "kill"):
        import signal

        os.kill(os.getpid(), {"segv": signal.SIGSEGV, "kill": signal.SIGKILL}[kind])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="canonical JSON of the cell (matrix.Cell.spec)")
    parser.add_argument("--out", required=True, help="path of the cell's Parquet file")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    lifeline.watch()  # the supervisor gone (even by SIGKILL): this process and its group end
    inject_fault(spec)
    try:
        status = run_cell(spec, args.out, spec.get("protocol", 0))
    except CellWriteError as error:
        return report_write_error(error)
    print(f"speedatlas: {spec['model']} {spec['device']} {spec['dtype']} {spec['mode']} "
          f"batch {spec['batch']}: {status}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
