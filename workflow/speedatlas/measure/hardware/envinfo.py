"""Collect the environment a cell ran in (pyperf-style collect_* functions).

Runner side: standard library and torch only.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[4]


def collect_cpu_model() -> str:
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["/usr/sbin/sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect_pipeline_commit() -> str:
    """The orchestrator passes SPEEDATLAS_COMMIT; computing it here is the fallback."""
    if os.environ.get("SPEEDATLAS_COMMIT"):
        return os.environ["SPEEDATLAS_COMMIT"]
    return pipeline_commit(REPO_DIR)


def pipeline_commit(repo: Path) -> str:
    """HEAD of the speedatlas checkout, with '-dirty' when tracked files differ from it."""
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", "HEAD"], capture_output=True, text=True, timeout=10
        )
        head = result.stdout.strip()
        if result.returncode != 0 or not head:
            return "unknown"  # not a git checkout (e.g. a copy sent to another machine)
        dirty = subprocess.run(
            ["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--", "."], capture_output=True, timeout=10
        ).returncode
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect_torch_build(torch) -> str:
    if getattr(torch.version, "cuda", None):
        return f"cuda {torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"rocm {torch.version.hip}"
    return "cpu"


def collect_torchvision_version() -> str | None:
    """From the package metadata: importing torchvision costs seconds (it imports torch._dynamo),
    which a cell whose device is absent should not pay."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torchvision")
    except PackageNotFoundError:
        return None


def collect(torch) -> dict[str, object]:
    """Cell-level environment columns."""
    return {
        "torch_version": torch.__version__,
        "torchvision_version": collect_torchvision_version(),
        "torch_build": collect_torch_build(torch),
        "cpu_model": collect_cpu_model(),
        "threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "pipeline_commit": collect_pipeline_commit(),
        "mps_fallback": os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK", "0") not in ("", "0"),
        "cpu_governor": cpu_governor(),
    }


def cpu_governor(sysfs: str = "/sys") -> str | None:
    """The cpufreq governor of the first CPU this process may use (Linux), e.g. 'performance'
    or 'powersave': a governor that lowers clocks under light load slows host-bound cells."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    try:
        with open(os.path.join(sysfs, "devices", "system", "cpu", f"cpu{cpus[0]}", "cpufreq", "scaling_governor")) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


# A torch environment's marker (written by plan/torch_envs.py) says whether it can run cells.
def read_marker(marker: str | os.PathLike[str]) -> dict[str, object]:
    with open(marker) as handle:
        return json.load(handle)


def unusable_reason(marker: str | os.PathLike[str]) -> str | None:
    """None if the marker records a working environment, else the sentence for the cell's error."""
    try:
        record = read_marker(marker)
    except (OSError, ValueError) as error:
        return f"the torch environment's marker {marker} cannot be read: {error}"
    if record.get("status") == "ok":
        return None
    return str(record.get("error") or f"torch {record.get('torch_requested')} environment could not be built")
