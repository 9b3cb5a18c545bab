"""The environment MLX cells run in, when the interpreter running snakemake has no MLX.

    python -m speedatlas.plan.mlx_env --spec '<rendered spec>' --marker .speedatlas/envs/mlx-0.32.4/env.json

MLX is installed only for studies that ask for it (a variants list naming mlx or mlx_compile):

1. the interpreter running snakemake can import `mlx` (you installed it: `uv pip install
   "mlx[cpu]"` on Linux, `mlx` on a Mac; on a GPU machine wheels on PYTHONPATH): MLX cells run
   there, like every torch cell of `current`;
2. otherwise the `mlx_env` rule builds `.speedatlas/envs/mlx-<version>/`, a uv venv of the same
   Python whose site-packages also see the running environment's (a `.pth` file listing them:
   torch, torchvision, numpy, pyarrow come from there, so the MLX cells' torch side is exactly the
   torch of the `current` cells), and installs `mlx[cpu]` (Linux), `mlx[cuda13]` (Linux, a study
   device is cuda) or `mlx` (macOS) at the configured version into it.

The build is torch_envs' (speedatlas.plan.torch_envs.build_env: uv venv, install, an import
check, a marker with status ok or failed and uv's message): a failed build makes the MLX cells
`unavailable` with that message and the rest of the study completes. The rendered spec (with the
layered paths and the Python version) is the rule's param and, hashed, part of the MLX cells'
specs: a new version, package or base environment rebuilds it and reruns exactly those cells.

Orchestration side: standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

from speedatlas.plan import torch_envs

_SEES = "# sees: "

PROBE = """\
import json, platform
import mlx.core as mx, numpy, pyarrow, torch, torchvision
print(json.dumps({
    "mlx_version": mx.__version__,
    "torch_version": torch.__version__,
    "torchvision_version": torchvision.__version__,
    "numpy_version": numpy.__version__,
    "python": platform.python_version(),
}))
"""


def importable() -> bool:
    """Can the interpreter running snakemake import mlx? (found, not imported: no cost, no side effect)"""
    try:
        return importlib.util.find_spec("mlx") is not None
    except (ImportError, ValueError):
        return False


def package_for(package: str, devices: list[str], platform: str | None = None) -> str:
    """The requirement's name: config `mlx.package`, or for `auto` what this machine needs."""
    if package != "auto":
        return package
    platform = platform or sys.platform
    if platform == "darwin":
        return "mlx"
    if any(device.split(":")[0] == "cuda" for device in devices):
        return "mlx[cuda13]"
    return "mlx[cpu]"


def env_dir(version: str) -> str:
    return f"{torch_envs.ENVS_ROOT}/mlx-{version}"


def marker_path(version: str) -> str:
    return f"{env_dir(version)}/{torch_envs.MARKER_NAME}"


def python_path(version: str) -> str:
    return f"{env_dir(version)}/bin/python"


def base_site_packages() -> list[str]:
    """The running environment's package folders (site- and dist-packages on its sys.path)."""
    folders = [p for p in sys.path if p and os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")]
    return list(dict.fromkeys(os.path.abspath(p) for p in folders if os.path.isdir(p)))


def render_spec(version: str, package: str, python: str | None = None, sees: list[str] | None = None) -> str:
    """The requirements text of the MLX environment, naming what it is layered on."""
    sees = base_site_packages() if sees is None else sees
    lines = [f"# speedatlas: MLX environment, {package}=={version}, layered on the running environment",
             f"# python: {python or torch_envs.current_python()}"]
    lines += [_SEES + path for path in sees]
    lines.append(f"{package}=={version}")
    return "\n".join(lines) + "\n"


def layered_paths(spec: str) -> list[str]:
    return [line[len(_SEES):].strip() for line in spec.splitlines() if line.startswith(_SEES)]


def spec_with_env(cell_spec: str, version: str, rendered: str) -> str:
    """An MLX cell's canonical JSON plus its environment, under the key the supervisor reads for
    every built environment ("torch_env": a failed build becomes the cell's `unavailable` row)."""
    spec = json.loads(cell_spec)
    spec["torch_env"] = {"id": torch_envs.env_id(rendered), "marker": marker_path(version)}
    return json.dumps(spec, sort_keys=True)


def layer(target: Path, paths: list[str]) -> None:
    """Make the new venv see the running environment's packages, after its own (a .pth file)."""
    sites = sorted(target.glob("lib/python*/site-packages")) or sorted(target.glob("Lib/site-packages"))
    if not sites:
        raise torch_envs.BuildError(f"the new environment {target} has no site-packages folder")
    (sites[0] / "_speedatlas_running_env.pth").write_text("".join(f"{path}\n" for path in paths))


def check(python: str) -> dict[str, str]:
    return torch_envs.probe(python, PROBE, "importing mlx, torch, torchvision, numpy and pyarrow")


def build(spec: str, marker: str | os.PathLike[str]) -> dict[str, object]:
    """Build the MLX environment and write its marker; never raises for a failed build."""
    requirement = spec.strip().splitlines()[-1]
    return torch_envs.build_env(spec, marker, {"mlx_requested": requirement}, f"the MLX ({requirement})",
                                check, prepare=lambda target: layer(target, layered_paths(spec)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the MLX environment with uv")
    parser.add_argument("--spec", required=True, help="the rendered requirements text (render_spec)")
    parser.add_argument("--marker", required=True, help="marker file to write, inside the environment's folder")
    args = parser.parse_args(argv)
    record = build(args.spec, args.marker)
    if record["status"] == "ok":
        print(f"speedatlas: mlx {record['mlx_version']} beside torch {record['torch_version']}, "
              f"built in {record['build_seconds']} s", file=sys.stderr)
    else:
        print(f"speedatlas: {record['error']}", file=sys.stderr)
        print("speedatlas: the MLX cells will be recorded as unavailable; to retry run "
              f"`snakemake --forcerun {args.marker}` or delete {Path(args.marker).parent}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
