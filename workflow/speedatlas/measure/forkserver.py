"""Amortise the per-cell start-up cost: import torch once, fork one child per cell.

A fresh `python -m speedatlas.measure.runner` spends 3-10 s importing torch and torchvision (torchvision
imports torch._dynamo) before it measures anything; on a study of hundreds of small cells that
is most of the wall time. The fork server imports them once, initialises no device, and forks a
child for each cell. The child starts from the imported state, initialises its device itself and
exits after writing its file, so every cell still runs in its own process (a crashed CUDA
context never leaks into the next cell), writes its own Parquet, and reruns per cell exactly as
before. Runner side: standard library + what the runner imports.

    python -m speedatlas.measure.forkserver --socket PATH --parent PID

Protocol: one JSON message per connection, {"spec": ..., "out": ...}, sent with the client's
stderr file descriptor (SCM_RIGHTS) so the child writes into the job's log; the answer is one JSON line
{"returncode": N} with N < 0 for a signal, like subprocess. The server exits when its parent
(the snakemake process) is gone, so a killed run leaves nothing behind.
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


def serve(path: str, parent: int) -> None:
    import torch  # noqa: F401 - the point of the server: pay these imports once
    import torchvision  # noqa: F401

    from speedatlas.measure import (
        cellio,  # noqa: F401
        devices,  # noqa: F401
        envinfo,  # noqa: F401
        hostshare,  # noqa: F401
        models,  # noqa: F401
        runner,  # noqa: F401
        timing,  # noqa: F401
    )

    if os.path.exists(path):
        os.unlink(path)
    # launch.stop() ends the server with SIGTERM: exit through `finally`, so the socket is removed
    # (and a cell being served is stopped) instead of dying on the spot and leaving both behind.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    server.settimeout(1.0)
    print(f"speedatlas forkserver ready on {path}", file=sys.stderr, flush=True)
    try:
        while _alive(parent):
            try:
                connection, _ = server.accept()
            except socket.timeout:
                continue
            with connection:
                message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 2)
                request = json.loads(message.decode())
                try:
                    returncode = _run_child(request, fds[0] if fds else None, connection, fds[1] if len(fds) > 1 else None)
                finally:
                    for fd in fds:
                        os.close(fd)
                if returncode is not None:
                    connection.sendall((json.dumps({"returncode": returncode}) + "\n").encode())
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


def _run_child(
    request: dict, log_fd: int | None, connection: socket.socket | None = None, notice_fd: int | None = None
) -> int | None:
    """Fork, run the cell in the child (output to the job's log), return its exit status.

    The child lives in the server's session, so a Ctrl-C on the terminal never reaches it. Its
    client (the cell job's supervisor) does get it, and dies or closes the connection: then the
    child is stopped at once (SIGTERM, SIGKILL after a grace period) and None is returned.
    """
    from speedatlas.measure import runner

    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            if log_fd is not None:
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
            if notice_fd is not None:  # the terminal: where "could not write the cell" must be seen
                from speedatlas.measure.notice import NOTICE_ENV

                os.environ[NOTICE_ENV] = str(notice_fd)
            runner.mark_process_start(time.perf_counter(), launcher="forkserver")
            spec = request["spec"]
            runner.inject_fault(spec)
            runner.run_cell(spec, request["out"], spec.get("protocol", 0))
            code = 0
        except runner.CellWriteError as error:
            code = runner.report_write_error(error)
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    try:
        status = _wait(pid, connection)
    finally:
        _stop(pid)  # the server was told to stop (SIGTERM) while serving: the cell stops with it
    if status is None:
        print(f"speedatlas forkserver: the client of cell process {pid} went away; stopped it", file=sys.stderr)
        return None
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _wait(pid: int, connection: socket.socket | None) -> int | None:
    """The child's wait status, or None when the client hung up first (the child is then stopped)."""
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            if connection is None:
                return os.waitpid(pid, 0)[1]
            watched = [connection] + ([pidfd] if pidfd is not None else [])
            readable, _, _ = select.select(watched, [], [], None if pidfd is not None else 0.05)
            if connection in readable and not connection.recv(1, socket.MSG_PEEK):
                return None  # EOF: the supervisor is gone (Ctrl-C, SIGTERM, kill -9)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _stop(pid: int, grace_s: float = 2.0) -> None:
    """Stop a child that is still running: SIGTERM (it removes its temporary file), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
            os.kill(pid, sig)
        except ChildProcessError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                return
            time.sleep(0.02)


def request_cell(path: str, spec: dict, out: str) -> int:
    """Client side (used by the supervisor): run one cell through the server.

    Our stderr (the job's log) travels with the request, so the cell's output lands in its log,
    and so does the terminal's descriptor (speedatlas.measure.notice) where there is one.
    """
    from speedatlas.measure.notice import notice_fd

    terminal = notice_fd()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        message = json.dumps({"spec": spec, "out": os.path.abspath(out)}).encode()
        socket.send_fds(client, [message], [sys.stderr.fileno()] + ([terminal] if terminal is not None else []))
        answer = _read_line(client)
    return int(json.loads(answer)["returncode"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve cells from a process that imported torch once")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--parent", type=int, required=True, help="exit when this process is gone")
    args = parser.parse_args(argv)
    serve(args.socket, args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
