"""Run workflows through a real SLURM (one node on loopback) with profiles/slurm.

The cluster comes from tests/cluster/slurm_up.sh (apt-get installs SLURM 22.05 on Debian 12
if missing, then starts munged, slurmctld and slurmd by hand) and goes away with
tests/cluster/slurm_down.sh when the module is done, unless it was already up before.

Needs root, apt-get (or SLURM already installed) and the executor plugin
(`uv sync --group cluster`); skips with the reason otherwise. Takes a few minutes: every
SLURM job starts Snakemake twice (the batch script, then the job step).

    uv run pytest -m slurm -v
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
UP = REPO / "tests" / "cluster" / "slurm_up.sh"
DOWN = REPO / "tests" / "cluster" / "slurm_down.sh"

# The real workflow and a config small enough for a 2-core test machine (each SLURM job
# costs ~20-35 s here, so: few cells, torch "current" only).
WORKFLOW = Path(os.environ.get("SPEEDATLAS_SLURM_WORKFLOW", REPO / "Snakefile"))
CONFIG = Path(os.environ.get("SPEEDATLAS_SLURM_CONFIG", REPO / "tests" / "configs" / "slurm.yaml"))

# A stand-in with the same rule names, device wildcard and resources (no torch needed).
SMOKE_WORKFLOW = REPO / "tests" / "cluster" / "smoke.smk"
SMOKE_DEVICES = ["cpu", "cuda:1", "mps"]

# The test cluster gets two stand-in GPUs and the feature "mps", so the profile's
# per-device requests (--gres=gpu:N, --constraint=mps) can be scheduled and checked.
CLUSTER_ENV = {"SLURM_UP_GPUS": "2", "SLURM_UP_FEATURES": "mps"}

RUN_TIMEOUT_S = 900
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")


def _daemons_running() -> bool:
    for pidfile in ("/run/slurmctld.pid", "/run/slurmd.pid"):
        try:
            os.kill(int(Path(pidfile).read_text().strip()), 0)
        except (OSError, ValueError):
            return False
    return True


@pytest.fixture(scope="module")
def slurm_cluster(request):
    """A running one-node cluster; stopped at the end if this fixture started it."""
    if sys.platform != "linux":
        pytest.skip("the SLURM test cluster needs Linux")
    if os.geteuid() != 0:
        pytest.skip("the SLURM test cluster needs root (it installs packages and starts daemons)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is missing: uv sync --group cluster")

    was_running = _daemons_running()
    packages_before = _installed_packages()
    added: list[str] = []

    def leave_the_machine_as_found() -> None:
        if not was_running:
            subprocess.run([str(DOWN)], check=False, timeout=120)
        if added:
            _purge(added)

    request.addfinalizer(leave_the_machine_as_found)
    up = subprocess.run(
        [str(UP)],
        env={**os.environ, **CLUSTER_ENV},
        capture_output=True,
        text=True,
        timeout=900,
    )
    added.extend(sorted(_installed_packages() - packages_before))
    assert up.returncode == 0, f"slurm_up.sh failed:\n{up.stdout}\n{up.stderr}"
    return {"host": os.uname().nodename}


def _installed_packages() -> set[str]:
    if shutil.which("dpkg-query") is None:
        return set()
    listed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"], capture_output=True, text=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.endswith(" installed")}


def _purge(packages: list[str]) -> None:
    """Remove what slurm_up.sh installed. Not only tidiness: with SLURM's client tools
    installed and no controller answering, importing snakemake-executor-plugin-slurm (which
    every Snakemake start does, to list its plugins) waits ~9 s for `scontrol show config`,
    so every later Snakemake run on the machine would start 9 s slower."""
    subprocess.run(["apt-get", "purge", "-y", "-qq", *packages], check=False, timeout=300,
                   capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    for written in ("/etc/slurm/slurm.conf", "/etc/slurm/gres.conf"):
        Path(written).unlink(missing_ok=True)


def run_snakemake(workdir: Path, *args: str) -> tuple[int, str]:
    """snakemake --profile profiles/slurm in workdir; returns (exit code, output).

    Snakemake waiting on SLURM ignores SIGTERM, so on a time-out the whole process group
    gets SIGINT (Snakemake cancels its SLURM jobs) and then SIGKILL.
    """
    cmd = [
        sys.executable, "-m", "snakemake",
        "--directory", str(workdir),
        "--profile", str(PROFILE),
        "--jobs", "2",
        # test-cluster settings: no accounts to guess, poll fast
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "2",
        *args,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    log = workdir / "snakemake.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = -1
    return rc, log.read_text()


def submissions(output: str) -> dict[str, Path]:
    """SLURM job id -> its log file, from Snakemake's 'has been submitted' lines."""
    return {slurm_id: Path(log) for _, slurm_id, log in SUBMITTED.findall(output)}


