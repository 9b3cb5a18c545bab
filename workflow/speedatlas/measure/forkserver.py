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
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    server.settimeout(1.0)
    print(f"speedatlas forkserver ready on {path}", file=sys.stderr, flush=True)
    try:
        if hasattr(os, "pidfd_open"):
            _serve_concurrently(server, parent)
        while _alive(parent):  # no pidfds (not Linux): one cell at a time
            try:
                connection, _ = server.accept()
            except socket.timeout:
                continue
            with connection:
                message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 1)
                request = json.loads(message.decode())
                returncode = _run_child(request, fds[0] if fds else None)
                for fd in fds:
                    os.close(fd)
                connection.sendall((json.dumps({"returncode": returncode}) + "\n").encode())
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


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


def _serve_concurrently(server: socket.socket, parent: int) -> None:
    """Serve requests while earlier children still run (concurrency: device runs one cell per
    GPU at once): each child's pidfd is watched beside the socket, and its answer goes back the
    moment it exits. Under concurrency: machine one request comes at a time, as before."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    try:
        while _alive(parent):
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is server:
                    try:
                        connection, _ = server.accept()
                    except socket.timeout:
                        continue
                    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 1)
                    pid = _fork_child(json.loads(message.decode()), fds[0] if fds else None)
                    for fd in fds:
                        os.close(fd)
                    selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (pid, connection))
                else:
                    pid, connection = key.data
                    selector.unregister(key.fileobj)
                    os.close(key.fileobj)
                    with connection:
                        connection.sendall((json.dumps({"returncode": _wait(pid)}) + "\n").encode())
    finally:
        selector.close()


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _run_child(request: dict, log_fd: int | None) -> int:
    """Fork, run the cell in the child (output to the job's log), return its exit status."""
    return _wait(_fork_child(request, log_fd))


def _fork_child(request: dict, log_fd: int | None) -> int:
    """Fork a child that runs the cell (output to the job's log); return its pid."""
    from speedatlas.measure import runner

    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            if log_fd is not None:
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
            runner.mark_process_start(time.perf_counter(), launcher="forkserver")
            spec = request["spec"]
            runner.inject_fault(spec)
            runner.run_cell(spec, request["out"], spec.get("protocol", 0))
            code = 0
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def request_cell(path: str, spec: dict, out: str) -> int:
    """Client side (used by the supervisor): run one cell through the server.

    Our stderr (the job's log) travels with the request, so the cell's output lands in its log.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        message = json.dumps({"spec": spec, "out": os.path.abspath(out)}).encode()
        socket.send_fds(client, [message], [sys.stderr.fileno()])
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
