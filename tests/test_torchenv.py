"""The torch-version axis without building anything: specs, identities, failed builds, tables."""

from __future__ import annotations

import json
import stat
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from speedatlas.present.report import torch_versions as torch_versions_report
from speedatlas import cellkey
from speedatlas.analyze import version_axis
from speedatlas.measure.hardware import devices, envinfo
from speedatlas.measure import supervisor
from speedatlas.plan import torch_envs
from speedatlas.plan.matrix import Cell

ENVS = REPO / "envs"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def requirements(spec: str) -> list[str]:
    return [line.strip() for line in spec.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    ("version", "numpy", "pyarrow"),
    [
        ("2.0", "numpy<2", "pyarrow>=14,<26"),
        ("2.2.1", "numpy<2", "pyarrow>=14,<26"),
        ("2.3", "numpy", "pyarrow>=14"),
        ("2.10", "numpy", "pyarrow>=14"),
    ],
)
def test_default_spec(version, numpy, pyarrow):
    spec = torch_envs.render_spec(version, ENVS)
    assert requirements(spec) == [f"torch=={version}.*", "torchvision>=0.15", numpy, pyarrow]
    assert f"# python: {PY}\n" in spec and torch_envs.python_request(spec) == PY
    assert "{" not in "".join(requirements(spec))


def test_explicit_spec_overrides_the_template(tmp_path):
    (tmp_path / "torch-default.txt").write_text((ENVS / "torch-default.txt").read_text())
    (tmp_path / "torch-2.5.txt").write_text(
        "# python: 3.10\n--extra-index-url https://download.pytorch.org/whl/cpu\n{torch_requirement}\ntorchvision==0.20.1\n"
    )
    spec = torch_envs.render_spec("2.5", tmp_path)
    assert requirements(spec) == ["--extra-index-url https://download.pytorch.org/whl/cpu", "torch==2.5.*",
                                  "torchvision==0.20.1"]
    assert torch_envs.python_request(spec) == "3.10" and spec.count("# python:") == 1
    assert "rendered from envs/torch-2.5.txt" in spec
    default = torch_envs.render_spec("2.6", tmp_path)
    assert "rendered from envs/torch-default.txt" in default


def test_identity_follows_the_spec_and_only_versioned_cells_carry_it():
    spec_a = torch_envs.render_spec("2.0", ENVS)
    spec_b = spec_a + "pillow<11\n"
    assert torch_envs.env_id(spec_a) == torch_envs.env_id(torch_envs.render_spec("2.0", ENVS))
    assert torch_envs.env_id(spec_a) != torch_envs.env_id(spec_b)
    cell = Cell("m", "synthetic", "2.0", "cpu", "resnet18", "float32", "infer", "eager", 2, 32, 4, 1, 3, 1, 1, 0)
    with_env = torch_envs.spec_with_env(cell.spec(), "2.0", spec_a)
    parsed = json.loads(with_env)
    assert parsed["torch_env"] == {"id": torch_envs.env_id(spec_a), "marker": ".speedatlas/envs/torch-2.0/env.json"}
    assert {k: v for k, v in parsed.items() if k != "torch_env"} == json.loads(cell.spec())
    assert with_env == json.dumps(parsed, sort_keys=True)  # canonical
    assert with_env != torch_envs.spec_with_env(cell.spec(), "2.0", spec_b)
    assert torch_envs.python_path("current") == "python"
    assert torch_envs.python_path("2.0") == ".speedatlas/envs/torch-2.0/bin/python"


UV_UNSAT = """\
Using Python 3.11.7 environment at: .speedatlas/envs/torch-2.99
  × No solution found when resolving dependencies:
  ╰─▶ Because there is no version of torch==2.99.* and you require torch==2.99.*, we can conclude
      that your requirements are unsatisfiable.
"""


def test_uv_message_is_one_sentence():
    message = torch_envs.uv_message(UV_UNSAT)
    assert message == (
        "No solution found when resolving dependencies: Because there is no version of torch==2.99.* and you "
        "require torch==2.99.*, we can conclude that your requirements are unsatisfiable."
    )
    assert "×" not in message and "Using Python" not in message
    assert torch_envs.uv_message("error: No solution found when resolving dependencies\n  cause: Because x.") == (
        "No solution found when resolving dependencies: Because x."
    )


