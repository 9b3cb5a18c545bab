"""Sections of the Markdown report that know about several machines and about publishing.

Pure functions of the tables and the study summary, each returning Markdown text; `report.render`
puts them in order.
"""

from __future__ import annotations

import shlex
from typing import Any

import pandas as pd
import yaml

from speedatlas.analyze.machine_axis import AXIS as MACHINE_AXIS
from speedatlas.present.formatting import escape_markdown, interval, markdown_table, missing
from speedatlas.plan.matrix import PROTOCOL_VERSION
from speedatlas.present.report import rowkeys

# Facts of a machine (one value per machine, several joined) and of each device on it.
MACHINE_FACTS = {
    "cpu_model": "CPU",
    "os": "OS",
    "python": "Python",
    "host": "host",
    "threads": "CPU threads used",
    "pipeline_commit": "speedatlas commit",
    "mps_fallback": "PYTORCH_ENABLE_MPS_FALLBACK",
}
DEVICE_COLUMNS = {
    "device": "device",
    "device_name": "device name",
    "torch_requested": "torch requested",
    "torch_version": "torch",
    "torchvision_version": "torchvision",
    "torch_build": "build",
}
PLOT_TITLES = {
    "speedup_heatmap": "Speed-ups by model and batch size",
    "throughput": "Throughput vs batch size",
    "noise": "Run-to-run noise per cell",
    "torch_versions": "Throughput by torch version",
    "energy": "Throughput vs power",
}
# Keys of the study summary that are not config keys.
NOT_CONFIG = ("cells", "configfiles")


def _join(values) -> str:
    unique = [str(v) for v in pd.unique(pd.Series(list(values)).dropna())]
    return ", ".join(unique) if unique else "unknown"


def environment(cells: pd.DataFrame) -> str:
    """One subsection per machine: its facts, then a row per device and torch version."""
    measured = cells[cells["torch_version"].notna() & (cells["status"] != "unavailable")]
    if measured.empty:
        return "_No cell ran, so no environment was recorded._\n"
    parts = []
    for machine, group in measured.groupby("machine", sort=True):
        shown = [c for c in MACHINE_FACTS if c != "mps_fallback" or (group["device"] == "mps").any()]
        facts = pd.DataFrame({"": [MACHINE_FACTS[c] for c in shown], "value": [_join(group[c]) for c in shown]})
        devices = group[list(DEVICE_COLUMNS)].drop_duplicates().sort_values(["device", "torch_version"])
        parts.append(f"### {machine}\n\n" + markdown_table(facts) + "\n" + markdown_table(devices.rename(columns=DEVICE_COLUMNS)))
    return "\n".join(parts)


def what_was_run(cells: pd.DataFrame, study: dict[str, Any]) -> str:
    """The matrix in one paragraph, plus the result sets of other machines."""
    counts = cells["status"].value_counts().sort_index()
    models = ", ".join(m if isinstance(m, str) else m["name"] for m in study["models"])
    # Per-model batch sizes and variants replace the study's lists: name what this machine's
    # cells ran (a study whose models all override batch_sizes ran none of the top-level ones).
    own = cells[cells["machine"] == study["machine"]]
    batches = sorted(own["batch_size"].dropna().astype(int).unique()) if len(own) else study["batch_sizes"]
    listed = list(study["variants"]) + [v for m in study["models"] if isinstance(m, dict) for v in m.get("variants") or ()]
    ran = set(own["variant"])
    variants = [v for v in dict.fromkeys(listed) if v in ran] + sorted(ran - set(listed)) if len(own) else study["variants"]
    text = (
        f"{len(cells)} cells ({', '.join(f'{n} {s}' for s, n in counts.items())}). This machine, "
        f"`{study['machine']}`: models {models}; devices {', '.join(study['devices'])} (baseline "
        f"{study['baseline_device']}); batch sizes {', '.join(map(str, batches))}; dtypes "
        f"{', '.join(study['dtypes'])}; modes {', '.join(study['modes'])}; variants "
        f"{', '.join(variants)}; torch {', '.join(study['torch_versions'])}; input "
        f"{study['input_size']}×{study['input_size']}. Per-model overrides are in the config below.\n"
    )
    others = cells[cells["machine"] != study["machine"]]
    if study.get("include_results") or len(others):
        text += ("\nMachines in this study (the cells of other machines were measured there and merged here "
                 "from their result sets; protocol: the timing protocol of their cells):\n\n")
        rows = []
        for machine, group in cells.groupby("machine", sort=True):
            rows.append({
                "machine": machine,
                "cells": len(group),
                "ran": int((group["status"] == "ok").sum()),
                "devices": ", ".join(sorted(group["device"].unique())),
                "models": ", ".join(sorted(group["model"].unique())),
                "protocol": _join(group["protocol"].astype("Int64")) if "protocol" in group else "unknown",
            })
        text += markdown_table(pd.DataFrame(rows))
        sources = study.get("include_results", [])
        if sources:
            text += "\nIncluded from: " + ", ".join(f"`{s}`" for s in sources) + ".\n"
        text += older_protocols(cells)
    return text


