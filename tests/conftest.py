"""Shared helpers: run the real workflow on tiny configs in temporary directories."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"

# Small enough that a cell takes a second of compute; the fixed cost is the torch import.
TINY = {
    "machine": "test",
    "devices": ["cpu", "mps"],
    "baseline_device": "cpu",
    "models": [
        "resnet18",
        {"name": "mobilenet_v3_small", "batch_sizes": [2], "modes": ["infer"]},
        # AlexNet's pooling cannot take 16x16 images: a cell that fails inside the model.
        {"name": "alexnet", "devices": ["cpu"], "input_size": 16, "batch_sizes": [1], "modes": ["infer"]},
    ],
    "batch_sizes": [1, 2],
    "dtypes": ["float32"],
    "modes": ["train", "infer"],
    "input_size": 64,
    "num_classes": 4,
    "timing": {"warmup": 1, "repeats": 4, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1,
    "dtype_support": {"enabled": False},  # probes have their own tests (test_dtype_support, test_e2e_seed)
}


def locked(path: str | Path) -> bool:
    """Whether some holder has `path` locked (shared or exclusive) against an exclusive taker."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def write_config(directory: Path, config: dict, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(directory: Path, configfile: Path | None, *args: str, check: bool = True, timeout: int = 1200):
    """Run the repo's workflow in `directory` and return the CompletedProcess (text output)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(directory)]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    command += list(args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(directory: Path, configfile: Path | None, *args: str) -> dict[str, int]:
    """Jobs a dry run would execute, per rule (parsed from snakemake's 'Job stats' table)."""
    result = snakemake(directory, configfile, "-n", "--cores", "1", *args)
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    counts: dict[str, int] = {}
    lines = text.split("Job stats:", 1)[1].splitlines()
    for line in lines[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """The TINY study, run once for the whole session (read-only for tests that share it)."""
    directory = tmp_path_factory.mktemp("tiny")
    configfile = write_config(directory, TINY)
    result = snakemake(directory, configfile, "--cores", "4")
    (directory / "run.log").write_text(result.stdout + result.stderr)
    return directory


TINY_CELLS = 8 + 2 + 1  # resnet18: 2 devices x 2 batches x 2 modes; mobilenet: 2 devices; alexnet: 1
