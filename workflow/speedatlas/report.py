"""The Markdown report: findings first, then method, environment, tables, plots and failures.

Pure: takes DataFrames and the study summary, returns text. Every number in it comes from the
tables, so the tests can check sentences against table values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .aggregate import speedups_markdown
from .tables import format_ratio, markdown_table

ENV_COLUMNS = {
    "machine": "machine",
    "device": "device",
    "device_name": "device name",
    "torch_version": "torch",
    "torchvision_version": "torchvision",
    "torch_build": "build",
    "cpu_model": "CPU",
    "threads": "threads",
    "os": "OS",
    "python": "Python",
    "host": "host",
    "pipeline_commit": "speedatlas commit",
}


def _fmt_ms(seconds: float) -> str:
    return "" if pd.isna(seconds) else f"{seconds * 1000:.2f}"


def findings(cells: pd.DataFrame, speedups: pd.DataFrame, limit: int = 3) -> list[str]:
    """The few sentences a reader needs, computed from the tables.

    Device speed-ups first (largest and smallest), else the batch-size scaling; always the
    count of cells that did not run.
    """
    sentences = []
    device = speedups[speedups["axis"] == "device"] if not speedups.empty else speedups
    if not device.empty:
        ranked = device.sort_values("speedup", ascending=False)
        picks = [ranked.iloc[0]] + ([ranked.iloc[-1]] if len(ranked) > 1 else [])
        for row in picks:
            verb = "faster" if row["speedup"] >= 1 else "slower"
            factor = row["speedup"] if row["speedup"] >= 1 else 1 / row["speedup"]
            if row["speedup"] >= 1:
                ci = format_ratio(row["speedup"], row["ci_low"], row["ci_high"])
            else:
                ci = format_ratio(1 / row["speedup"], 1 / row["ci_high"], 1 / row["ci_low"])
            workload = "" if row["workload"] == "synthetic" else f", {row['workload']} workload"
            sentences.append(
                f"{row['candidate']} is {factor:.2f}× {verb} than {row['baseline']} for {row['model']} "
                f"{'training' if row['mode'] == 'train' else 'inference'} at batch {row['batch_size']} "
                f"({row['dtype']}, torch {row['torch_requested']}{workload}): {ci.split(' ', 1)[1]} 95% CI."
            )
    elif not speedups.empty and (speedups["axis"] == "batch_size").any():
        scaling = speedups[speedups["axis"] == "batch_size"].sort_values("speedup", ascending=False).iloc[0]
        sentences.append(
            f"On {scaling['device']}, {scaling['model']} "
            f"{'training' if scaling['mode'] == 'train' else 'inference'} processes "
            f"{scaling['speedup']:.2f}× more images/s at batch {scaling['candidate']} than at batch "
            f"{scaling['baseline']} ({format_ratio(scaling['speedup'], scaling['ci_low'], scaling['ci_high']).split(' ', 1)[1]} 95% CI)."
        )
    failed = cells[cells["status"] != "ok"]
    if len(failed):
        counts = ", ".join(f"{n} {s}" for s, n in failed["status"].value_counts().sort_index().items())
        sentences.append(f"{len(failed)} of {len(cells)} cells did not run ({counts}); see 'Cells that did not run'.")
    noisy = cells[cells["noisy"].fillna(False).astype(bool)]
    if len(noisy):
        sentences.append(f"{len(noisy)} cells are noisy (coefficient of variation above the threshold); rerun them on a quiet machine.")
    return sentences[: limit + 2]


METHODOLOGY = """\
Each cell is one Snakemake job and one fresh Python process. It builds the torchvision model with
random weights (`weights=None`, seed {seed}) and a {num_classes}-class head, and makes one seeded
synthetic batch of {input_size}×{input_size} RGB images that stays resident on the device, so no
input pipeline is timed. A *train* step is forward, cross-entropy loss, backward and an Adam step;
an *infer* step is a forward pass under `torch.inference_mode()`. float16/bfloat16 run under
`torch.autocast` (with loss scaling for float16 training on CUDA).

