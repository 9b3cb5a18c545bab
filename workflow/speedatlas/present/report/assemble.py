"""The Markdown report: findings first, then method, environment, tables, plots and failures.

Pure: takes DataFrames and the study summary, returns text. Every number in it comes from the
tables, so the tests can check sentences against table values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from speedatlas.present.report import failures, mac_checks, sections
from speedatlas.present.report.efficiency import efficiency_markdown
from speedatlas.present.report.energy import energy_section, measured as energy_measured
from speedatlas.present.report.findings import Shipped, summary as summary_findings
from speedatlas.present.report.intervals import interval_notes
from speedatlas.present.report.speedup_tables import speedups_markdown
from speedatlas.present.report.torch_versions import report_section as torch_versions_section


def findings(cells: pd.DataFrame, speedups: pd.DataFrame, limit: int = 3, confidence: float = 0.95,
             study: dict[str, Any] | None = None, shipped: dict[str, Any] | None = None) -> list[str]:
    """The few sentences a reader needs, computed from the tables (see speedatlas.present.report.findings)."""
    return summary_findings(cells, speedups, limit, confidence, study, Shipped.from_dict(shipped))


def no_findings(cells: pd.DataFrame) -> str:
    """The summary's line when no headline applies: the truth about why (a study of variants or
    dtypes on one device has no device or batch-size headline, yet every cell may be ok)."""
    ok = int((cells["status"] == "ok").sum()) if len(cells) and "status" in cells else 0
    if ok == 0:
        return "No cell ran successfully."
    return (f"{ok} cells ran ok. The summary's headlines compare devices and batch sizes, which this study "
            "does not vary: its speed-ups (dtypes, variants, torch versions) are in the tables below.")


METHODOLOGY = """\
Each process of a cell is one Snakemake job and one fresh Python process. It builds the model with
random weights (`weights=None`, seed {seed}) and a {num_classes}-class head, and makes one seeded
synthetic batch of {input_size}×{input_size} RGB images that stays resident on the device, so no
input pipeline is timed. A *train* step is forward, cross-entropy loss, backward and an Adam step;
an *infer* step is a forward pass under `torch.inference_mode()`. float16/bfloat16 run under
`torch.autocast` (with loss scaling for float16 training on CUDA).

The first step and at least {warmup} warm-up steps, lasting at least {warmup_seconds} s, are never
timed. Then {repeats} timed blocks of {steps_per_repeat} step(s) run; every block ends with a
device synchronize
(`torch.cuda.synchronize()` / `torch.mps.synchronize()`), because accelerators run
asynchronously and an unsynchronised timer measures only how fast work is queued. Each block gives
one raw sample (seconds per step), all stored; Python's garbage collector is off during them.
A cell's processes (fresh, each with its own warm-up) are separate jobs run in rounds across the
study, so a disturbance of a few seconds hits one process of many cells rather than every
process of one (a study of more than 1,000 cells runs a cell's processes back to back instead:
Snakemake would take minutes to plan one job per process). A cell's value is the geometric mean of its processes' medians with a
{confidence:.0%} interval for where a rerun of the cell should land (see below; a cell of one
process gets a bootstrap interval of its median, {resamples} resamples); speed-ups are ratios of
the two cells' values with an interval that carries both sides' uncertainty. Figures are printed
with the digits their interval supports. Only one timing job runs at a time on the machine (a
Snakemake resource plus an OS file lock), and CPU cells use the configured thread count.
"""


def render(
    cells: pd.DataFrame,
    speedups: pd.DataFrame,
    study: dict[str, Any],
    plots: dict[str, str],
    confidence: float = 0.95,
    resamples: int = 2000,
    extra_sections: Sequence[str] = (),
    shipped: dict[str, Any] | None = None,
) -> str:
    """The whole report as Markdown; `plots` maps a plot name (report_sections.PLOT_TITLES) to a
    path relative to the report (a plot with nothing to show is not embedded).

    `extra_sections` are ready Markdown sections (each starting with its '## ' heading), placed after
    the speed-ups: the seed side by side, the epoch workload, the dtype support matrix. `shipped`:
    a result set shipped with speedatlas that the summary may suggest including
    (plan.comparisons.shipped_result_set).
    """
    machines = " vs ".join(sorted(cells["machine"].unique())) if len(cells) else study["machine"]
    out = [f"# speedatlas report: {machines}\n"]
    out.append("## Summary\n")
    out.extend(f"- {s}" for s in findings(cells, speedups, confidence=confidence, study=study, shipped=shipped)
               or [no_findings(cells)])
    out.append("")

    out.append("## What was run\n")
    out.append(sections.what_was_run(cells, study))

    out.append("## Methodology\n")
    out.append(METHODOLOGY.format(**{"warmup_seconds": 0, **study["timing"]}, seed=study.get("seed", 0), num_classes=study["num_classes"],
                                  input_size=study["input_size"], confidence=confidence, resamples=resamples))
    custom = sections.custom_models_method(cells)  # only for models that are not torchvision's
    if custom:
        out.append(custom)
    out.append(sections.cross_machine_method(speedups, study))

    out.append("## Environment\n")
    out.append(sections.environment(cells))

    out.extend(torch_versions_section(cells))  # empty for a study of one torch version

    out.append("## Speed-ups\n")
    out.append(
        "Speed-up = median time per image of the baseline / that of the candidate (above 1: the "
        f"candidate is faster), with a {confidence:.0%} bootstrap interval in brackets; `n.s.` marks an "
        "interval that includes 1 (no clear difference). One column per batch size; every pair of cells "
        "is in `tables/speedups.csv`.\n"
    )
    out.extend(f"{note}\n" for note in interval_notes(cells, study))
    out.append(speedups_markdown(speedups))
    out.extend(section.rstrip() + "\n" for section in extra_sections)

    out.append("## Plots\n")
    shown = sections.shown_plots(plots, cells, speedups, energy_measured(cells))
    out.append(sections.plots(shown))

    out.append("## Hardware efficiency and memory\n")
    out.append(efficiency_markdown(cells))

    energy = energy_section(cells, speedups, confidence, shown.get("energy"))  # a line where none was measured
    if energy:
        out.append(energy)

    beside = sections.timed_beside_others(cells)  # concurrency: device only
    if beside:
        out.append(beside)
    if mac_checks.applies(cells):  # an mps cell ran, or a cell ran on macOS
        out.append("## Machine state and mps checks\n")
        out.append(mac_checks.section(cells))

    out.append("## Cells that did not run\n")
    out.append(failures.section(cells))

    out.append("## How to reproduce\n")
    out.append(sections.reproduce(cells, study))

    out.append("## All cells\n")
    out.append(sections.all_cells(cells))
    return "\n".join(out)
