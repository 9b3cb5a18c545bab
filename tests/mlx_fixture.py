"""MLX for the tests of the MLX cells: the running interpreter's, else the pipeline's own MLX
environment built once per machine into the speedatlas cache (speedatlas.plan.mlx_env, the code
the `mlx_env` rule runs), whose site-packages are then put on this process's sys.path (same
Python, so its compiled modules load here).

Skips (with the reason) only where neither is possible: no uv, no package index, no wheel.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from speedatlas.plan import config as study_config
from speedatlas.plan import mlx_env, torch_envs

VERSION = "0.32.4"


def ensure_mlx():
    """The `mlx.core` module, or pytest.skip."""
    if mlx_env.importable():
        return importlib.import_module("mlx.core")
    folder = study_config.cache_dir() / f"test-mlx-{VERSION}-py{torch_envs.current_python()}"
    marker = folder / torch_envs.MARKER_NAME
    if not marker.is_file():
        if torch_envs.find_uv() is None:
            pytest.skip("MLX is not installed and uv is not on PATH to install it")
        spec = mlx_env.render_spec(VERSION, mlx_env.package_for("auto", ["cpu"]))
        record = mlx_env.build(spec, marker)
        if record["status"] != "ok":
            marker.unlink(missing_ok=True)
            pytest.skip(f"MLX could not be installed for the tests: {record['error']}")
    sites = sorted(Path(folder).glob("lib/python*/site-packages"))
    if not sites:
        pytest.skip(f"no site-packages in {folder}")
    sys.path.insert(0, str(sites[0]))
    return importlib.import_module("mlx.core")