def slurm_job(job_id: str) -> dict[str, str]:
    """scontrol's record of a job (kept MinJobAge = 1 h after it ends on the test cluster)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def assert_went_through_slurm(output: str, rules: set[str]) -> dict[str, dict[str, str]]:
    jobs = submissions(output)
    assert jobs, f"no job was submitted to SLURM:\n{output[-4000:]}"
    seen_rules = set()
    records = {}
    for job_id, log in jobs.items():
        record = slurm_job(job_id)
        assert record["JobState"] == "COMPLETED", f"SLURM job {job_id}: {record['JobState']}\n{log.read_text()}"
        assert log.is_file(), f"SLURM log {log} of job {job_id} is missing"
        # logs are .snakemake/slurm_logs/rule_NAME/[WILDCARDS/]JOBID.log
        seen_rules.update(part[len("rule_") :] for part in log.parts if part.startswith("rule_"))
        records[job_id] = record
    assert rules <= seen_rules, f"rules {rules - seen_rules} did not go through SLURM"
    return records


def test_profile_drives_slurm(slurm_cluster, tmp_path):
    """The stand-in workflow: per-device requests and exclusive timing jobs, checked in SLURM."""
    rc, output = run_snakemake(
        tmp_path,
        "-s", str(SMOKE_WORKFLOW),
        "--config", f"devices={json.dumps(SMOKE_DEVICES)}",
    )  # fmt: skip
    assert rc == 0, output[-6000:]
    records = assert_went_through_slurm(output, {"bench", "aggregate"})

    cells = json.loads((tmp_path / "results" / "cells.json").read_text())["cells"]
    assert sorted(c["device"] for c in cells) == sorted(SMOKE_DEVICES)
    by_device = {c["device"]: c for c in cells}
    for cell in cells:
        assert cell["slurm_job_id"] in records, cell
        assert cell["host"] == slurm_cluster["host"]
        # each job runs the interpreter that runs snakemake (shared venv on one node)
        assert Path(cell["python"]).resolve() == Path(sys.executable).resolve()
        record = records[cell["slurm_job_id"]]
        assert record["OverSubscribe"] == "NO", f"timing job {cell} did not get its node exclusively"
    # cuda:1 needs GPU index 1 to exist inside the job; cpu and mps cells get no GPU
    assert by_device["cuda:1"]["cuda_visible_devices"] == "0,1"
    assert records[by_device["cuda:1"]["slurm_job_id"]]["TresPerNode"].endswith("gpu:2")
    assert by_device["cpu"]["cuda_visible_devices"] is None
    assert records[by_device["mps"]["slurm_job_id"]]["Features"] == "mps"
    # the profile lifts the workflow's one-timing-job-at-a-time limit (speedatlas_timing):
    # Snakemake hands SLURM two timing jobs at once (--jobs 2) ...
    first_done = output.index("Finished jobid")
    assert len(SUBMITTED.findall(output[:first_done])) == 2, output[:first_done]
    # ... and SLURM, not Snakemake, keeps them apart: one after another on the single node
    spans = sorted((records[c["slurm_job_id"]]["StartTime"], records[c["slurm_job_id"]]["EndTime"]) for c in cells)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, f"timing jobs overlapped: {spans}"


def test_workflow_on_slurm(slurm_cluster, tmp_path):
    """The real workflow, end to end, every job through SLURM."""
    for path in (WORKFLOW, CONFIG):
        if not path.is_file():
            pytest.skip(f"{path} does not exist yet")
    rc, output = run_snakemake(tmp_path, "-s", str(WORKFLOW), "--configfile", str(CONFIG))
    assert rc == 0, output[-6000:]
    records = assert_went_through_slurm(output, {"bench", "aggregate"})
    bench = [r for r in records.values() if "rule_bench" in r.get("StdOut", "")]
    assert bench and all(r["OverSubscribe"] == "NO" for r in bench)
    assert "steps (100%) done" in output
