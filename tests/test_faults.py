"""Faults injected for real (issue 16): a full disk, a YAML bomb, Ctrl-C during a timed cell,
leftovers (the fork server's socket, file modes), several config mistakes at once."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
from speedatlas.plan import comparisons
import pytest
import yaml

from conftest import SNAKEFILE, locked, write_config

# One cell: 1 model, 32 px, 2 repeats.
ONE_CELL = {
    "machine": "fault",
    "devices": ["cpu"],
    "models": ["resnet18"],
    "batch_sizes": [1],
    "modes": ["infer"],
    "input_size": 32,
    "num_classes": 4,
    "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1,
    "dtype_support": {"enabled": False},
}
CELL = ("results/cells/machine=fault/workload=synthetic/torch=current/device=cpu/model=resnet18/dtype=float32/"
        "mode=infer/variant=eager/batch=1/cell.parquet")


def command(directory: Path, configfile: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(directory),
            "--configfile", str(configfile), *args]


def isolated_env(directory: Path) -> dict[str, str]:
    """Own TMPDIR (the fork server's socket lands there) and own machine lock."""
    tmp = directory / "tmpdir"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "SPEEDATLAS_LOCK": str(directory / "timing.lock")}


# --- 5. a YAML bomb ---------------------------------------------------------------------------


