"""A self-contained copy of a study for a docs site or a release, usable as an included result set.

    results/publish/<name>/
      index.html            the report as one HTML page, plots embedded
      report.md             the Markdown report (links to plots/ and tables/ below)
      plots/                every plot, PNG and SVG
      tables/               cells and speed-ups as Parquet and CSV (+ speedups.md)
      config/               the config file(s) given, resolved.yaml (every default filled in) and
                            the source files of the study's model factories: at their paths, or
                            under factories/ for files outside the study's working directory (the
                            configs then name those copies), so config/ reruns the study anywhere
      cells/machine=…/…     every cell file of the study (its own and included machines')
      manifest.json         what is in the bundle, with the sha256 and size of every file
      SHA256SUMS            the same checksums for `sha256sum -c SHA256SUMS`

Because `cells/` is a Hive tree and the manifest lists its checksums, the folder can be given to
another study's `include_results` as is; that study verifies the checksums before merging. No
timestamps are written, so the same inputs give the same bundle, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from speedatlas.plan.comparisons import MANIFEST, sha256
from speedatlas.present.report import html_page, sections

FORMAT = "speedatlas-bundle"
FORMAT_VERSION = 1
CHECKSUMS = "SHA256SUMS"
# Snakemake's mark of a finished directory output: in the bundle's folder, not part of the bundle.
NOT_LISTED = (MANIFEST, CHECKSUMS, ".snakemake_timestamp")


def cell_relpath(path: str) -> Path:
    """`machine=…/…/cell.parquet`: a cell file's path from its machine partition on."""
    parts = Path(path).parts
    for index in range(len(parts) - 1, -1, -1):
        if parts[index].startswith("machine="):
            return Path(*parts[index:])
    raise ValueError(f"{path}: not inside a machine=… folder")


def _copy(source: str | os.PathLike[str], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def build_manifest(folder: Path, name: str, cells: pd.DataFrame) -> dict[str, Any]:
    """Checksums of every file in `folder` (except the manifest files and Snakemake's mark), and
    what the bundle holds."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative in NOT_LISTED:
            continue
        files[relative] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    machines = {}
    for machine, group in cells.groupby("machine", sort=True):
        machines[machine] = {
            "cells": len(group),
            "ok": int((group["status"] == "ok").sum()),
            "devices": sorted(group["device"].unique()),
            "cpu_model": sorted(group["cpu_model"].dropna().unique()),
            "pipeline_commit": sorted(group["pipeline_commit"].dropna().unique()),
        }
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "machines": machines,
        "usage": "add this folder to another study's include_results to compare machines",
        "files": files,
    }


RENAMED_HEADER = (
    "# speedatlas publish: the factories below name this bundle's copies of files that lay outside the\n"
    "# study's working directory; run the bundle with its config/ folder as the working directory.\n"
)


def bundle_config(text: str, factory_strings: dict[str, str]) -> str | None:
    """A config file as the bundle keeps it when it names a factory the bundle renames (its
    comments are lost: the YAML is written anew, under a header saying why); None otherwise."""
    if not factory_strings:
        return None
    config = yaml.safe_load(text)
    models = config.get("models") if isinstance(config, dict) else None
    if not isinstance(models, list) or not any(_renamed(entry, factory_strings) != entry for entry in models):
        return None
    config["models"] = [_renamed(entry, factory_strings) for entry in models]
    return RENAMED_HEADER + yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=100)


def _renamed(entry: Any, factory_strings: dict[str, str]) -> Any:
    if isinstance(entry, dict) and entry.get("factory") in factory_strings:
        return {**entry, "factory": factory_strings[entry["factory"]]}
    return entry


def publish(
    out_dir: str,
    name: str,
    report_md: str,
    plots: Sequence[str],
    tables: Sequence[str],
    cell_files: Sequence[str],
    configs: Sequence[str],
    study: dict[str, Any],
    factories: dict[str, str] | None = None,
    factory_strings: dict[str, str] | None = None,
) -> Path:
    """Write the bundle to a temporary sibling folder, then rename it into place.

    `factories` ({path in the bundle: source file}): the model factories of the study, kept
    under config/ at the path the config names them by, so the bundle reruns as it is.
    `factory_strings` ({factory as configured: as the bundle names it}): factories whose files
    lie outside the working directory; the bundle's configs name their copies instead
    (speedatlas.plan.model_entries.bundle_places).
    """
    factory_strings = factory_strings or {}
    final = Path(out_dir)
    work = final.with_name(f".{final.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    _copy(report_md, work / "report.md")
    for plot in plots:
        _copy(plot, work / "plots" / Path(plot).name)
    for table in tables:
        _copy(table, work / "tables" / Path(table).name)
        if table.endswith("cells.parquet"):
            pd.read_parquet(table).to_csv(work / "tables" / "cells.csv", index=False)
    copied = set()
    for cell in cell_files:
        relative = cell_relpath(cell)
        if relative not in copied:  # the same cell from two sources was checked identical when merging
            _copy(cell, work / "cells" / relative)
            copied.add(relative)
    for config in configs:
        renamed = bundle_config(Path(config).read_text(), factory_strings)
        if renamed is None:
            _copy(config, work / "config" / Path(config).name)
        else:
            (work / "config").mkdir(exist_ok=True)
            (work / "config" / Path(config).name).write_text(renamed)
    for relative, source in sorted((factories or {}).items()):
        _copy(source, work / "config" / relative)
    study = {**study, "models": [_renamed(entry, factory_strings) for entry in study["models"]]}
    (work / "config" / "resolved.yaml").write_text(sections.resolved_config(study))
    (work / "index.html").write_text(html_page.to_html((work / "report.md").read_text(), base=work))

    write_checksums(work, name, pd.read_parquet(next(t for t in tables if t.endswith("cells.parquet"))))

    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    return final


def refresh(folder: Path) -> None:
    """Rebuild a bundle's index.html from its report.md (after a change of the renderer), then its
    manifest.json and SHA256SUMS, so the bundle stays a verifiable result set. Its name and cells
    are the bundle's own (manifest, tables/cells.parquet)."""
    folder = Path(folder)
    name = json.loads((folder / MANIFEST).read_text())["name"]
    (folder / "index.html").write_text(html_page.to_html((folder / "report.md").read_text(), base=folder))
    write_checksums(folder, name, pd.read_parquet(folder / "tables" / "cells.parquet"))


def write_checksums(folder: Path, name: str, cells: pd.DataFrame) -> dict[str, Any]:
    """manifest.json and SHA256SUMS of every file in `folder`."""
    manifest = build_manifest(folder, name, cells)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    (folder / CHECKSUMS).write_text("".join(f"{e['sha256']}  {f}\n" for f, e in manifest["files"].items()))
    return manifest
