"""Cells that hang, lie or leak (issue 27, items 4-6), injected for real: model factories that never
return, exit with status 0 without a result, or start processes that would outlive the cell,
each in a real snakemake run of a tiny cpu study, under both launchers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import locked, write_config
from test_faults import command, isolated_env, processes_in

FAULTS = textwrap.dedent('''
    """Model factories that misbehave as a user's code might."""
    import os
    import subprocess
    import sys
    import time

    from torch import nn


    def tiny(num_classes):
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


    def hang(num_classes):
        while True:  # never returns, holding the timing lock
            time.sleep(1)


    def exit0_os(num_classes):
        os._exit(0)


    def exit0_sys(num_classes):
        sys.exit(0)


    DAEMON = """
    import os, sys, time
    if os.fork() == 0:  # a daemon: double fork, a session of its own
        os.setsid()
        with open(sys.argv[1], "a") as f:
            f.write(f"{os.getpid()}\\\\n")
        time.sleep(600)
    """


    def leak(num_classes, pids):
        """A working model, and helpers that would outlive the cell: a forked copy of this process
        (which holds the timing lock's descriptor), a child program, a daemon that left the group."""
        started = []
        pid = os.fork()
        if pid == 0:
            try:
                time.sleep(600)
            finally:
                os._exit(0)
        started.append(pid)
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid)
        subprocess.run([sys.executable, "-c", DAEMON, pids], check=True)
        with open(pids, "a") as f:
            f.write("".join(f"{p}\\n" for p in started))
        return tiny(num_classes)
