"""The report's summary: the device question answered first, from the tables.

A reader comes with one question: is that device (mps, cuda, another machine) worth using for my
model, against this one's CPU? The summary's first line answers it with the figure and its
interval, or says in one sentence why this study cannot and what to do next: the device is not
on this machine (run the study where it is, or compare with a shipped result set), the study has
only one device, or no cell ran (the first reason). Then, per comparison: typical and extreme
cells, cells where the "faster" device loses, how the gap moves with the batch size; without a
comparison, what the device that ran does. Every figure comes straight from a table row, with
the digits its interval supports (formatting.figures), so a test can check each sentence
against its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from speedatlas.analyze.machine_axis import AXIS as MACHINE_AXIS
from speedatlas.present.report.failures import failure_groups
from speedatlas.present.report.intervals import short_of_precision
from speedatlas.present.formatting import (
    confidence_interval,
    count,
    escape_markdown,
    figures,
    missing,
    ratio_in_sentence,
    times,
    word_list,
)

COMPARISON_AXES = (MACHINE_AXIS, "device")
# Comparisons a one-device study may still make (in this order) when it has no device comparison.
OTHER_AXES = ("variant", "dtype", "torch_requested")
CONTEXT_KEYS = ("workload", "torch_requested", "dtype", "variant")
CONTEXT_NAMES = {"torch_requested": "torch"}
MODE_WORDS = {"train": "training", "infer": "inference"}
TREND_TOLERANCE = 1.1  # medians within 10% of each other: the gap "stays about the same"
# Where a device exists, for "run this study on ...".
DEVICE_HOMES = {"mps": "an Apple Silicon Mac", "cuda": "a machine with an NVIDIA GPU"}


@dataclass(frozen=True)
class Shipped:
    """A result set shipped with speedatlas (published/h100) that a study can include to compare
    with: where it is from the study's folder, and which cells it holds (plan.comparisons)."""

    path: str
    label: str
    cells: frozenset[tuple[str, int]]  # (model, batch size)
    input_size: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Shipped | None:
        if not data:
            return None
        return cls(data["path"], data["label"], frozenset((m, int(b)) for m, b in data["cells"]),
                   data.get("input_size"))


def _cell(row: pd.Series, varying: set[str]) -> str:
    """'vgg16 training at batch 64' (+ dtype, torch, ... where the study has several)."""
    text = f"{row['model']} {MODE_WORDS.get(row['mode'], row['mode'])} at batch {row['batch_size']}"
    extra = [f"{CONTEXT_NAMES.get(k, k)} {row[k]}" for k in CONTEXT_KEYS if k in varying]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _device(label: str) -> str:
    return label.rsplit("/", 1)[-1]