# What an earlier protocol did differently from the one Methodology describes (PROTOCOL_VERSION).
EARLIER_PROTOCOLS = {
    1: "a fixed number of processes per cell, run back to back, the garbage collector on, the warm-up "
       "counted in steps only, and an interval from a two-level bootstrap",
}


def older_protocols(cells: pd.DataFrame) -> str:
    """A warning where some ok cells were measured with an earlier protocol than Methodology
    describes (an included result set of older cells): their figures came about differently."""
    if "protocol" not in cells:
        return ""
    ok = cells[(cells["status"] == "ok") & cells["protocol"].notna()]
    older = ok[ok["protocol"].astype(int) < PROTOCOL_VERSION]
    if older.empty:
        return ""
    parts = []
    for (protocol, machine), group in older.groupby([older["protocol"].astype(int), "machine"], sort=True):
        how = EARLIER_PROTOCOLS.get(protocol, "see docs/timing.md")
        parts.append(f"{len(group)} cells of `{machine}` with protocol {protocol} ({how})")
    return (f"\n**Not all cells were measured the same way.** Methodology below describes protocol "
            f"{PROTOCOL_VERSION}; " + "; ".join(parts) + ". Compare their figures with that in mind.\n")


def cross_machine_method(speedups: pd.DataFrame, study: dict[str, Any]) -> str:
    """How machines are compared, only when the study holds more than one."""
    if speedups.empty or speedups["machine"].nunique() < 2:
        return ""
    baselines = ", ".join(f"`{b}`" for b in study.get("cross_machine_baselines", []))
    return (
        "**Across machines.** Each machine's cells were timed on that machine, with the protocol named under "
        "'What was run', "
        "and carry their own environment (below). A speed-up across machines compares a machine/device "
        f"with a baseline machine/device ({baselines}; key `cross_machine_baselines`) for cells whose "
        "other keys are equal: model, batch size, dtype, mode, variant and requested torch version "
        "(`current` is whatever torch each machine had: see Environment). Within one machine, devices "
        "are compared with `baseline_device`.\n"
    )


def shown_plots(paths: dict[str, str], cells: pd.DataFrame, speedups: pd.DataFrame,
                energy: bool) -> dict[str, str]:
    """The plots that have something to show: the heatmap only with a device or machine
    comparison, the energy plot only when a cell measured energy (`energy`), the throughput plot
    with two cells or more, the others only when a cell ran. The rules still draw the rest (their outputs must exist); the report does not
    embed them."""
    ran = int((cells["status"] == "ok").sum()) if len(cells) else 0
    has = {
        "speedup_heatmap": not speedups.empty and bool(speedups["axis"].isin([MACHINE_AXIS, "device"]).any()),
        "energy": energy,
        "throughput": ran > 1,  # one point: its figure is in the summary already
    }
    return {key: path for key, path in paths.items() if has.get(key, ran > 0)}


