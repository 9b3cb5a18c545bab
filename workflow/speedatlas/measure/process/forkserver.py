"""Amortise the per-cell start-up cost: import torch once, fork one child per cell.

A fresh `python -m speedatlas.measure.process.runner` spends 3-10 s importing torch and torchvision (torchvision
imports torch._dynamo) before it measures anything; on a study of hundreds of small cells that
is most of the wall time. The fork server imports them once, initialises no device, and forks a
child for each cell. The child starts from the imported state, initialises its device itself and
exits after writing its file, so every cell still runs in its own process (a crashed CUDA
context never leaks into the next cell), writes its own Parquet, and reruns per cell exactly as
before. Runner side: standard library + what the runner imports.

    python -m speedatlas.measure.process.forkserver --socket PATH --parent PID

Protocol: one JSON message per connection, {"spec": ..., "out": ..., "fds": [...]}, sent with the
descriptors "fds" names (SCM_RIGHTS): the client's stderr ("log", so the child writes into the
job's log), the write end of its time limit's clock ("clock", speedatlas.measure.process.time_limit)
and the terminal ("notice") where there is one. The answer is one JSON line {"returncode": N} with
N < 0 for a signal, like subprocess. Anything the client sends after its request asks the server
to stop the cell (its time limit passed); the answer follows once it is stopped. The server exits
when its parent (the snakemake process) is gone, so a killed run leaves nothing behind.

Each cell gets a keeper (speedatlas.measure.process.keeper): the server forks the keeper, the
keeper forks the cell's process in a process group of its own and ends that group, and the
orphans it adopted, when the cell ends. The server never stops a cell's process itself: it stops
the keeper, which stops the cell.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import time
from typing import NoReturn

from speedatlas.measure.process import children
from speedatlas.measure.process.time_limit import Clock


def serve(path: str, parent: int) -> None:
    import torch  # noqa: F401 - the point of the server: pay these imports once
    import torchvision  # noqa: F401

    from speedatlas.measure import cellio  # noqa: F401
    from speedatlas.measure.hardware import devices, envinfo  # noqa: F401
    from speedatlas.measure.models import zoo  # noqa: F401
    from speedatlas.measure.process import runner  # noqa: F401
    from speedatlas.measure.protocol import hostshare, steps, timing  # noqa: F401

    if os.path.exists(path):
        os.unlink(path)
    # launcher.stop() ends the server with SIGTERM: exit through `finally`, so the socket is removed
    # (and a cell being served is stopped) instead of dying on the spot and leaving both behind.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    server.settimeout(1.0)
    # the launcher waits for the socket file itself: no "ready" line to clutter a run's progress
    try:
        if hasattr(os, "pidfd_open"):
            _serve(server, parent)
        else:  # no pidfds (not Linux; macOS never forks, see plan/launcher.py): one cell at a time
            _serve_one_at_a_time(server, parent)
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_line(connection: socket.socket) -> str:
    chunks = []
    while not chunks or not chunks[-1].endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


FD_NAMES = ("log", "clock", "notice")


def _receive(connection: socket.socket) -> tuple[dict, dict[str, int]]:
    """A request and its descriptors by name: the job's log, the time limit's clock, the terminal
    (speedatlas.measure.process.notice)."""
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, len(FD_NAMES))
    request = json.loads(message.decode())
    names = request.get("fds", ["log", "notice"][: len(fds)])
    return request, dict(zip(names, fds))


def _serve(server: socket.socket, parent: int) -> None:
    """Serve requests while earlier children still run (concurrency: device runs one cell per GPU
    at once; under concurrency: machine one request comes at a time, as before).

    Each child's pidfd and its client connection are watched beside the socket: when the child
    exits its answer goes back at once; when the client hangs up first (Ctrl-C or SIGTERM reached
    the cell job's supervisor, or it was killed), the child is stopped at once, because it lives
    in the server's session and no signal from the terminal reaches it; when the client asks for
    a stop (its time limit passed), the child is stopped and the client gets its answer.
    """
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    children: dict[int, tuple[int, socket.socket]] = {}  # pid -> (pidfd, client connection)

    def finish(pid: int, status: int | None) -> None:
        pidfd, connection = children.pop(pid)
        selector.unregister(pidfd)
        selector.unregister(connection)
        os.close(pidfd)
        with connection:
            if status is None:
                print(f"speedatlas forkserver: the client of cell process {pid} went away; stopped it",
                      file=sys.stderr)
            else:
                connection.sendall((json.dumps({"returncode": _exit_code(status)}) + "\n").encode())

    try:
        while _alive(parent):
            for key, _ in selector.select(timeout=1.0):
                kind, pid = key.data if key.data else ("server", None)
                if kind == "server":
                    try:
                        connection, _ = server.accept()
                    except socket.timeout:
                        continue
                    pid = _fork_request(connection)
                    pidfd = os.pidfd_open(pid)
                    children[pid] = (pidfd, connection)
                    selector.register(pidfd, selectors.EVENT_READ, ("child", pid))
                    selector.register(connection, selectors.EVENT_READ, ("client", pid))
                elif pid not in children:
                    continue  # both of a child's descriptors were ready in one round
                elif kind == "child":
                    finish(pid, os.waitpid(pid, 0)[1])
                elif _client_asks(children[pid][1]):  # a stop: the cell's time limit passed
                    finish(pid, _stop(pid))
                else:  # EOF: the supervisor is gone
                    _stop(pid)
                    finish(pid, None)
    finally:
        for pid in list(children):  # the server was told to stop (SIGTERM): its cells stop with it
            _stop(pid)
            finish(pid, None)
        selector.close()


def _client_asks(connection: socket.socket) -> bool:
    """The client sent something (a stop request), rather than hanging up."""
    try:
        return bool(connection.recv(64))
    except OSError:
        return False


def _fork_request(connection: socket.socket) -> int:
    """Receive one cell request and fork its keeper; the server keeps none of the passed
    descriptors (the keeper has its own copies)."""
    request, fds = _receive(connection)
    try:
        return _fork_child(request, fds, connection)
    finally:
        for fd in fds.values():
            os.close(fd)


def _serve_one_at_a_time(server: socket.socket, parent: int) -> None:
    while _alive(parent):
        try:
            connection, _ = server.accept()
        except socket.timeout:
            continue
        with connection:
            pid = _fork_request(connection)
            try:
                status = _wait_polling(pid, connection)
            finally:
                stopped = _stop(pid)
            status = stopped if status == "stop" else status
            if status is not None:
                connection.sendall((json.dumps({"returncode": _exit_code(status)}) + "\n").encode())


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _fork_child(request: dict, fds: dict[str, int], connection: socket.socket) -> int:
    """Fork the cell's keeper, which forks the process that runs the cell (output to the job's
    log); return the keeper's pid."""
    from speedatlas.measure.process import keeper, runner
    from speedatlas.measure.process.notice import NOTICE_ENV
    from speedatlas.measure.process.time_limit import CLOCK_ENV

    server = os.getpid()
    pid = os.fork()
    if pid == 0:  # the keeper
        code = 1
        try:
            connection.close()  # the server answers; the cell's processes need no copy
            if "log" in fds:
                os.dup2(fds["log"], 1)
                os.dup2(fds["log"], 2)
            if "notice" in fds:  # the terminal: where "could not write the cell" must be seen
                os.environ[NOTICE_ENV] = str(fds["notice"])
            if "clock" in fds:
                os.environ[CLOCK_ENV] = str(fds["clock"])
            runner.mark_process_start(time.perf_counter(), launcher="forkserver")
            keeper.keep(lambda: _run_cell(request), server, hand_over=[fds[k] for k in ("clock",) if k in fds])
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    return pid


