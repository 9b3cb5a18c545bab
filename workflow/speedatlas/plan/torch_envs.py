"""Per-torch-version environments: render a version's spec, build it with uv, record the outcome.

    python -m speedatlas.plan.torch_envs --version 2.0 --spec '<rendered spec>' --marker .speedatlas/envs/torch-2.0/env.json

Every entry of `torch_versions` other than "current" gets its own virtual environment under
`.speedatlas/envs/torch-<version>/` (relative to the working directory: it survives `rm -r
results` and is git-ignored), built once by the `torch_env` rule and reused by every cell and every
later run. The spec is a requirements file for `uv pip install -r`: `envs/torch-<version>.txt`
when it exists, else the template `envs/torch-default.txt`, with the placeholders filled in.

A build that fails (no wheel for this Python or platform, a typo such as "2.99") is a result, not a
crash: the marker records status "failed" and uv's message naming the version, the job exits 0,
and the supervisor records that version's cells as `unavailable` with that message, so the rest of
the study and its report still complete. Retry with `--forcerun <marker>` or by deleting the
environment's folder.

Orchestration side: standard library only (the supervisor reads markers under snakemake's
interpreter; the build itself only calls uv and the new environment's Python).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ENVS_ROOT = ".speedatlas/envs"  # relative to the working directory, like results/
MARKER_NAME = "env.json"
DEFAULT_SPEC = "torch-default.txt"
CURRENT = "current"
# The oldest torch the runner supports (torchvision.models.get_model needs torchvision >= 0.14).
OLDEST_SUPPORTED = (2, 0)
# pyarrow 26 needs NumPy 2 at import but does not declare it, so no resolver can avoid it.
PYARROW_FOR_NUMPY1 = "pyarrow>=14,<26"
_PYTHON_LINE = re.compile(r"^#\s*python:\s*(\S+)\s*$", re.MULTILINE)

PROBE = """\
import json, platform, sys
import numpy, pyarrow, pyarrow.parquet, torch, torchvision
from speedatlas.measure.hardware.envinfo import collect_torch_build
print(json.dumps({
    "torch_version": torch.__version__,
    "torchvision_version": torchvision.__version__,
    "torch_build": collect_torch_build(torch),
    "numpy_version": numpy.__version__,
    "pyarrow_version": pyarrow.__version__,
    "python": platform.python_version(),
}))
"""


class BuildError(RuntimeError):
    """A step of the build failed; the message says which and quotes the tool's error."""


def env_dir(version: str) -> str:
    """Folder of a version's environment, relative to the working directory."""
    return f"{ENVS_ROOT}/torch-{version}"


def marker_path(version: str) -> str:
    """The torch_env rule's output: written last, so its presence means the build finished."""
    return f"{env_dir(version)}/{MARKER_NAME}"


def python_path(version: str) -> str:
    """Interpreter of a version's environment ("current": the one running snakemake, via PATH)."""
    return "python" if version == CURRENT else f"{env_dir(version)}/bin/python"


def release(version: str) -> tuple[int, ...]:
    """'2.5.1' -> (2, 5, 1)."""
    return tuple(int(part) for part in version.split("."))


def placeholders(version: str) -> dict[str, str]:
    """Values of the template's placeholders for a version (torch < 2.3 was built against NumPy 1)."""
    numpy1 = release(version)[:2] < (2, 3)
    return {
        "{version}": version,
        "{torch_requirement}": f"torch=={version}.*",
        "{numpy_requirement}": "numpy<2" if numpy1 else "numpy",
        "{pyarrow_requirement}": PYARROW_FOR_NUMPY1 if numpy1 else "pyarrow>=14",
    }