def plots(paths: dict[str, str]) -> str:
    """Embedded figures, each with a link to its SVG."""
    out = []
    for key, path in paths.items():
        title = PLOT_TITLES.get(key, key)
        svg = path[: -len(".png")] + ".svg" if path.endswith(".png") else path
        out.append(f"### {title}\n\n![{title}]({path})\n\n[SVG]({svg})\n")
    return "\n".join(out) if out else "_No plots: no cell ran._\n"


def timed_beside_others(cells: pd.DataFrame) -> str:
    """concurrency: device: the cells timed while a neighbour GPU timed another cell ("" if none).

    Flagged, not dropped: side-by-side cells are only as trustworthy as the machine's
    interference ratios (benchmarks/interference.py) show, against a target of 2%.
    """
    if "neighbours_busy" not in cells.columns:
        return ""
    busy = cells[(cells["status"] == "ok") & (cells["neighbours_busy"].fillna(0) > 0)]
    if busy.empty:
        return ""
    view = pd.DataFrame({
        "machine": busy["machine"], "device": busy["device"],
        "gpu": busy["gpu_index"].map(lambda v: "" if pd.isna(v) else str(int(v))),
        "model": busy["model"], "dtype": busy["dtype"], "mode": busy["mode"], "batch": busy["batch_size"],
        "neighbours busy": busy["neighbours_busy"].astype(int),
    })
    return (
        "## Cells timed beside others\n\n"
        f"{len(busy)} of {int((cells['status'] == 'ok').sum())} cells were timed while another GPU of the same "
        "machine timed a cell (`concurrency: device`). Each GPU had its own lock and its own host cores, but "
        "the GPUs share the host's memory bandwidth, PCIe and power budget: treat these cells as measured "
        "beside busy neighbours unless `benchmarks/interference.py` showed this machine's ratios within 2% "
        "(see docs/cluster.md, \"Several GPUs in one machine\"). Rerun a cell alone with `concurrency: machine` and "
        "`--forcerun` to compare.\n\n" + markdown_table(view.sort_values(["machine", "device", "model"]))
    )


def _has_tokens(cells: pd.DataFrame) -> bool:
    return "input_kind" in cells and bool((cells["input_kind"] == "tokens").any())


def _throughput_columns(ok: pd.DataFrame) -> dict[str, pd.Series]:
    """images/s; with token models, items/s (images or sequences) and tokens/s."""
    if not _has_tokens(ok):
        return {"images/s": ok["items_per_s"].map("{:.1f}".format)}
    return {
        "images or sequences/s": ok["items_per_s"].map("{:.1f}".format),
        "tokens/s": ok["tokens_per_s"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}"),
    }


def custom_models_method(cells: pd.DataFrame) -> str:
    """How models that are not torchvision's were built and trained (empty when there are none)."""
    if "model_source" not in cells:
        return ""
    custom = cells[cells["model_source"].notna() & (cells["model_source"] != "torchvision")]
    if custom.empty:
        return ""
    lines = []
    for model, group in custom.groupby("model", sort=True):
        first = group.iloc[0]
        if first["input_kind"] == "tokens":
            what = f"token ids ({int(first['input_size'])} per sequence, vocabulary {int(first['vocab_size'])})"
        else:
            what = f"{int(first['input_size'])}×{int(first['input_size'])} RGB images"
        lines.append(f"- `{model}`: {escape_markdown(first['model_source'])}, seeded {what}")
    return (
        "Models that are not torchvision's (a built-in transformer or a user's factory) get the same "
        "protocol. Token models take a seeded batch of token ids; one whose output is (batch, classes) "
        "trains with cross-entropy on seeded labels, one whose output is (batch, length, vocab) trains "
        "as a language model (cross-entropy of each position's logits on the next token). Their "
        "throughput is in sequences/s (`tokens_per_s` = sequences/s × tokens per sequence), and their speed-ups compare times per sequence.\n\n"
        + "\n".join(lines) + "\n"
    )