def _run_cell(request: dict) -> NoReturn:
    """In the cell's process: run the cell, write its file, exit."""
    from speedatlas.measure.process import runner

    code = 1
    try:
        spec = request["spec"]
        runner.inject_fault(spec)
        runner.run_cell(spec, request["out"], spec.get("protocol", 0))
        code = 0
    except runner.CellWriteError as error:
        code = runner.report_write_error(error)
    except SystemExit as stop:  # sys.exit() in the cell: the status a fresh interpreter would exit with
        code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait_polling(pid: int, connection: socket.socket) -> int | str | None:
    """The child's wait status; "stop" when the client asks for a stop, None when it hung up first."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        readable, _, _ = select.select([connection], [], [], 0.05)
        if readable:
            return "stop" if _client_asks(connection) else None


def _stop(pid: int, grace_s: float = 5.0) -> int | None:
    """Stop a cell's keeper that is still running (SIGTERM: it stops the cell's process, which
    removes its temporary file, and all it started), SIGKILL if it takes longer than `grace_s`;
    its wait status (None if it was reaped already)."""
    return children.stop_pid(pid, grace_s)


def request_cell(path: str, spec: dict, out: str, clock: Clock, limit_s: float) -> tuple[int, float | None]:
    """Client side (used by the supervisor): run one cell through the server; its exit status,
    and the seconds it had held the lock when it was stopped for passing `limit_s` (else None).

    Our stderr (the job's log) travels with the request, so the cell's output lands in its log,
    and so do the clock's write end and the terminal's descriptor (speedatlas.measure.process.notice)
    where there is one.
    """
    from speedatlas.measure.process.notice import notice_fd

    fds = {"log": sys.stderr.fileno(), "clock": clock.write_fd, "notice": notice_fd()}
    fds = {name: fd for name, fd in fds.items() if fd is not None and fd >= 0}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        message = json.dumps({"spec": spec, "out": os.path.abspath(out), "fds": list(fds)}).encode()
        socket.send_fds(client, [message], list(fds.values()))
        clock.handed_over()
        held_s = clock.wait(client.fileno(), limit_s)
        if held_s is not None:
            client.sendall(b"stop\n")
        answer = _read_line(client)
    return int(json.loads(answer)["returncode"]), held_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve cells from a process that imported torch once")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--parent", type=int, required=True, help="exit when this process is gone")
    args = parser.parse_args(argv)
    serve(args.socket, args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