def current_python() -> str:
    """Major.minor of the interpreter running snakemake: environments use the same by default."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def render_spec(version: str, spec_dir: Path, python: str | None = None) -> str:
    """The requirements text of a version's environment, complete and self-describing.

    `envs/torch-<version>.txt` overrides the default template. A `# python: X.Y` line in the spec
    picks the interpreter; without one, the snakemake interpreter's version is written in, so the
    text (and the identity hashed from it) changes when that interpreter does.
    """
    spec_dir = Path(spec_dir)
    explicit = spec_dir / f"torch-{version}.txt"
    source = explicit if explicit.is_file() else spec_dir / DEFAULT_SPEC
    text = source.read_text()
    for token, value in placeholders(version).items():
        text = text.replace(token, value)
    header = f"# speedatlas: environment of torch {version}, rendered from envs/{source.name}\n"
    if not _PYTHON_LINE.search(text):
        header += f"# python: {python or current_python()}\n"
    return header + text.rstrip("\n") + "\n"


def python_request(spec: str) -> str:
    """The interpreter a rendered spec asks for (its `# python:` line)."""
    match = _PYTHON_LINE.search(spec)
    return match.group(1) if match else current_python()


def env_id(spec: str) -> str:
    """Identity of an environment: a hash of its rendered spec (a cell's param, so a new spec
    reruns that version's cells and no others)."""
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def spec_with_env(cell_spec: str, version: str, rendered: str) -> str:
    """A cell's canonical JSON plus its environment ({"id", "marker"} under "torch_env").

    Cells of "current" keep their plain spec, so nothing about environments touches them.
    """
    spec = json.loads(cell_spec)
    spec["torch_env"] = {"id": env_id(rendered), "marker": marker_path(version)}
    return json.dumps(spec, sort_keys=True)


def find_uv() -> list[str] | None:
    """The uv command: $UV (uv sets it for the commands it runs), uv on PATH, or `python -m uv`."""
    candidate = os.environ.get("UV")
    if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return [candidate]
    found = shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    return None


_NOISE = ("Using ", "Resolved ", "Prepared ", "Installed ", "Uninstalled ", "Audited ", "Downloading ",
          "Downloaded ", "Building ", "Built ", "Creating virtual", "Activate with", "+ ", "- ")


def uv_message(output: str, limit: int = 1500) -> str:
    """uv's error as one sentence: box-drawing, 'error:'/'cause:' labels and progress dropped.

    A cause ('cause:' or '╰─▶') is joined to what it explains with ': '; wrapped lines with ' '.
    """
    message = ""
    for line in output.splitlines():
        raw = line.strip()
        is_cause = bool(re.match(r"^(cause:|caused by:|[╰├]─▶)", raw, flags=re.IGNORECASE))
        text = raw.lstrip("×╰─▶│├┬┴┼╭╮╯ ").strip()
        text = re.sub(r"^(error|cause|caused by):\s*", "", text, flags=re.IGNORECASE)
        if not text or text.startswith(_NOISE):
            continue
        if message:
            message += ": " if is_cause and message[-1] not in ".:;!?" else " "
        message += text
    message = message or "uv failed without a message"
    return message if len(message) <= limit else message[: limit - 1] + "…"


def last_line(output: str) -> str:
    """The exception line of a Python traceback."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _run(command: list[str], what: str, env: dict[str, str] | None = None, summary=uv_message) -> str:
    """Run a build step, echo its output to our log; raise BuildError with its message on failure."""
    shown = " ".join(command)
    print(f"speedatlas: {what}: {shown if len(shown) < 300 else shown[:300] + ' …'}", file=sys.stderr, flush=True)
    # stdout and stderr are read on two threads and echoed line by line as they come, so the
    # rule's log shows uv's progress through a download of several GB, not nothing until the end.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    captured: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def echo(stream, name: str) -> None:
        for line in stream:
            captured[name].append(line)
            sys.stderr.write(line)
            sys.stderr.flush()

    readers = [threading.Thread(target=echo, args=(process.stdout, "stdout")),
               threading.Thread(target=echo, args=(process.stderr, "stderr"))]
    for reader in readers:
        reader.start()
    returncode = process.wait()
    for reader in readers:
        reader.join()
    stdout, stderr = "".join(captured["stdout"]), "".join(captured["stderr"])
    if returncode != 0:
        raise BuildError(f"{what} failed: {summary(stderr or stdout + stderr)}")
    return stdout


def _tool_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}


def probe(python: str, code: str = PROBE, what: str = "importing torch, torchvision, numpy and pyarrow") -> dict[str, str]:
    """Import what the runner needs in the new environment and report the actual versions
    (`code` prints them as one JSON line)."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**_tool_env(), "PYTHONPATH": package_root}
    try:
        stdout = _run([python, "-c", code], what, env, last_line)
    except OSError as error:
        raise BuildError(f"the environment's Python cannot start: {error}") from None
    return json.loads(stdout.strip().splitlines()[-1])


def _fresh_folder(target: Path) -> None:
    """Remove a previous build of this version: a new spec never inherits old packages."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)


def build(version: str, spec: str, marker: str | os.PathLike[str]) -> dict[str, object]:
    """Build the environment and write its marker; never raises for a failed build."""
    record: dict[str, object] = {"torch_requested": version}
    return build_env(spec, marker, record, f"torch {version}", probe)


def build_env(spec: str, marker: str | os.PathLike[str], record: dict[str, object], what: str,
              check: Callable[[str], dict[str, str]], prepare: Callable[[Path], None] | None = None) -> dict[str, object]:
    """A uv venv in the marker's folder from a rendered spec, then `check(python)` (the versions
    it reports go into the marker); `prepare(folder)` runs between `uv venv` and the install.
    Shared by the torch-version environments and the MLX environment (speedatlas.plan.mlx_env).
    Writes the marker, status ok or failed with the tool's message; never raises for a failed build.
    """
    marker = Path(marker)
    target = marker.parent
    started = time.monotonic()
    record = {
        **record,
        "env_id": env_id(spec),
        "python_request": python_request(spec),
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        uv = find_uv()
        if uv is None:
            raise BuildError("uv was not found (not in $UV, not on PATH, not importable); install uv "
                             "(https://docs.astral.sh/uv/) or run the workflow through `uv run snakemake`")
        record["uv"] = _run([*uv, "--version"], "uv version", _tool_env()).strip()
        request = python_request(spec)
        interpreter = sys.executable if request == current_python() else request
        _fresh_folder(target)
        _run([*uv, "venv", "--python", interpreter, str(target)], "uv venv", _tool_env())
        if prepare is not None:
            prepare(target)
        requirements = target / "requirements.txt"
        requirements.write_text(spec)
        python = str(target / "bin" / "python")
        _run([*uv, "pip", "install", "--python", python, "-r", str(requirements)], "uv pip install", _tool_env())
        record.update(check(python))
        record["status"] = "ok"
    except BuildError as error:
        record.update(status="failed", error=f"{what} environment could not be built: {error}")
    record["build_seconds"] = round(time.monotonic() - started, 1)
    write_marker(record, marker)
    return record


def write_marker(record: dict[str, object], marker: Path) -> None:
    """Atomically (temporary file, then rename): a half-written marker never looks complete."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".env-", suffix=".json.tmp", dir=marker.parent)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(fd, 0o666 & ~_umask())  # readable by others, as any file the umask allows
        json.dump(record, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, marker)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build one torch version's environment with uv")
    parser.add_argument("--version", required=True, help="the configured release prefix, e.g. 2.5")
    parser.add_argument("--spec", required=True, help="the rendered requirements text (render_spec)")
    parser.add_argument("--marker", required=True, help="marker file to write, inside the environment's folder")
    args = parser.parse_args(argv)
    record = build(args.version, args.spec, args.marker)
    if record["status"] == "ok":
        print(f"speedatlas: torch {args.version} -> {record['torch_version']} ({record['torch_build']}), "
              f"torchvision {record['torchvision_version']}, built in {record['build_seconds']} s", file=sys.stderr)
    else:
        print(f"speedatlas: {record['error']}", file=sys.stderr)
        print("speedatlas: its cells will be recorded as unavailable; to retry the build run "
              f"`snakemake --forcerun {args.marker}` or delete {Path(args.marker).parent}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