def _step_ms(ok: pd.DataFrame) -> pd.Series:
    """The median step time with its interval, in ms, with the digits the interval supports."""
    if "ci_low_s" not in ok:
        return ok["median_s"].map(lambda s: f"{s * 1000:.2f}")
    return pd.Series([interval(m * 1000, lo * 1000, hi * 1000) for m, lo, hi in
                      zip(ok["median_s"], ok["ci_low_s"], ok["ci_high_s"])], index=ok.index, dtype=object)


def _precision(ok: pd.DataFrame) -> pd.Series:
    """'±3.1%' (the interval's relative half-width), with the target where the cell missed it."""
    if "precision" not in ok:
        return pd.Series("", index=ok.index)
    target = ok["precision_target"] if "precision_target" in ok else pd.Series(float("nan"), index=ok.index)
    return pd.Series([
        "" if missing(p) else f"±{p:.1%}" + (f" (asked ±{t:.0%})" if not missing(t) and p > t * (1 + 1e-9) else "")
        for p, t in zip(ok["precision"], target)], index=ok.index, dtype=object)


def all_cells(cells: pd.DataFrame) -> str:
    ok = cells[cells["status"] == "ok"]
    view = pd.DataFrame(
        {
            # the same model/device/batch on two machines or under two workloads (a resident
            # batch, a whole epoch)
            **rowkeys.varying(ok, ("machine", "workload")),
            "model": ok["model"],
            **rowkeys.varying(ok, ("variant",)),
            "device": ok["device"],
            "dtype": ok["dtype"],
            "mode": ok["mode"],
            "batch": ok["batch_size"],
            "torch": ok["torch_version"],
            "median ms/step [interval]": _step_ms(ok),
            "processes": ok["processes"] if "processes" in ok else "",
            "precision": _precision(ok),
            **_throughput_columns(ok),
            "CV": ok["cv"].map("{:.1%}".format),
            "noisy": ok["noisy"].map({True: "yes", False: ""}),
            # accelerator cells only: host issue time / synchronised step (issue 14)
            **({"host share": ok["host_share"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
                + ok["host_bound"].map({True: " †", False: ""})}
               if "host_share" in ok and ok["host_share"].notna().any() else {}),
        }
    )
    return markdown_table(view, markup=["median ms/step [interval]"])


def resolved_config(study: dict[str, Any]) -> str:
    """The study's config with every default filled in: save it and run it."""
    config = {k: v for k, v in sorted(study.items()) if k not in NOT_CONFIG}
    return yaml.safe_dump(config, sort_keys=True, default_flow_style=None, width=100)


def reproduce(cells: pd.DataFrame, study: dict[str, Any]) -> str:
    configs = study.get("configfiles") or ["config/config.yaml"]
    # last on the line: --configfile takes several files and would swallow a target after it;
    # quoted where a shell would split or expand the path ("my configs/study 1.yaml")
    option = "--configfile " + " ".join(shlex.quote(config) for config in configs)
    commits = []
    for machine, group in cells.groupby("machine", sort=True):
        commits.append(f"`{machine}`: `{_join(group['pipeline_commit'])}`")
    name = study.get("publish_name", study["machine"])
    return (
        f"speedatlas commit of the cells: {'; '.join(commits) or 'unknown'}. Check it out, then on "
        f"the machine `{study['machine']}`:\n\n"
        "```sh\n"
        f"uv run snakemake --cores 1 {option}            # the study: cells, tables, plots, this report\n"
        f"uv run snakemake --cores 1 --report results/studies/{study.get('study', 'default')}/report.html {option}"
        "   # Snakemake's HTML report\n"
        f"uv run snakemake --cores 1 publish {option}    # a self-contained copy in results/publish/{name}/\n"
        "```\n\n"
        "Other machines' result sets are included by path (`include_results`), so copy them first. The "
        "config, every default filled in (save it as a file and pass it with `--configfile`):\n\n"
        "```yaml\n" + resolved_config(study) + "```\n"
    )