def interest(baseline: str, candidate: str) -> int:
    """0: accelerator vs accelerator (m1max/mps vs h100/cuda); 1: accelerator vs cpu;
    2: cpu vs cpu; 3: cpu vs accelerator (the inverse of a more natural question)."""
    base_cpu, cand_cpu = _device(baseline) == "cpu", _device(candidate) == "cpu"
    return {(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}[(base_cpu, cand_cpu)]


def comparison_pairs(speedups: pd.DataFrame, several_machines: bool | None = None) -> list[tuple[str, pd.DataFrame]]:
    """Comparisons in reading priority: accelerator against accelerator first, then accelerator
    against cpu, cpu against cpu; within that across machines before within one machine, and
    larger comparisons first. `several_machines`: name the machine of a device comparison (by
    default when the speed-ups span several)."""
    frame = speedups[speedups["axis"].isin(COMPARISON_AXES)] if not speedups.empty else speedups
    if frame.empty:
        return []
    if several_machines is None:
        several_machines = speedups["machine"].nunique() > 1
    pairs = []
    for (axis, machine, baseline, candidate), group in frame.groupby(
        ["axis", "machine", "baseline", "candidate"], sort=True
    ):
        if axis == MACHINE_AXIS:
            continue
        name = f"{machine}: {candidate} vs {baseline}" if several_machines else f"{candidate} vs {baseline}"
        pairs.append((interest(baseline, candidate), 1, -len(group), name, group))
    for (baseline, candidate), group in frame[frame["axis"] == MACHINE_AXIS].groupby(["baseline", "candidate"]):
        pairs.append((interest(baseline, candidate), 0, -len(group), f"{candidate} vs {baseline}", group))
    return [(p[3], p[4]) for p in sorted(pairs, key=lambda p: p[:4])]


def other_pairs(speedups: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Comparisons of variants, dtypes and torch versions (one machine and device each), for a
    study without a device comparison: largest first within each axis."""
    pairs = []
    for rank, axis in enumerate(OTHER_AXES):
        frame = speedups[speedups["axis"] == axis] if not speedups.empty else speedups
        for (machine, device, baseline, candidate), group in frame.groupby(
            ["machine", "device", "baseline", "candidate"], sort=True
        ):
            pairs.append((rank, -len(group), f"{candidate} vs {baseline}", group))
    return [(p[2], p[3]) for p in sorted(pairs, key=lambda p: p[:3])]


def _label(value: str, axis: str) -> str:
    return f"torch {value}" if axis == "torch_requested" else value


def headline(group: pd.DataFrame, varying: set[str], several_machines: bool, confidence: float) -> str:
    """Best cell of a comparison, plus its median and range over all cells."""
    best = group.sort_values(["speedup", "model"], ascending=[False, True]).iloc[0]
    axis = best["axis"]
    varying = varying - {axis}
    where = f"On {best['machine']}, " if several_machines and axis != MACHINE_AXIS else ""
    if axis in OTHER_AXES and best["device"] != "cpu":
        where = where or f"On {best['device']}, "
    candidate, baseline = _label(best["candidate"], axis), _label(best["baseline"], axis)
    if len(group) > 1 and group["speedup"].median() < 1 <= best["speedup"]:
        text = mostly_slower(group, best, candidate, baseline, varying, confidence)
        return where + text if where else text[0].upper() + text[1:]
    if best["speedup"] >= 1:
        text = (f"{where}{candidate} is {ratio_in_sentence(best['speedup'], best['ci_low'], best['ci_high'])} faster than {baseline} for "
                f"{_cell(best, varying)} ({confidence_interval(best['ci_low'], best['ci_high'], confidence)})")
    else:  # slower everywhere: say by how much at best
        text = (f"{where}{candidate} is slower than {baseline} in every cell; at best "
                f"{ratio_in_sentence(1 / best['speedup'], 1 / best['ci_high'], 1 / best['ci_low'])} slower, for {_cell(best, varying)} "
                f"({confidence_interval(1 / best['ci_high'], 1 / best['ci_low'], confidence)})")
    if len(group) > 1:
        text += (f"; over all {len(group)} cells the median speed-up is {times(group['speedup'].median())} "
                 f"(range {times(group['speedup'].min())} to {times(group['speedup'].max())})")
    return text + "."


def mostly_slower(group: pd.DataFrame, best: pd.Series, candidate: str, baseline: str, varying: set[str],
                  confidence: float) -> str:
    """A candidate slower in most cells is not led with its one best cell, which a reader would
    take for the answer: the majority first, then the cells where the candidate is clearly faster."""
    faster = int((group["significant"] & (group["speedup"] > 1)).sum())
    slower = int((group["significant"] & (group["speedup"] < 1)).sum())
    lead = (f"{baseline} is faster than {candidate} in {slower} of {len(group)} cells" if slower
            else f"{candidate} is slower than {baseline} in most cells, in none clearly")
    text = (f"{lead} (median speed-up of {candidate} {times(group['speedup'].median())}, range "
            f"{times(group['speedup'].min())} to {times(group['speedup'].max())}); ")
    best_cell = (f"{_cell(best, varying)}: {ratio_in_sentence(best['speedup'], best['ci_low'], best['ci_high'])} "
                 f"({confidence_interval(best['ci_low'], best['ci_high'], confidence)})")
    if faster:
        text += f"{candidate} is faster in {faster}, {'most ' if faster > 1 else ''}for {best_cell}"
    else:
        text += f"in no cell is {candidate} clearly faster (at best {best_cell})"
    unclear = len(group) - faster - slower
    if unclear:
        text += f"; {unclear} cannot tell them apart"
    return text + "."


def exceptions(pairs: list[tuple[str, pd.DataFrame]], varying: set[str], confidence: float) -> str | None:
    """Cells where a usually faster candidate is significantly slower: the surprise to report."""
    losses = []
    for name, group in pairs:
        if group["speedup"].median() <= 1:
            continue
        slower = group[group["significant"] & (group["speedup"] < 1)]
        losses.extend((name, len(group), row) for _, row in slower.iterrows())
    if not losses:
        return None
    name, total, worst = min(losses, key=lambda item: item[2]["speedup"])
    count = sum(1 for n, _, _ in losses if n == name)
    return (f"Exception ({name}): {worst['candidate']} is slower than {worst['baseline']} in {count} of {total} "
            f"cells, most for {_cell(worst, varying)}: {ratio_in_sentence(1 / worst['speedup'], 1 / worst['ci_high'], 1 / worst['ci_low'])} slower "
            f"({confidence_interval(1 / worst['ci_high'], 1 / worst['ci_low'], confidence)}).")


def batch_trend(name: str, group: pd.DataFrame) -> str | None:
    """How the median speed-up of a comparison moves with the batch size."""
    medians = group.groupby("batch_size")["speedup"].median().sort_index()
    if len(medians) < 2:
        return None
    first, last = medians.iloc[0], medians.iloc[-1]
    if last > first * TREND_TOLERANCE:
        verb = "grows"
    elif first > last * TREND_TOLERANCE:
        verb = "shrinks"
    else:
        verb = "stays about the same"
    steps = ", ".join(f"{times(v)} at batch {b}" for b, v in medians.items())
    return f"The {name} speed-up {verb} with the batch size (median over cells: {steps})."


def scaling(speedups: pd.DataFrame, confidence: float, token_models: frozenset = frozenset()) -> str | None:
    """For a one-device study: the strongest batch-size scaling whose interval excludes 1 (token
    models: in sequences/s); None when no batch size is clearly faster."""
    frame = speedups[(speedups["axis"] == "batch_size") & speedups["significant"]] if not speedups.empty else speedups
    if frame.empty:
        return None
    row = frame.sort_values(["speedup", "model"], ascending=[False, True]).iloc[0]
    return (f"On {row['device']}, {row['model']} {MODE_WORDS.get(row['mode'], row['mode'])} processes "
            f"{ratio_in_sentence(row['speedup'], row['ci_low'], row['ci_high'])} more {'sequences' if row['model'] in token_models else 'images'}/s at batch {row['candidate']} than at batch {row['baseline']} "
            f"({confidence_interval(row['ci_low'], row['ci_high'], confidence)}).")


# -- why a study has no device comparison, and what to do next ---------------------------------

def _ok(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[cells["status"] == "ok"] if len(cells) else cells


def absent_devices(cells: pd.DataFrame) -> pd.DataFrame:
    """(machine, device, cells, reason) of every device none of whose cells could run because
    the device is not there (every cell `unavailable`): the first thing a reader must know."""
    if cells.empty:
        return pd.DataFrame(columns=["machine", "device", "cells", "reason"])
    rows = []
    for (machine, device), group in cells.groupby(["machine", "device"], sort=True):
        if (group["status"] == "unavailable").all():
            reasons = group["error"].dropna()
            rows.append({"machine": machine, "device": device, "cells": len(group),
                         "reason": str(reasons.iloc[0]) if len(reasons) else ""})
    return pd.DataFrame(rows, columns=["machine", "device", "cells", "reason"])


def _homes(devices: list[str]) -> str:
    return word_list([f"{DEVICE_HOMES.get(d, f'a machine with {d}')} ({d})" for d in devices], "or")


def _where(machine: str, local: str | None) -> str:
    return "this machine" if machine == local else f"machine {machine}"


def absent_note(absent: pd.DataFrame, local: str | None) -> list[str]:
    """Beside a comparison: one line per machine with devices that were not there."""
    lines = []
    for machine, group in absent.groupby("machine", sort=True):
        devices = list(group["device"])
        verb = "is" if len(devices) == 1 else "are"
        lines.append(f"{word_list(devices)} {verb} not on {_where(machine, local)} ({count(int(group['cells'].sum()), 'cell')} "
                     f"unavailable): run the study on {_homes(devices)} for {'its' if len(devices) == 1 else 'their'} figures.")
    return lines


def shipped_hint(shipped: Shipped | None, cells: pd.DataFrame, study: dict[str, Any]) -> str:
    """', or compare with the shipped H100 result set: add ...' (empty when the study has it)."""
    if shipped is None or shipped.path in study.get("include_results", []):
        return ""
    text = (f", or compare this machine with the shipped {shipped.label} result set by adding "
            f"`include_results: [{shipped.path}]` to the config")
    mine = {(m, int(b)) for m, b in zip(cells["model"], cells["batch_size"])}
    size = study.get("input_size")
    if not (mine & shipped.cells) or (shipped.input_size and size and size != shipped.input_size):
        # cells are compared across machines only where model and batch size are equal
        models = sorted({m for m, _ in shipped.cells}, key=lambda m: (m not in set(cells["model"]), m))
        batches = sorted({b for _, b in shipped.cells})
        shape = f"input_size {shipped.input_size}, " if shipped.input_size else ""
        named = word_list(models) if len(models) <= 3 else f"{', '.join(models[:3])}, …"
        text += f" and taking its cells ({shape}{named} at batch {word_list(batches, 'or')})"
    return text


def why_no_comparison(cells: pd.DataFrame, study: dict[str, Any], shipped: Shipped | None) -> str:
    """One sentence: why this study has no device comparison, and what to do next."""
    ok = _ok(cells)
    local = study.get("machine")
    if ok.empty:
        if cells.empty:
            return "No cell was planned, so there is nothing to compare: check the config's models and devices."
        groups = failure_groups(cells)
        first = groups.iloc[0]
        more = f" (1 of {len(groups)} under 'Cells that did not run')" if len(groups) > 1 else ""
        return (f"No cell ran, so there is nothing to compare; the first reason{more}, for "
                f"{count(int(first['cells']), first['device'] + ' cell')} ({first['status']}): "
                f"{escape_markdown(first['reason'].rstrip('.')) or 'no reason recorded'}.")
    ran = word_list(sorted(ok["device"].unique()))
    absent = absent_devices(cells)
    absent = absent[absent["machine"] == local] if local else absent
    configured = study.get("devices") or sorted(cells["device"].unique())
    if len(absent):
        devices = list(absent["device"])
        verb = "is" if len(devices) == 1 else "are"
        text = (f"No device comparison: {word_list(devices)} {verb} not on this machine "
                f"({count(int(absent['cells'].sum()), 'cell')} unavailable), so only {ran} ran: run this study on "
                f"{_homes(devices)}")
    elif len(configured) == 1:
        other = "mps" if configured[0] == "cpu" else "cpu"
        where = f" and run it on {_homes([other])}" if other in DEVICE_HOMES else ""
        text = (f"No device comparison: this study has one device ({configured[0]}); add {other} to `devices`{where} "
                "to compare")
    else:
        failed = cells[(cells["status"] != "ok") & ~cells["device"].isin(ok["device"])]
        devices = sorted(failed["device"].unique()) or sorted(set(configured) - set(ok["device"]))
        verb = "has" if len(devices) == 1 else "have"
        text = (f"No device comparison: {word_list(devices)} {verb} no cell that ran (reasons under 'Cells that "
                f"did not run'), so only {ran} ran: fix those cells first")
    return text + shipped_hint(shipped, cells, study) + "."


def device_figures(cells: pd.DataFrame) -> str | None:
    """What the device(s) that ran do, when there is nothing to compare them with: the one cell's
    throughput with its interval, or the slowest and fastest cell's."""
    ok = _ok(cells)
    if ok.empty:
        return None
    parts = []
    several = ok["machine"].nunique() > 1
    for (machine, device), group in ok.groupby(["machine", "device"], sort=True):
        device = f"{machine}/{device}" if several else device
        rows = group.sort_values(["items_per_s", "model"])
        if len(rows) == 1:
            parts.append(f"On {device}, {_figure(rows.iloc[0], with_cell=True)}")
        else:
            parts.append(f"On {device}, the {len(rows)} cells ran from {_figure(rows.iloc[0])} to {_figure(rows.iloc[-1])}")
    return "; ".join(parts) + "."


def _figure(row: pd.Series, with_cell: bool = False) -> str:
    """'52.3 images/s [51.0–53.6]' with the cell ('resnet18 training at batch 8'): throughput and
    its interval (from the step time's), with the digits the interval supports."""
    unit = "sequences" if row.get("input_kind") == "tokens" else "images"
    items = row["items_per_s"] * row["median_s"]  # items per step
    low, high = row.get("ci_high_s"), row.get("ci_low_s")
    if missing(low) or missing(high):
        shown = f"{row['items_per_s']:.1f} {unit}/s"
    else:
        value, lo, hi = figures(row["items_per_s"], items / low, items / high)
        shown = f"{value} {unit}/s [{lo}–{hi}]"
    if with_cell:
        return f"{_cell(row, set())} runs at {shown}"
    return f"{shown} ({_cell(row, set())})"


def status_lines(cells: pd.DataFrame, explained: int = 0) -> list[str]:
    """Cells that did not run (beyond the `explained` ones already named), cells short of their
    precision target, and noisy cells."""
    lines = []
    failed = cells[cells["status"] != "ok"]
    if len(failed) > explained:
        counts = ", ".join(f"{n} {s}" for s, n in failed["status"].value_counts().sort_index().items())
        if explained:
            lines.append(f"{len(failed) - explained} more of {len(cells)} cells did not run (in all: {counts}); "
                         "see 'Cells that did not run'.")
        else:
            lines.append(f"{len(failed)} of {len(cells)} cells did not run ({counts}); see 'Cells that did not run'.")
    short = short_of_precision(cells)
    if len(short):
        worst = short.iloc[0]
        lines.append(f"{len(short)} of {int((cells['status'] == 'ok').sum())} cells fell short of their precision target "
                     f"(the widest: {worst['model']} {worst['device']} {worst['mode']} batch {worst['batch_size']}, "
                     f"±{worst['precision']:.0%} for ±{worst['precision_target']:.0%} asked): figures involving "
                     "them are rough; see 'Speed-ups'.")
    noisy = cells[cells["noisy"].fillna(False).astype(bool)] if "noisy" in cells else cells.iloc[0:0]
    if len(noisy):
        verb, them = ("is", "it") if len(noisy) == 1 else ("are", "them")
        lines.append(f"{len(noisy)} of {int((cells['status'] == 'ok').sum())} cells {verb} noisy (coefficient of "
                     f"variation above the threshold); rerun {them} on a quiet machine.")
    return lines


def summary(
    cells: pd.DataFrame,
    speedups: pd.DataFrame,
    limit: int = 3,
    confidence: float = 0.95,
    study: dict[str, Any] | None = None,
    shipped: Shipped | None = None,
) -> list[str]:
    """The device answer first, then up to `limit` findings in all, then the status lines.

    With a device or machine comparison: the headlines of the first two comparisons, exceptions,
    the batch-size trend of the first comparison, the headlines of further comparisons, and a
    line for devices that were not there. Without: why not and what to do next (one sentence),
    the comparisons the study does make (variants, dtypes, torch versions), what the device that
    ran does, and its batch-size scaling. `study`: the study summary (its machine, devices,
    input size and include_results); `shipped`: a result set to suggest comparing with.
    """
    study = study or {}
    local = study.get("machine") or (cells["machine"].iloc[0] if len(cells) and cells["machine"].nunique() == 1 else None)
    several = bool(len(cells) and cells["machine"].nunique() > 1) or (
        not speedups.empty and speedups["machine"].nunique() > 1)
    pairs = comparison_pairs(speedups, several)
    varying = {k for k in CONTEXT_KEYS if not speedups.empty and speedups[k].nunique() > 1}
    candidates: list[str | None] = []
    explained = 0
    tail: list[str] = []
    if pairs:
        heads = [headline(group, varying, several, confidence) for _, group in pairs]
        candidates.extend(heads[:2])
        candidates.append(exceptions(pairs, varying, confidence))
        candidates.append(batch_trend(*pairs[0]))
        candidates.extend(heads[2:])
        absent = absent_devices(cells)
        tail = absent_note(absent, local)
        explained = int(absent["cells"].sum())
    else:
        others = other_pairs(speedups)
        heads = [headline(group, varying, False, confidence) for _, group in others]
        configured = study.get("devices") or (sorted(cells["device"].unique()) if len(cells) else [])
        if not heads or len(configured) > 1:
            candidates.append(why_no_comparison(cells, {**study, "machine": local}, shipped))
            absent = absent_devices(cells)
            explained = int(absent[absent["machine"] == local]["cells"].sum()) if local else int(absent["cells"].sum())
        candidates.extend(heads[:2])
        candidates.append(device_figures(cells) if not heads else None)
        tokens = cells[cells["input_kind"] == "tokens"]["model"] if "input_kind" in cells else []
        candidates.append(scaling(speedups, confidence, frozenset(tokens)))
        candidates.extend(heads[2:])
    chosen = [c for c in candidates if c][:limit]
    left = len([h for h in heads if h not in chosen])
    if left:
        chosen.append(f"{left} more comparison{'s' if left > 1 else ''} in 'Speed-ups' below.")
    return chosen + tail + status_lines(cells, explained)
