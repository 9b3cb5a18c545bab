"""The report's summary: the few sentences a reader needs, chosen and computed from the tables.

A reader asks, per comparison (m1max: mps vs cpu; h100/cuda vs m1max/mps): how much faster at
best, and typically? Are there cells where the "faster" device loses? Does the gap grow with the
batch size? Each sentence answers one of these with numbers straight from the speed-up table
(formatted like every table: 2 decimals), so a test can check each sentence against its row.
"""

from __future__ import annotations

import pandas as pd

from speedatlas.analyze.machine_axis import AXIS as MACHINE_AXIS
from speedatlas.present.formatting import confidence_interval, ratio_in_sentence, times

COMPARISON_AXES = (MACHINE_AXIS, "device")
CONTEXT_KEYS = ("workload", "torch_requested", "dtype", "variant")
CONTEXT_NAMES = {"torch_requested": "torch"}
MODE_WORDS = {"train": "training", "infer": "inference"}
TREND_TOLERANCE = 1.1  # medians within 10% of each other: the gap "stays about the same"


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


def comparison_pairs(speedups: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Comparisons in reading priority: accelerator against accelerator first, then accelerator
    against cpu, cpu against cpu; within that across machines before within one machine, and
    larger comparisons first."""
    frame = speedups[speedups["axis"].isin(COMPARISON_AXES)] if not speedups.empty else speedups
    if frame.empty:
        return []
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


def headline(group: pd.DataFrame, varying: set[str], several_machines: bool, confidence: float) -> str:
    """Best cell of a comparison, plus its median and range over all cells."""
    best = group.sort_values(["speedup", "model"], ascending=[False, True]).iloc[0]
    where = f"On {best['machine']}, " if several_machines and best["axis"] != MACHINE_AXIS else ""
    if best["speedup"] >= 1:
        text = (f"{where}{best['candidate']} is {ratio_in_sentence(best['speedup'], best['ci_low'], best['ci_high'])} faster than {best['baseline']} for "
                f"{_cell(best, varying)} ({confidence_interval(best['ci_low'], best['ci_high'], confidence)})")
    else:  # slower everywhere: say by how much at best
        text = (f"{where}{best['candidate']} is slower than {best['baseline']} in every cell; at best "
                f"{ratio_in_sentence(1 / best['speedup'], 1 / best['ci_high'], 1 / best['ci_low'])} slower, for {_cell(best, varying)} "
                f"({confidence_interval(1 / best['ci_high'], 1 / best['ci_low'], confidence)})")
    if len(group) > 1:
        text += (f"; over all {len(group)} cells the median speed-up is {times(group['speedup'].median())} "
                 f"(range {times(group['speedup'].min())} to {times(group['speedup'].max())})")
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
    """For a one-device study: the strongest batch-size scaling (token models: in sequences/s)."""
    frame = speedups[speedups["axis"] == "batch_size"] if not speedups.empty else speedups
    if frame.empty:
        return None
    row = frame.sort_values(["speedup", "model"], ascending=[False, True]).iloc[0]
    return (f"On {row['device']}, {row['model']} {MODE_WORDS.get(row['mode'], row['mode'])} processes "
            f"{ratio_in_sentence(row['speedup'], row['ci_low'], row['ci_high'])} more {'sequences' if row['model'] in token_models else 'images'}/s at batch {row['candidate']} than at batch {row['baseline']} "
            f"({confidence_interval(row['ci_low'], row['ci_high'], confidence)}).")


def status_lines(cells: pd.DataFrame) -> list[str]:
    """Cells that did not run and noisy cells: always reported."""
    lines = []
    failed = cells[cells["status"] != "ok"]
    if len(failed):
        counts = ", ".join(f"{n} {s}" for s, n in failed["status"].value_counts().sort_index().items())
        lines.append(f"{len(failed)} of {len(cells)} cells did not run ({counts}); see 'Cells that did not run'.")
    noisy = cells[cells["noisy"].fillna(False).astype(bool)]
    if len(noisy):
        verb, them = ("is", "it") if len(noisy) == 1 else ("are", "them")
        lines.append(f"{len(noisy)} of {int((cells['status'] == 'ok').sum())} cells {verb} noisy (coefficient of "
                     f"variation above the threshold); rerun {them} on a quiet machine.")
    return lines


def summary(cells: pd.DataFrame, speedups: pd.DataFrame, limit: int = 3, confidence: float = 0.95) -> list[str]:
    """Up to `limit` findings in priority order, then the status lines.

    Priority: the headline of the first two comparisons, exceptions, the batch-size trend of the
    first comparison, the headlines of further comparisons.
    """
    pairs = comparison_pairs(speedups)
    varying = {k for k in CONTEXT_KEYS if not speedups.empty and speedups[k].nunique() > 1}
    several = not speedups.empty and speedups["machine"].nunique() > 1
    candidates: list[str | None] = []
    heads = [headline(group, varying, several, confidence) for _, group in pairs]
    candidates.extend(heads[:2])
    candidates.append(exceptions(pairs, varying, confidence))
    if pairs:
        candidates.append(batch_trend(*pairs[0]))
    candidates.extend(heads[2:])
    if not pairs:
        tokens = cells[cells["input_kind"] == "tokens"]["model"] if "input_kind" in cells else []
        candidates.append(scaling(speedups, confidence, frozenset(tokens)))
    chosen = [c for c in candidates if c][:limit]
    left = len([h for h in heads if h not in chosen])
    if left:
        chosen.append(f"{left} more comparison{'s' if left > 1 else ''} in 'Speed-ups' below.")
    return chosen + status_lines(cells)