def fake_uv(tmp_path, body: str):
    path = tmp_path / "uv"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_failed_build_is_recorded_not_raised(tmp_path, monkeypatch):
    uv = fake_uv(tmp_path, 'case "$1" in --version) echo "uv 0.0.0";; venv) mkdir -p "$4";;\n'
                           '*) echo "  × No solution found when resolving dependencies:" >&2; exit 1;; esac\n')
    monkeypatch.setenv("UV", uv)
    monkeypatch.chdir(tmp_path)
    spec = torch_envs.render_spec("2.99", ENVS)
    marker = torch_envs.marker_path("2.99")
    record = torch_envs.build("2.99", spec, marker)
    assert record["status"] == "failed"
    assert record["error"].startswith("torch 2.99 environment could not be built: uv pip install failed: No solution")
    assert json.loads(open(marker).read()) == record
    assert envinfo.unusable_reason(marker) == record["error"]
    assert (tmp_path / ".speedatlas/envs/torch-2.99/requirements.txt").read_text() == spec


def test_missing_uv_is_a_failed_build(tmp_path, monkeypatch):
    monkeypatch.setattr(torch_envs, "find_uv", lambda: None)
    monkeypatch.chdir(tmp_path)
    record = torch_envs.build("2.0", torch_envs.render_spec("2.0", ENVS), torch_envs.marker_path("2.0"))
    assert record["status"] == "failed" and "uv was not found" in record["error"] and "torch 2.0" in record["error"]


