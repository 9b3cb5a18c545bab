"""Every shell command the documentation shows works as written.

The commands are taken from the fenced `bash`/`sh` blocks of README.md, config/README.md and
docs/*.md, from inline code that starts with `uv run snakemake`, and from the report's "How to
reproduce" section. Each runs as written in a scratch copy of the repository's tracked files
(with this checkout's .venv), a `snakemake` command with `-n` appended (a dry run: the DAG is
built, the config validated, the targets resolved; nothing is timed). A few commands cannot run
here; they are listed below with the reason, and each must still appear in the documents.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

DOCUMENTS = ["README.md", "config/README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}

# Commands that cannot run in a test, each with the reason.
CANNOT_RUN = {
    "uv run pytest": "the test suite itself (this test is part of it)",
    "uv run pytest -m slurm -v": "the test suite itself (tests/test_slurm.py brings up SLURM)",
    "uv run python benchmarks/scale.py": "a 5-minute benchmark that needs a quiet machine",
    "uv sync --group cluster": "changes the shared .venv (installs the SLURM plugin)",
    "uv sync --group kubernetes": "changes the shared .venv (installs the Kubernetes plugin)",
    "uv run snakemake --profile profiles/slurm --configfile config/my_study.yaml": "needs a SLURM cluster; config/my_study.yaml stands for the reader's own config",
    "uv run snakemake --profile profiles/slurm --configfile config/my_study.yaml --default-resources slurm_account=myproj slurm_partition=gpu runtime=60 mem_mb=2000": "needs a SLURM cluster and account",
    "uv run snakemake --profile profiles/kubernetes --configfile config/my_study.yaml --container-image REGISTRY/speedatlas:TAG --default-storage-prefix s3://BUCKET/speedatlas": "needs a Kubernetes cluster, an image and an S3 bucket",
    "snakemake -s Snakefile --directory TMP --configfile tests/configs/slurm.yaml --profile profiles/slurm": "needs a SLURM cluster (tests/test_slurm.py runs it)",
    "sudo tests/cluster/slurm_up.sh": "installs and starts SLURM (tests/test_slurm.py runs it)",
    "sinfo; srun hostname; sbatch --wrap 'hostname'": "needs a SLURM cluster",
    "sudo tests/cluster/slurm_down.sh": "stops SLURM daemons (tests/test_slurm.py runs it)",
    "sudo tests/cluster/slurm_down.sh --purge": "stops SLURM daemons (tests/test_slurm.py runs it)",
    "uv run --no-dev snakemake ...": "'...' stands for the reader's arguments",
}

# Commands the README shows in a context: the keys the embedded default config needs for them.
CONTEXT = {
    "uv run snakemake --cores 1 --forcerun .speedatlas/envs/torch-2.99/env.json": {
        "torch_versions": ["current", "2.99"],  # "a version that cannot be installed"
    },
}

# `--report` renders a finished study (a dry run does not apply to it): in an empty copy it gets
# as far as looking for the study's outputs, which proves the command line and the DAG are right.
NEEDS_A_FINISHED_STUDY = "marked for report but does not exist"


def _commands_in_block(block: str) -> list[str]:
    """Logical commands of a shell block: continuations joined, comments and blank lines dropped."""
    commands, current = [], ""
    for line in block.splitlines():
        line = re.sub(r"\s+#.*$", "", line).rstrip()
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        commands.append(" ".join((current + line.strip()).split()))
        current = ""
    return commands


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for every shell command the documents show."""
    found = []
    for document in DOCUMENTS:
        text = (REPO / document).read_text()
        for language, block in re.findall(r"^ *```(\w*)\n(.*?)^ *```", text, flags=re.S | re.M):
            if language in SHELL_LANGUAGES:
                found += [(document, command) for command in _commands_in_block(block)]
        outside = re.sub(r"^ *```.*?^ *```", "", text, flags=re.S | re.M)
        for span in re.findall(r"`(uv run (?:--no-dev )?snakemake[^`]*)`", outside):
            found.append((document, " ".join(span.split())))
    return list(dict.fromkeys(found))


def reproduce_commands() -> list[tuple[str, str]]:
    """The commands the report's "How to reproduce" prints for a study given --configfile."""
    import pandas as pd

    from speedatlas.present.report import sections as report_sections

    study = {"machine": "m1max", "configfiles": ["config/m1max.yaml"], "publish_name": "m1max"}
    text = report_sections.reproduce(pd.DataFrame({"machine": ["m1max"], "pipeline_commit": ["abc"]}), study)
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [("report: How to reproduce", command) for command in _commands_in_block(block)]


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory) -> Path:
    """The repository's tracked files, copied: commands run as written without touching this checkout."""
    root = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


def run_as_written(command: str, cwd: Path) -> subprocess.CompletedProcess:
    if re.match(r"(uv run (--no-dev )?)?snakemake\b", command):
        command += " -n"  # a dry run: everything but the jobs
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(REPO / ".venv"), "UV_NO_SYNC": "1"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


COMMANDS = documented_commands() + reproduce_commands()
# each distinct command runs once, named by the first place that shows it
RUNNABLE = list({c: (d, c) for d, c in reversed(COMMANDS) if c not in CANNOT_RUN}.values())[::-1]


def test_the_documents_show_commands():
    texts = {command for _, command in COMMANDS}
    assert "uv run snakemake --cores 1 publish --configfile config/m1max.yaml" in texts
    assert len([c for c in texts if c not in CANNOT_RUN]) >= 6
    stale = sorted(set(CANNOT_RUN) - texts)
    assert not stale, f"CANNOT_RUN lists commands no document shows any more: {stale}"


@pytest.mark.parametrize(
    ("document", "command"),
    [pytest.param(d, c, id=c[:90]) for d, c in RUNNABLE],
)
def test_documented_command_runs_as_written(scratch_repo, tmp_path, document, command):
    if command in CONTEXT:
        import yaml

        shutil.copytree(scratch_repo, tmp_path / "repo")
        scratch_repo = tmp_path / "repo"
        default = scratch_repo / "config" / "config.yaml"
        default.write_text(yaml.safe_dump({**yaml.safe_load(default.read_text()), **CONTEXT[command]}))
    result = run_as_written(command, scratch_repo)
    if "--report" in command.split():
        assert NEEDS_A_FINISHED_STUDY in result.stdout + result.stderr, result.stdout[-3000:] + result.stderr[-3000:]
        return
    assert result.returncode == 0, f"{document}: `{command}` failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_the_old_form_is_caught(scratch_repo):
    """The form issue 16 found in the README fails, so this test would have caught it."""
    result = run_as_written("uv run snakemake --cores 1 --configfile config/m1max.yaml publish", scratch_repo)
    assert result.returncode != 0 and "No such file or directory: 'publish'" in result.stdout + result.stderr