''')

STUDY = {
    "machine": "faulty",
    "devices": ["cpu"],
    "batch_sizes": [1],
    "modes": ["infer"],
    "input_size": 32,
    "num_classes": 4,
    "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 1, "processes": 1},
    "cpu_threads": 1,
    "dtype_support": {"enabled": False},
}
LAUNCHERS = ["forkserver", "process"]


def factory(name: str, function: str, **extra) -> dict:
    return {"name": name, "factory": f"models/faults.py:{function}", **extra}


def run_study(directory: Path, launcher: str, models: list[dict], timeout: int = 600):
    (directory / "models").mkdir()
    (directory / "models" / "faults.py").write_text(FAULTS)
    configfile = write_config(directory, {**STUDY, "launcher": launcher, "models": models})
    env = isolated_env(directory)
    start = time.monotonic()
    result = subprocess.run(command(directory, configfile, "--cores", "1"), env=env, capture_output=True, text=True,
                            timeout=timeout)
    return result, time.monotonic() - start


def cells(directory: Path) -> pd.DataFrame:
    return pd.read_parquet(directory / "results" / "studies" / "config" / "tables" / "cells.parquet").set_index("model")


def receipt(directory: Path, model: str, process: int) -> dict:
    from speedatlas import cellkey

    part = next((directory / "results" / "processes").rglob(f"model={model}/**/process-{process}.parquet"))
    return json.loads(Path(cellkey.receipt_path(str(part))).read_text())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_cell_that_hangs_is_stopped_at_its_time_limit_and_the_study_goes_on(tmp_path, launcher):
    models = [factory("good", "tiny", timing={"time_limit_seconds": 300}),  # a limit it keeps
              factory("hangs", "hang", timing={"time_limit_seconds": 10, "processes": 2})]
    result, elapsed = run_study(tmp_path, launcher, models)
    terminal = result.stdout + result.stderr
    assert result.returncode == 0, terminal[-3000:]
    table = cells(tmp_path)
    assert table.loc["good", "status"] == "ok"
    assert table.loc["hangs", "status"] == "timeout", table.loc["hangs", "error"]
    error = table.loc["hangs", "error"]
    assert "past its time limit of 10 s (timing.time_limit_seconds)" in error and "every process it started" in error
    held = float(error.split("timing lock for ")[1].split(" s")[0])
    assert 10 <= held < 20, error
    # a part and a receipt like any failed process; the cell's later process stops there
    assert receipt(tmp_path, "hangs", 0)["status"] == "timeout"
    assert receipt(tmp_path, "hangs", 1) | {"seconds": 0} == {
        "status": "skipped", "reason": "process 0 of this cell was timeout: the cell ends there", "median_step_s": None,
        "seconds": 0, "gpu_index": None}
    assert "timeout" in (tmp_path / "results" / "studies" / "config" / "report.md").read_text()
    assert not locked(tmp_path / "timing.lock")
    time.sleep(2)  # the fork server notices its parent is gone within a second
    assert not processes_in(tmp_path)
    assert elapsed < 400


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_cell_that_exits_0_without_its_result_is_an_error(tmp_path, launcher):
    models = [factory("exits_os", "exit0_os"), factory("exits_sys", "exit0_sys")]
    result, _ = run_study(tmp_path, launcher, models)
    terminal = result.stdout + result.stderr
    assert result.returncode == 0, terminal[-3000:]
    assert "latency" not in terminal
    table = cells(tmp_path)
    for model in ("exits_os", "exits_sys"):
        assert table.loc[model, "status"] == "error"
        assert "exited with status 0 without writing its result" in table.loc[model, "error"]
        assert receipt(tmp_path, model, 0)["status"] == "error"
    # and a rerun has nothing to do
    again = subprocess.run(command(tmp_path, tmp_path / "config.yaml", "--cores", "1", "-n"), env=isolated_env(tmp_path),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_nothing_a_cell_starts_outlives_it(tmp_path, launcher):
    pids = tmp_path / "helpers.txt"
    models = [factory("leaks", "leak", args={"pids": str(pids)}), factory("good", "tiny")]
    result, elapsed = run_study(tmp_path, launcher, models)
    terminal = result.stdout + result.stderr
    try:
        assert result.returncode == 0, terminal[-3000:]
        table = cells(tmp_path)
        assert (table["status"] == "ok").all(), table["error"]
        helpers = [int(line) for line in pids.read_text().split()]
        assert len(helpers) >= 3  # the factory may be called more than once (FLOPs, then the build)
        assert not [pid for pid in helpers if alive(pid)]
        assert not locked(tmp_path / "timing.lock")  # the forked copy held its descriptor
        time.sleep(2)
        assert not processes_in(tmp_path)
        assert elapsed < 400  # the other cell did not wait for the helpers' 600 s
    finally:
        for pid in [int(line) for line in pids.read_text().split()] if pids.exists() else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_the_derived_limit_grows_with_the_cell_and_the_config_wins():
    from speedatlas.measure.process import time_limit

    spec = {"warmup": 5, "repeats": 20, "steps_per_repeat": 1, "batch": 64, "variant": "eager", "warmup_seconds": 0.5,
            "energy": {"idle_s": 1.0, "min_window_s": 1.0}}
    assert 40 * 60 < time_limit.seconds(spec) < 50 * 60
    assert 14 * 60 < time_limit.seconds({**spec, "batch": 4}) < 16 * 60
    assert time_limit.seconds({**spec, "variant": "compile"}) == time_limit.seconds(spec) + time_limit.COMPILE_S
    assert time_limit.seconds({**spec, "repeats": 40}) > time_limit.seconds(spec)
    assert time_limit.seconds({**spec, "time_limit_seconds": 7}) == 7
    assert "derived" in time_limit.describe(spec, 900) and "timing.time_limit_seconds" in time_limit.describe(
        {"time_limit_seconds": 7}, 7)


def test_the_limit_is_in_the_spec_only_where_the_config_sets_it():
    from speedatlas.plan import matrix

    config = {"machine": "m", "workload": ["synthetic"], "models": ["resnet18", {"name": "alexnet", "timing": {
        "time_limit_seconds": 30}}], "torch_versions": ["current"], "devices": ["cpu"], "dtypes": ["float32"],
        "modes": ["infer"], "variants": ["eager"], "batch_sizes": [1], "input_size": 32, "num_classes": 4,
        "cpu_threads": 1, "seed": 0, "confidence": 0.95, "data": {}, "timing": {"warmup": 1, "repeats": 2,
                                                                                  "steps_per_repeat": 1, "processes": 1}}
    specs = {cell.model: json.loads(cell.process_spec(0)) for cell in matrix.expand(config)}
    assert "time_limit_seconds" not in specs["resnet18"]
    assert specs["alexnet"]["time_limit_seconds"] == 30


DAEMON_PROBE = """
import json, subprocess, sys, time
from speedatlas.measure.process import children, subreaper
assert subreaper.become()
daemon = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(60)\\n"
child = subprocess.Popen([sys.executable, "-c", daemon], process_group=0)
children.wait_exited(child.pid)
adopted, deadline = [], time.monotonic() + 5
while not adopted and time.monotonic() < deadline:  # the daemon is reparented to us
    adopted = [pid for pid in subreaper.children() if pid != child.pid]
children.end_tree(child.pid, 0.0, child.wait)
print(json.dumps({"adopted": adopted, "left": subreaper.children()}))
"""


def test_a_daemon_that_left_the_group_is_adopted_and_ended():
    """Linux: a grandchild that double-forked into a session of its own is ended with the cell."""
    from speedatlas.measure.process import children

    if not sys.platform.startswith("linux"):
        pytest.skip("a subreaper is Linux's")
    workflow = str(Path(children.__file__).parents[3])
    probe = subprocess.run([sys.executable, "-c", DAEMON_PROBE], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": workflow})
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert len(found["adopted"]) == 1 and found["left"] == [], found
    assert not alive(found["adopted"][0])


WITHOUT_WAITID_PROBE = """
import json, select, subprocess, sys, time
from speedatlas.measure.process import children, subreaper
children.HAS_WAITID = False  # as on macOS before Python 3.13
subreaper.children = lambda: []  # and no subreaper
helper = ("import os, subprocess, sys, time\\n"
          "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\\n"
          "print(p.pid, flush=True)\\n")
found = {}
for case, rest in (("exits", "pass"), ("hangs", "time.sleep(60)")):
    child = subprocess.Popen([sys.executable, "-c", helper + rest], process_group=0, stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    done = children.exit_fd(child)
    finished = bool(select.select([done], [], [], 3)[0])
    children.end_tree(child.pid, 1.0, child.wait)
    time.sleep(0.2)
    try:
        with open(f"/proc/{grandchild}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    found[case] = {"finished": finished, "grandchild": state, "returncode": child.returncode}
print(json.dumps(found))
"""


def test_without_waitid_the_group_still_ends():
    """The path of macOS (no os.waitid before Python 3.13, no subreaper), run here: a cell's
    process that exits, and one that is stopped, take their group with them."""
    from speedatlas.measure.process import children

    workflow = str(Path(children.__file__).parents[3])
    probe = subprocess.run([sys.executable, "-c", WITHOUT_WAITID_PROBE], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": workflow})
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["exits"]["finished"] and found["exits"]["returncode"] == 0
    assert not found["hangs"]["finished"] and found["hangs"]["returncode"] == -signal.SIGTERM
    # the group's other member is gone (init reaps it; a zombie for an instant)
    assert found["exits"]["grandchild"] in ("gone", "Z") and found["hangs"]["grandchild"] in ("gone", "Z"), found