def test_find_uv_prefers_the_uv_that_runs_us(tmp_path, monkeypatch):
    uv = fake_uv(tmp_path, "exit 0\n")
    monkeypatch.setenv("UV", uv)
    assert torch_envs.find_uv() == [uv]
    monkeypatch.setenv("UV", str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert torch_envs.find_uv() == [uv]


def test_supervisor_records_a_failed_environment_as_unavailable(tmp_path):
    marker = tmp_path / "env.json"
    torch_envs.write_marker({"status": "failed", "torch_requested": "2.99",
                           "error": "torch 2.99 environment could not be built: no wheel"}, marker)
    cell = Cell("m", "synthetic", "2.99", "cpu", "resnet18", "float32", "infer", "eager", 2, 32, 4, 1, 3, 1, 1, 0)
    spec = json.loads(torch_envs.spec_with_env(cell.spec(), "2.99", "x"))
    spec["torch_env"]["marker"] = str(marker)
    out = tmp_path / "cell.parquet"
    assert supervisor.supervise("/nonexistent/python", json.dumps(spec), str(out)) == 0
    row = pq.read_table(out).to_pylist()[0]
    assert row["status"] == "unavailable" and row["torch_requested"] == "2.99"
    assert row["error"] == "torch 2.99 environment could not be built: no wheel"
    assert row["torch_version"] is None


@pytest.mark.parametrize(
    "message",
    ["Python 3.11+ not yet supported for torch.compile",
     "Currently, AutocastCPU only support Bfloat16 as the autocast_cpu_dtype"],
)
def test_torch_2_0_refusals_are_unsupported(message):
    assert devices.status_of(RuntimeError(message)) == "unsupported"


def cells_frame() -> pd.DataFrame:
    base = {"machine": "m", "workload": "synthetic", "device": "cpu", "model": "resnet18", "dtype": "float32",
            "mode": "infer", "variant": "eager", "batch_size": 2, "torchvision_version": None, "torch_build": "cpu",
            "python": "3.11.7", "error": None, "status": "ok"}
    return pd.DataFrame([
        {**base, "torch_requested": "current", "torch_version": "2.15.0", "torchvision_version": "0.29.0"},
        {**base, "torch_requested": "2.0", "torch_version": "2.0.1+cu117", "torchvision_version": "0.15.2"},
        {**base, "torch_requested": "2.0", "torch_version": None, "status": "error", "error": "killed",
         "batch_size": 4},
        {**base, "torch_requested": "2.99", "torch_version": None, "status": "unavailable",
         "error": "torch 2.99 environment could not be built: no wheel"},
    ])


def test_versions_table_groups_by_the_actual_version():
    table = version_axis.versions_table(cells_frame())
    assert table["torch"].tolist() == ["2.0.1+cu117", "2.15.0", "—"]
    assert table["requested"].tolist() == ["2.0", "current", "2.99"]
    assert table["cells ok"].tolist() == [1, 1, 0] and table["cells not ok"].tolist() == [1, 0, 1]
    assert "no wheel" in table["why not"].iloc[2] and table["why not"].iloc[0] == ""
    section = "\n".join(torch_versions_report.report_section(cells_frame()))
    assert "## Torch versions" in section and "--forcerun .speedatlas/envs/torch-<version>/env.json" in section
    assert torch_versions_report.report_section(cells_frame().iloc[:1]) == []


def test_speedups_name_the_actual_versions():
    cells = cells_frame().iloc[:2]
    speedups = pd.DataFrame([{**{k: cells.iloc[1][k] for k in cellkey.KEY_COLUMNS}, "axis": "torch_requested",
                              "baseline": "current", "candidate": "2.0"},
                             {**{k: cells.iloc[1][k] for k in cellkey.KEY_COLUMNS}, "axis": "batch_size",
                              "baseline": "1", "candidate": "2"}])
    out = version_axis.add_actual_versions(speedups, cells)
    assert out["candidate_torch_version"].tolist() == ["2.0.1+cu117", "2.0.1+cu117"]
    assert out["baseline_torch_version"].tolist() == ["2.15.0", "2.0.1+cu117"]
    assert version_axis.comparison_labels(out.iloc[:1]).iloc[0] == "2.0.1+cu117 (2.0) vs 2.15.0 (current)"
    empty = version_axis.add_actual_versions(speedups.iloc[:0], cells)
    assert set(version_axis.VERSION_COLUMNS) <= set(empty.columns)


def test_version_order():
    versions = ["2.10.0", "2.9.1+cu128", "2.0.1+cu117", None]
    assert sorted(versions, key=version_axis.version_key) == ["2.0.1+cu117", "2.9.1+cu128", "2.10.0", None]
    # PEP 440: development builds and release candidates come before their release
    versions = ["2.6.0+cu128", "2.6.0", "2.6.0rc1", "2.6.0.dev20241112", "not-a-version", "2.5.1"]
    assert sorted(versions, key=version_axis.version_key) == [
        "2.5.1", "2.6.0.dev20241112", "2.6.0rc1", "2.6.0", "2.6.0+cu128", "not-a-version"]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"torch_versions": ["current", "1.13"]}, "key 'torch_versions[1]': '1.13' is older than the oldest supported torch, 2.0"),
        ({"models": ["resnet18", {"name": "vgg16", "torch_versions": ["1.12.1"]}]}, "key 'models[1].torch_versions[0]': '1.12.1'"),
    ],
)
def test_torch_older_than_supported_is_refused(config, fragment):
    from speedatlas.plan.config import ConfigError, prepare

    with pytest.raises(ConfigError) as error:
        prepare({"models": ["resnet18"], **config}, ["resnet18", "vgg16"])
    assert fragment in str(error.value)
    assert prepare({"models": ["resnet18"], "torch_versions": ["current", "2.0", "2.0.1"]}, ["resnet18"])


def test_build_steps_stream_their_output_while_they_run(monkeypatch):
    """The torch_env log shows uv's lines as uv prints them, not only when it ends."""
    import io
    import time

    seen: list[tuple[float, str]] = []

    class Recorder(io.StringIO):
        def write(self, text):
            seen.append((time.perf_counter(), text))
            return len(text)

    monkeypatch.setattr(sys, "stderr", Recorder())
    script = "import sys, time; print('first', file=sys.stderr, flush=True); time.sleep(2); print('done')"
    start = time.perf_counter()
    stdout = torch_envs._run([sys.executable, "-c", script], "a slow step", summary=torch_envs.last_line)
    ended = time.perf_counter()
    first = next(t for t, text in seen if "first" in text)
    assert stdout == "done\n"
    assert first - start < ended - start - 1.5, "the first line was echoed only when the step ended"