The first step and {warmup} warm-up steps in all are never timed. Then {repeats} timed blocks of
{steps_per_repeat} step(s) run; every block ends with a device synchronize
(`torch.cuda.synchronize()` / `torch.mps.synchronize()`), because accelerators run
asynchronously and an unsynchronised timer measures only how fast work is queued. Each block gives
one raw sample (seconds per step), all stored. Tables report the median with the interquartile
range; speed-ups are ratios of medians with a {confidence:.0%} percentile-bootstrap interval
({resamples} resamples of the raw samples). Only one timing job runs at a time on the machine
(a Snakemake resource plus an OS file lock), and CPU cells use the configured thread count.
"""


def render(
    cells: pd.DataFrame,
    speedups: pd.DataFrame,
    study: dict[str, Any],
    plots: dict[str, str],
    confidence: float = 0.95,
    resamples: int = 2000,
    sections: Sequence[str] = (),
) -> str:
    """The whole report as Markdown; `plots` maps a title to a path relative to the report.

    `sections` are ready Markdown sections (each starting with its '## ' heading), placed after
    the speed-ups: the seed side by side, the epoch workload, the dtype support matrix.
    """
    machines = ", ".join(sorted(cells["machine"].unique())) if len(cells) else study["machine"]
    out = [f"# speedatlas report: {machines}\n"]
    out.append("## Summary\n")
    out.extend(f"- {s}" for s in findings(cells, speedups) or ["No cell ran successfully."])
    out.append("")

    out.append("## What was run\n")
    counts = cells["status"].value_counts().sort_index()
    out.append(
        f"{len(cells)} cells ({', '.join(f'{n} {s}' for s, n in counts.items())}) on machine "
        f"`{study['machine']}`: models {', '.join(m if isinstance(m, str) else m['name'] for m in study['models'])}; "
        f"devices {', '.join(study['devices'])} (baseline {study['baseline_device']}); batch sizes "
        f"{', '.join(map(str, study['batch_sizes']))}; dtypes {', '.join(study['dtypes'])}; modes "
        f"{', '.join(study['modes'])}; variants {', '.join(study['variants'])}; torch "
        f"{', '.join(study['torch_versions'])}; input {study['input_size']}×{study['input_size']}. "
        "Per-model overrides are listed in the config.\n"
    )

    out.append("## Methodology\n")
    out.append(METHODOLOGY.format(**study["timing"], seed=study.get("seed", 0), num_classes=study["num_classes"],
                                  input_size=study["input_size"], confidence=confidence, resamples=resamples))

    out.append("## Environment\n")
    ran = cells[cells["torch_version"].notna() & (cells["status"] != "unavailable")]
    env = ran[list(ENV_COLUMNS)].drop_duplicates().sort_values(["machine", "device", "torch_version"])
    out.append(markdown_table(env.rename(columns=ENV_COLUMNS)))

    out.append("## Speed-ups\n")
    out.append(
        "Speed-up = median time per image of the baseline / that of the candidate (above 1: the "
        f"candidate is faster), with a {confidence:.0%} bootstrap interval; `(n.s.)` marks an interval "
        "that includes 1.\n"
    )
    out.append(speedups_markdown(speedups))
    out.extend(section.rstrip() + "\n" for section in sections)

    out.append("## Plots\n")
    for title, path in plots.items():
        out.append(f"![{title}]({path})\n")

    out.append("## All cells\n")
    ok = cells[cells["status"] == "ok"]
    view = pd.DataFrame(
        {
            "model": ok["model"],
            "device": ok["device"],
            "dtype": ok["dtype"],
            "mode": ok["mode"],
            "batch": ok["batch_size"],
            "torch": ok["torch_version"],
            "median ms/step": ok["median_s"].map(_fmt_ms),
            "IQR ms": ok["iqr_s"].map(_fmt_ms),
            "images/s": ok["items_per_s"].map("{:.1f}".format),
            "CV": ok["cv"].map("{:.1%}".format),
            "noisy": ok["noisy"].map({True: "yes", False: ""}),
        }
    )
    if ok["workload"].nunique() > 1:  # the same model/device/batch under two workloads
        view.insert(0, "workload", ok["workload"])
    out.append(markdown_table(view))

    out.append("## Cells that did not run\n")
    failed = cells[cells["status"] != "ok"]
    out.append(
        markdown_table(failed[[*(["workload"] if cells["workload"].nunique() > 1 else []),
                               "model", "device", "dtype", "mode", "batch_size", "torch_requested", "status", "error"]])
    )

    out.append("## How to reproduce\n")
    configs = " ".join(study.get("configfiles", []))
    commits = ", ".join(sorted(cells["pipeline_commit"].dropna().unique())) or "unknown"
    out.append(
        f"speedatlas commit(s): `{commits}`.\n\n```\nuv run snakemake --cores 1 --configfile {configs}\n```\n\n"
        "The study's matrix:\n\n```json\n" + json.dumps(study, indent=1, sort_keys=True) + "\n```\n"
    )
    return "\n".join(out)
