"""Faults of issue 27's third round injected for real, each through snakemake on a tiny cpu study:
cell files that read but lie (item 7), a checkout under a folder with a space (8), a second run
beside a live one (9), an enormous matrix (12), two factories of one file name in a bundle (13)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from conftest import REPO, locked, write_config
from test_faults import ONE_CELL, command, isolated_env

from speedatlas import cellkey

pytestmark = pytest.mark.slow


def run(directory: Path, configfile: Path, *args: str, env: dict | None = None, timeout: int = 600):
    result = subprocess.run(command(directory, configfile, *args), env=env or isolated_env(directory),
                            capture_output=True, text=True, timeout=timeout)
    return result, result.stdout + result.stderr


# --- 7. valid Parquet, wrong content ------------------------------------------------------------

EIGHT_CELLS = {**ONE_CELL, "machine": "lies", "batch_sizes": [2, 3, 4, 5], "modes": ["infer", "train"]}


def cell(batch: int, mode: str) -> str:
    return cellkey.cell_path({"machine": "lies", "workload": "synthetic", "torch": "current", "device": "cpu",
                              "model": "resnet18", "dtype": "float32", "mode": mode, "variant": "eager",
                              "batch": batch})


def rewrite(path: Path, change) -> None:
    """Rewrite a cell file with pyarrow: still valid Parquet, other content."""
    pq.write_table(change(pq.read_table(path)), path)


def replaced(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, table.schema.field(name).type))


def test_cell_files_that_lie_are_set_aside_named_and_measured_again(tmp_path):
    configfile = write_config(tmp_path, EIGHT_CELLS)
    result, terminal = run(tmp_path, configfile, "--cores", "1")
    assert result.returncode == 0, terminal[-3000:]
    files = {name: tmp_path / cell(batch, mode) for name, batch, mode in [
        ("copied", 2, "infer"), ("status", 2, "train"), ("doubled", 3, "train"), ("missing", 4, "infer"),
        ("negative", 4, "train"), ("spec", 5, "infer"), ("old", 5, "train"), ("source", 3, "infer")]}
    assert all(pq.read_table(f)["status"].to_pylist() == ["ok", "ok"] for f in files.values())
    recorded = pq.read_table(files["spec"])["spec_sha256"].unique().to_pylist()
    assert recorded == [cellkey.spec_sha256(_plan_spec(tmp_path, files["spec"]))]  # what the job received

    shutil.copyfile(files["source"], files["copied"])  # another cell's file over this one's
    rewrite(files["status"], lambda t: replaced(t, "status", ["bogus"] * len(t)))
    rewrite(files["doubled"], lambda t: pa.concat_tables([t, t]))
    rewrite(files["missing"], lambda t: t.drop_columns(["step_time_s"]))
    rewrite(files["negative"], lambda t: replaced(t, "step_time_s", pc.negate(t["step_time_s"]).to_pylist()))
    other_spec = dict(json.loads(_plan_spec(tmp_path, files["spec"])), repeats=3)  # an older config's file
    rewrite(files["spec"], lambda t: replaced(t, "spec_sha256", [cellkey.spec_sha256(other_spec)] * len(t)))
    rewrite(files["old"], lambda t: t.drop_columns(["spec_sha256"]))  # written before the column existed
    old_bytes = files["old"].read_bytes()

    result, terminal = run(tmp_path, configfile, "--cores", "1")
    assert result.returncode != 0
    named = [line for line in terminal.splitlines() if line.startswith("speedatlas: aggregate: results/cells/")]
    lies = ["copied", "status", "doubled", "missing", "negative", "spec"]
    for name in lies:
        line = next((line for line in named if str(files[name].relative_to(tmp_path)) in line), None)
        assert line and "moved to results/quarantine/" in line, f"{name} not named:\n{terminal[-4000:]}"
        assert not files[name].exists()
    why = {name: next(line for line in named if str(files[name].relative_to(tmp_path)) in line) for name in lies}
    assert "its folder says batch=2 but its rows say batch_size=3" in why["copied"]
    assert "unknown status 'bogus'" in why["status"]
    assert "appears more than once" in why["doubled"]
    assert "missing columns ['step_time_s']" in why["missing"]
    assert "an ok row has step_time_s = -" in why["negative"]
    assert "measured for another spec" in why["spec"]
    assert len(named) == len(lies), "\n".join(named)  # the old file and the source are kept
    assert "speedatlas: aggregate: run the same command again to measure them again" in terminal
    kept = list((tmp_path / "results" / "quarantine").rglob("cell.parquet"))
    assert len(kept) == len(lies) and all(k.with_name("cell.parquet.why.txt").exists() for k in kept)
    assert not (tmp_path / "results" / "studies" / "config" / "report.md").exists()

    result, terminal = run(tmp_path, configfile, "--cores", "1")
    assert result.returncode == 0, terminal[-3000:]
    for name in lies:
        table = pq.read_table(files[name])
        assert table["status"].to_pylist() == ["ok", "ok"] and table["batch_size"][0].as_py() == int(
            files[name].parent.name.split("=")[1])
        assert table["spec_sha256"][0].as_py() == cellkey.spec_sha256(_plan_spec(tmp_path, files[name]))
    assert files["old"].read_bytes() == old_bytes  # read as it is: no spec hash, the other checks pass
    cells = pq.read_table(tmp_path / "results" / "studies" / "config" / "tables" / "cells.parquet")
    assert len(cells) == 8 and cells["n"].to_pylist() == [2] * 8


def _plan_spec(directory: Path, path: Path) -> str:
    """The spec the plan gives the cell at `path` (what its job received)."""
    from speedatlas.plan import config as study_config
    from speedatlas.plan import matrix

    study = study_config.prepare(dict(EIGHT_CELLS), known_models=["resnet18"])
    return matrix.index_by_path(matrix.expand(study))[str(path.relative_to(directory))].spec()


# --- 8. a checkout under a folder with a space --------------------------------------------------


def copy_checkout(target: Path) -> Path:
    """This checkout's files (tracked, and new ones git does not ignore) under `target`, with the
    running interpreter's virtual environment as its .venv, as `uv sync` would leave it there."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in names:
        if name and not name.startswith("published/") and (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target / ".venv" / "bin" / "python"


def test_a_checkout_under_a_folder_with_a_space_runs_and_prints_quoted_commands(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the tests to run in a virtual environment (its folder becomes the copy's .venv)")
    checkout = tmp_path / "My Drive" / "speedatlas"
    python = copy_checkout(checkout)
    (checkout / "my configs").mkdir()
    write_config(checkout / "my configs", {**ONE_CELL, "machine": "space"}, "study 1.yaml")
    env = {**isolated_env(tmp_path / "My Drive"), "PYTHONPATH": ""}
    # as a user runs it: from the checkout, its own .venv's interpreter, a relative config path
    study = [str(python), "-m", "snakemake", "--cores", "1", "--configfile", "my configs/study 1.yaml"]
    result = subprocess.run(study, cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
    terminal = result.stdout + result.stderr
    assert result.returncode == 0, terminal[-3000:]  # every script: rule (aggregate, plots, report) ran
    report = (checkout / "results" / "studies" / "study-1" / "report.md").read_text()  # named after "study 1.yaml"
    block = report.split("## How to reproduce", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    printed = [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert printed[0] == "uv run snakemake --cores 1 --configfile 'my configs/study 1.yaml'", block
    # the printed command works as printed (a dry run, through this interpreter instead of uv)
    for line in printed:
        if "--report" in line:
            continue
        command = line.replace("uv run snakemake", f"'{python}' -m snakemake", 1) + " -n"
        again = subprocess.run(["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True,
                               timeout=300)
        assert again.returncode == 0, f"{line}\n{again.stdout[-2000:]}{again.stderr[-2000:]}"


# --- 9. a second run (or --unlock) beside a live one ----------------------------------------------


def test_a_live_run_is_told_from_a_dead_one(tmp_path):
    # one cell of 2 x 1,000 steps; the live run is frozen (SIGSTOP) while its cell is being timed
    config = {**ONE_CELL, "launcher": "process", "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 1000, "processes": 1}}
    configfile = write_config(tmp_path, config)
    env = isolated_env(tmp_path)
    run_lock, machine_lock = tmp_path / ".speedatlas" / "run.lock", tmp_path / "timing.lock"
    first = subprocess.Popen(command(tmp_path, configfile, "--cores", "1"), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (machine_lock.exists() and locked(machine_lock)):  # snakemake locked, its cell is timing
            assert first.poll() is None and time.monotonic() < deadline, "the first run never started its cell"
            time.sleep(0.1)
        os.killpg(first.pid, signal.SIGSTOP)  # alive, but going nowhere while we try
        assert locked(run_lock) and list((tmp_path / ".snakemake" / "locks").iterdir())

        for args in (["--cores", "1"], ["--unlock"]):
            result, terminal = run(tmp_path, configfile, *args)
            refused = [line for line in terminal.splitlines() if line.startswith("speedatlas: another run")]
            assert result.returncode != 0 and len(refused) == 1, terminal[-3000:]
            assert f"(process {first.pid} on " in refused[0] and f"kill {first.pid}" in refused[0]
            assert "not --unlock" in refused[0]
        assert list((tmp_path / ".snakemake" / "locks").iterdir()), "--unlock removed a live run's locks"
        result, terminal = run(tmp_path, configfile, "-n", "--cores", "1")
        assert result.returncode == 0 and "a run (not a dry run) would be refused now" in terminal, terminal[-3000:]

        os.killpg(first.pid, signal.SIGKILL)  # dead: as after kill -9 or a power cut
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert not locked(run_lock)
    result, terminal = run(tmp_path, configfile, "--unlock")  # what docs/reliability.md says to do now
    assert result.returncode == 0, terminal[-3000:]
    result, terminal = run(tmp_path, configfile, "--cores", "1")
    assert result.returncode == 0, terminal[-3000:]
    assert (tmp_path / "results" / "studies" / "config" / "report.md").exists()


# --- 12. an enormous matrix by mistake ------------------------------------------------------------


def matrix_config(models: list[str], batches: int, **extra) -> dict:
    return {"machine": "huge", "devices": ["cpu"], "models": models, "batch_sizes": list(range(1, batches + 1)),
            "dtypes": ["float32", "float16", "bfloat16"], "modes": ["train", "infer"],
            "variants": ["eager", "channels_last", "compile"], "dtype_support": {"enabled": False}, **extra}


def timed_run(directory: Path, configfile: Path, *args: str) -> tuple[subprocess.CompletedProcess, str, float, float]:
    """The run, its output, its wall seconds and the CPU seconds of its processes."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result, terminal = run(directory, configfile, *args)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, terminal, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_an_enormous_matrix_is_refused_at_start_and_a_large_one_planned_fast(tmp_path):
    from speedatlas.plan import config as study_config

    models = study_config.torchvision_models(study_config.cache_dir(), write=False)
    assert len(models) >= 80
    huge = write_config(tmp_path, matrix_config(models[:80], 50), "huge.yaml")  # 80 x 50 x 3 x 2 x 3
    result, terminal, wall, _ = timed_run(tmp_path, huge, "-n", "--cores", "2")
    refused = [line for line in terminal.splitlines() if line.startswith("speedatlas config error")]
    assert result.returncode != 0 and len(refused) == 1, terminal[-3000:]
    assert "this study has 72,000 cells, more than max_cells (1,000)" in refused[0]
    from speedatlas.plan import study_size

    floor = study_size.duration(72_000 * 4 * study_size.START_S_FORKED)  # the precision rule's pilot: 4 processes
    assert f"at least {floor}" in refused[0] and "set max_cells: 72000" in refused[0]
    assert wall < 60, f"refused after {wall:.0f} s"  # no cell built: Snakemake's start-up and a count
    assert not (tmp_path / "results").exists()

    # 12 x 50 x 3 x 2 x 3 = 10,800 cells, asked for explicitly: planned (a dry run) well under 30 s
    large = write_config(tmp_path, matrix_config(models[:12], 50, max_cells=10800), "large.yaml")
    result, terminal, wall, cpu = timed_run(tmp_path, large, "-n", "--cores", "2", "--quiet", "all")
    assert result.returncode == 0, terminal[-3000:]
    said = [line for line in terminal.splitlines() if line.startswith("speedatlas: 10,800 cells")]
    floor = study_size.duration(10_800 * 4 * study_size.START_S_FORKED)  # 12.0 h: the pilot's 4 processes a cell
    assert said == [f"speedatlas: 10,800 cells in this study, 10,800 to measure: at least {floor} "
                    "(cell start-up alone; the timed steps come on top)"], terminal[-3000:]
    # CPU seconds, not wall: the test machine is shared (wall was 21 s on 2 loaded cores)
    assert cpu < 30, f"the 10,800-cell dry run took {cpu:.1f} CPU seconds ({wall:.1f} s wall)"


# --- 13. two factories of one file name in a published bundle ------------------------------------

FACTORY = """import torch.nn as nn


def build(num_classes, width={width}):
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
"""


def test_two_factories_of_one_file_name_stay_two_and_the_bundle_reruns_elsewhere(tmp_path):
    import hashlib

    import yaml

    models = tmp_path / "elsewhere"  # outside the study's working directory: named by absolute paths
    for name, width in (("a", 4), ("b", 6)):
        (models / name).mkdir(parents=True)
        (models / name / "model.py").write_text(FACTORY.format(width=width))
    study = tmp_path / "study"
    study.mkdir()
    config = {**ONE_CELL, "machine": "twins", "publish_name": "twins", "input_size": 16, "models": [
        {"name": f"net_{name}", "factory": f"{models / name / 'model.py'}:build", "input": {"kind": "image", "size": 16}}
        for name in ("a", "b")]}
    configfile = write_config(study, config)
    result, terminal = run(study, configfile, "--cores", "1", "publish")
    assert result.returncode == 0, terminal[-3000:]
    bundle = study / "results" / "publish" / "twins"

    # both files are kept, each where its cells' recorded hash finds it
    copies = {name: bundle / "config" / "factories" / name / "model.py" for name in ("a", "b")}
    assert copies["a"].read_text() != copies["b"].read_text()
    for name, copy in copies.items():
        cell = next((bundle / "cells").rglob(f"model=net_{name}/**/cell.parquet"))
        source = pq.read_table(cell)["model_source"][0].as_py()
        assert source.endswith(f"@sha256:{hashlib.sha256(copy.read_bytes()).hexdigest()[:12]}"), source
    # no config of the bundle names a path of this machine
    for name in ("config.yaml", "resolved.yaml"):
        text = (bundle / "config" / name).read_text()
        assert str(tmp_path) not in text, f"{name} names this machine's paths:\n{text}"
        factories = [m["factory"] for m in yaml.safe_load(text)["models"]]
        assert factories == ["factories/a/model.py:build", "factories/b/model.py:build"]

    # elsewhere: the bundle alone, the original files gone; its config/ is the working directory
    moved = tmp_path / "other machine" / "twins"
    shutil.copytree(bundle, moved)
    shutil.rmtree(models)
    rerun = moved / "config"
    result, terminal = run(rerun, rerun / "config.yaml", "--cores", "1")
    assert result.returncode == 0, terminal[-3000:]
    for name in ("a", "b"):
        cell = next((rerun / "results" / "cells").rglob(f"model=net_{name}/**/cell.parquet"))
        table = pq.read_table(cell)
        assert table["status"].to_pylist() == ["ok", "ok"], table["error"].to_pylist()
        assert table["model_source"][0].as_py().startswith(f"factory:factories/{name}/model.py:build@sha256:")