def yaml_bomb(levels: int = 9) -> str:
    """Aliases nested inside `models`: 10**levels batch sizes once expanded, a 1 kB file."""
    names = ["alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "resnet34", "resnet50", "resnet101", "resnet152"]
    lines = ["machine: bomb", "devices: [cpu]", "models:", "  - name: resnet18",
             "    batch_sizes: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels + 1):
        lines += [f"  - name: {names[level - 1]}", f"    batch_sizes: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]"]
    return "\n".join(lines) + "\n"


def test_a_yaml_bomb_is_refused_before_validation():
    from speedatlas.plan import config as study_config

    raw = yaml.safe_load(yaml_bomb())
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(study_config.ConfigError, match="expands to more than 100,000 values"):
        study_config.prepare(raw, known_models=["resnet18", "alexnet"])
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 20e6, (elapsed, peak)


def test_expanded_size_counts_shared_values_and_cycles():
    from speedatlas.plan.config_limits import expanded_size

    shared = [1, 2, 3]
    assert expanded_size({"a": shared, "b": shared}) == 1 + 2 + 2 * 4
    loop: list = []
    loop.append(loop)
    assert expanded_size(loop, limit=10) == 11  # a recursive alias is too large
    assert expanded_size(yaml.safe_load(yaml_bomb(3))) > 1000


@pytest.mark.slow
def test_a_yaml_bomb_in_models_is_refused_in_seconds(tmp_path):
    import resource

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(yaml_bomb())

    def limit_memory():  # if the guard fails, the bomb fails the test instead of the machine
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    start = time.monotonic()
    process = subprocess.Popen(command(tmp_path, bomb, "-n", "--cores", "1"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=limit_memory)
    try:
        output, _ = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    elapsed = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert process.returncode != 0
    lines = [line for line in output.splitlines() if "speedatlas config error" in line]
    assert len(lines) == 1 and "YAML bomb" in lines[0], output[-2000:]
    assert "Traceback" not in output
    assert elapsed < 60, elapsed  # most of it is Snakemake's own start-up
    assert usage.ru_maxrss < 1_500_000, usage.ru_maxrss  # kB: the bomb itself grew to 6.5 GB


# --- 7. all mistakes at once, file modes ------------------------------------------------------


def test_every_config_mistake_is_reported_at_once():
    from speedatlas.plan import config as study_config

    raw = {**ONE_CELL, "bach_sizes": [1], "input_size": 0, "models": ["resnet19", "resnet18"]}
    with pytest.raises(study_config.ConfigError) as caught:
        study_config.prepare(raw, known_models=["resnet18", "resnet34"])
    text = str(caught.value)
    assert text.startswith("3 mistakes:")
    for fragment in ("'bach_sizes' (did you mean 'batch_sizes'?)", "key 'input_size': 0", "'resnet19'"):
        assert fragment in text, text
    # cross-key mistakes too, once the config has its shape
    raw = {**ONE_CELL, "baseline_device": "cuda", "torch_versions": ["current", "1.13"]}
    with pytest.raises(study_config.ConfigError) as caught:
        study_config.prepare(raw, known_models=["resnet18"])
    assert "baseline_device" in str(caught.value) and "1.13" in str(caught.value)
    # one mistake reads as before
    with pytest.raises(study_config.ConfigError) as caught:
        study_config.prepare({**ONE_CELL, "input_size": 0}, known_models=["resnet18"])
    assert not str(caught.value).startswith("1 mistake") and "key 'input_size'" in str(caught.value)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_cell_files_follow_the_umask(tmp_path, umask):
    from speedatlas.measure import cellio

    old = os.umask(umask)
    try:
        cellio.write_atomic(pa.table({"x": [1]}), tmp_path / "cell.parquet")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "cell.parquet").stat().st_mode) == 0o666 & ~umask


# --- 4. a full disk ---------------------------------------------------------------------------


def mount_full_filesystem(folder: Path) -> bool:
    """A 256 kB tmpfs at `folder`, filled up; False where this process may not mount."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        return False
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(fd)
    except BaseException:
        subprocess.run(["umount", str(folder)])
        raise
    return True


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["forkserver", "process"])
def test_a_full_disk_names_the_cell_on_the_terminal(tmp_path, launcher):
    configfile = write_config(tmp_path, {**ONE_CELL, "launcher": launcher})
    env = isolated_env(tmp_path)
    mounted = mount_full_filesystem(tmp_path / "results")
    if not mounted:  # no tiny filesystem here: the write itself fails with ENOSPC
        env["SPEEDATLAS_FAULT"] = "resnet18:enospc"
    try:
        result = subprocess.run(command(tmp_path, configfile, "--cores", "1"), env=env, capture_output=True,
                                text=True, timeout=600)
        terminal = result.stdout + result.stderr
        assert result.returncode != 0
        lines = [line for line in terminal.splitlines() if "could not be written" in line]
        part = CELL.replace("results/cells/", "results/processes/").replace("cell.parquet", "process-0.parquet")
        assert lines and lines[0].startswith("speedatlas: cell ") and part in lines[0], terminal[-3000:]
        assert "No space left on device (ENOSPC)" in lines[0]
        assert not list((tmp_path / "results").rglob("cell.parquet"))
        assert not list((tmp_path / "results").rglob("*.tmp"))
    finally:
        if mounted:
            subprocess.run(["umount", str(tmp_path / "results")], check=True)


# --- 6. Ctrl-C during a timed cell; 7. the fork server's socket --------------------------------


def processes_in(directory: Path) -> list[int]:
    """Processes working in `directory`: snakemake, its jobs, the fork server and its children."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(directory):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["forkserver", "process"])
def test_ctrl_c_stops_the_cell_being_timed(tmp_path, launcher):
    # a long cell: 2 repeats of 5,000 steps (tens of seconds); it is interrupted while timed
    config = {**ONE_CELL, "launcher": launcher, "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 5000, "processes": 1}}
    configfile = write_config(tmp_path, config)
    env = isolated_env(tmp_path)
    lock = tmp_path / "timing.lock"
    process = subprocess.Popen(command(tmp_path, configfile, "--cores", "1"), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (lock.exists() and locked(lock)):
            assert process.poll() is None and time.monotonic() < deadline, "the cell never took the lock"
            time.sleep(0.2)
        time.sleep(3)  # set-up done (a 32 px resnet18): timing
        assert locked(lock)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        interrupted = time.monotonic()
        while locked(lock):
            assert time.monotonic() - interrupted < 5, "the timed cell kept the machine lock after Ctrl-C"
            time.sleep(0.05)
        released_after = time.monotonic() - interrupted
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert released_after < 5
    cells = tmp_path / "results" / "cells"
    assert not list(cells.rglob("cell.parquet")) and not list(cells.rglob("*.tmp")), output[-2000:]
    # nothing is left running or lying around: no cell process, no fork server, no socket
    time.sleep(2)  # the fork server notices its parent is gone within a second
    assert not processes_in(tmp_path), output[-2000:]
    assert not list((tmp_path / "tmpdir").glob("speedatlas-fs-*.sock"))


@pytest.mark.slow
def test_a_finished_run_leaves_no_fork_server_socket(tmp_path):
    configfile = write_config(tmp_path, {**ONE_CELL, "launcher": "forkserver"})
    env = isolated_env(tmp_path)
    result = subprocess.run(command(tmp_path, configfile, "--cores", "1"), env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / CELL).exists()
    assert stat.S_IMODE((tmp_path / CELL).stat().st_mode) == 0o666 & ~_umask()
    assert not list((tmp_path / "tmpdir").glob("speedatlas-fs-*.sock"))
    assert not processes_in(tmp_path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- 2. a corrupt cell file -------------------------------------------------------------------

TWO_CELLS = {**ONE_CELL, "batch_sizes": [1, 2]}
DERIVED = ["results/studies/config/tables/cells.parquet", "results/studies/config/plots/throughput.png", "results/studies/config/report.md"]


def cell_path(batch: int) -> str:
    return CELL.replace("batch=1", f"batch={batch}")


@pytest.mark.slow
def test_corrupt_cell_files_are_set_aside_and_measured_again(tmp_path):
    import pyarrow.parquet as pq

    configfile = write_config(tmp_path, TWO_CELLS)
    env = isolated_env(tmp_path)

    def run(*args):
        return subprocess.run(command(tmp_path, configfile, "--cores", "1", *args), env=env, capture_output=True,
                              text=True, timeout=600)

    assert run().returncode == 0
    cut, damaged = tmp_path / cell_path(1), tmp_path / cell_path(2)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # cut short: no footer
    data = bytearray(damaged.read_bytes())  # footer garbled, its length and magic intact
    footer = int.from_bytes(data[-8:-4], "little")
    data[-8 - footer : -8] = b"\xff" * footer
    damaged.write_bytes(bytes(data))

    # the dry run changes nothing (issue 26, item 5): it names the cut file and what a run does
    result = run("-n")
    terminal = result.stdout + result.stderr
    assert result.returncode == 0, terminal[-3000:]
    assert f"speedatlas: {cell_path(1)} is unreadable" in terminal and "a run without --dry-run sets it aside" in terminal
    assert cut.exists() and not (tmp_path / "results" / "quarantine").exists()

    # the plain run sets it aside before the plan is built and remeasures it; the aggregation
    # meets the garbled file, names it, sets it aside
    result = run()
    terminal = result.stdout + result.stderr
    assert f"speedatlas: {cell_path(1)} is unreadable" in terminal and "moved to results/quarantine/" in terminal
    kept = list((tmp_path / "results" / "quarantine").rglob("cell.parquet"))
    assert kept and kept[0].read_bytes() and kept[0].with_name("cell.parquet.why.txt").exists()
    assert result.returncode != 0
    assert f"speedatlas: aggregate: {cell_path(2)}: unreadable cell file" in terminal, terminal[-3000:]
    assert "run the same command again" in terminal
    assert pq.read_table(cut).column("status").to_pylist() == ["ok", "ok"]
    assert not damaged.exists()
    for derived in DERIVED:
        assert not (tmp_path / derived).exists(), derived

    # and the next plain run completes the study
    result = run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert pq.read_table(damaged).column("status").to_pylist() == ["ok", "ok"]
    for derived in DERIVED:
        assert (tmp_path / derived).exists(), derived
    assert len(list((tmp_path / "results" / "quarantine").rglob("cell.parquet"))) == 2


def test_footer_check_finds_cut_files(tmp_path):
    from speedatlas.plan import quarantine

    good = tmp_path / "good.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2, 3]}), good)
    data = good.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[:-3])
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "long.parquet").write_bytes(data[:4] + data[-8:-4].replace(data[-8:-4], (10**6).to_bytes(4, "little")) + b"PAR1")
    paths = [str(tmp_path / n) for n in ("good.parquet", "cut.parquet", "empty.parquet", "long.parquet", "missing.parquet")]
    found = dict(quarantine.unreadable(paths))
    assert sorted(found) == sorted(paths[1:4])
    assert "too short" in found[paths[2]] and "longer than the file" in found[paths[3]]


# --- 3. a tampered bundle ---------------------------------------------------------------------


def make_bundle(root: Path) -> Path:
    """A published bundle of machine h100: one cell that matches ONE_CELL's, and its manifest."""
    import json

    import fakesets

    fakesets.write_machine(root / "cells", "h100", {("cpu", "resnet18", "infer", 1): 0.01}, cpu_model="Intel Xeon")
    files = {p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": comparisons.sha256(p)}
             for p in sorted((root / "cells").rglob("cell.parquet"))}
    (root / "manifest.json").write_text(json.dumps({"files": files}))
    return next((root / "cells").rglob("cell.parquet"))


def edit_one_byte(path: Path) -> None:
    """Change one byte of a string value; the file stays valid Parquet."""
    import pyarrow.parquet as pq

    data = path.read_bytes()
    at = data.index(b"Linux-6.8") + len("Linux-6.")
    path.write_bytes(data[:at] + b"9" + data[at + 1 :])
    assert pq.read_table(path).column("os")[0].as_py() == "Linux-6.9-x86_64"


def test_bundle_hashes_are_cached_by_size_and_mtime(tmp_path):
    cell = make_bundle(tmp_path / "bundle")
    sets = [comparisons.locate(str(tmp_path / "bundle"))]
    cache = tmp_path / "cache.json"
    assert comparisons.verify_bundles(sets, cache, remember=False) == 1  # a dry run: checked, not remembered
    assert not cache.exists()
    assert comparisons.verify_bundles(sets, cache) == 1
    assert comparisons.verify_bundles(sets, cache) == 0  # unchanged: nothing read
    edit_one_byte(cell)  # same size, new mtime
    with pytest.raises(comparisons.MergeError, match=r"include_results\[0\]: .*cell.parquet does not match the sha256"):
        comparisons.verify_bundles(sets, cache)


@pytest.mark.slow
def test_a_tampered_bundle_is_refused_before_any_job(tmp_path):
    cell = make_bundle(tmp_path / "bundle")
    configfile = write_config(tmp_path, {**ONE_CELL, "include_results": [str(tmp_path / "bundle")]})
    env = isolated_env(tmp_path)
    dry = subprocess.run(command(tmp_path, configfile, "-n", "--cores", "1"), env=env, capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    edit_one_byte(cell)
    start = time.monotonic()
    result = subprocess.run(command(tmp_path, configfile, "--cores", "1"), env=env, capture_output=True, text=True,
                            timeout=300)
    terminal = result.stdout + result.stderr
    assert result.returncode != 0
    lines = [line for line in terminal.splitlines() if "an included bundle was changed" in line]
    assert len(lines) == 1 and "does not match the sha256 in its manifest.json" in lines[0], terminal[-3000:]
    assert str(cell.relative_to(tmp_path / "bundle")) in lines[0]
    assert not (tmp_path / "results" / "cells").exists()  # no cell was timed first
    assert time.monotonic() - start < 120
