"""Turn cell files into tidy tables: one row per cell, and speed-ups along each axis.

Orchestration side (pandas, pyarrow). Pure functions over DataFrames, so every number in the
report can be unit-tested without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from . import cellio, stats

# The columns that identify a cell (in the order of the cell path).
CELL_KEYS = (
    "machine",
    "workload",
    "torch_requested",
    "device",
    "model",
    "dtype",
    "mode",
    "variant",
    "batch_size",
)
# Cell-level columns copied to the per-cell table (same value on every row of a cell).
CELL_INFO = (
    "status",
    "error",
    "input_size",
    "steps_per_repeat",
    "warmup_steps",
    "threads",
    "torch_version",
    "torchvision_version",
    "torch_build",
    "device_name",
    "cpu_model",
    "os",
    "python",
    "host",
    "pipeline_commit",
    "mps_fallback",
    "peak_memory_bytes",
    "flops_per_step",
    "compile_time_s",
    "setup_s",
    "final_loss",
    "started_at",
    "finished_at",
)


class SchemaMismatch(ValueError):
    """A cell file does not follow workflow/schemas/cell.schema.json."""


def read_cells(paths: Iterable[str]) -> pd.DataFrame:
    """Read many cell files at once through pyarrow.dataset, checking each against the schema."""
    paths = list(paths)
    expected = cellio.arrow_schema()
    if not paths:
        return expected.empty_table().to_pandas()
    dataset = ds.dataset(paths, format="parquet", schema=expected)
    for fragment in dataset.get_fragments():
        actual = fragment.physical_schema
        missing = [name for name in expected.names if name not in actual.names]
        if missing:
            raise SchemaMismatch(f"{fragment.path}: missing columns {missing}")
    return dataset.to_table().to_pandas()


def summarize_cells(raw: pd.DataFrame, noise_cv: float = 0.1) -> pd.DataFrame:
    """One row per cell: status, median/IQR/min step time, throughput, noise flag, environment."""
    rows = []
    for key, group in raw.groupby(list(CELL_KEYS), sort=True, dropna=False):
        row: dict[str, Any] = dict(zip(CELL_KEYS, key))
        first = group.iloc[0]
        row.update({column: first[column] for column in CELL_INFO})
        times = group["step_time_s"].dropna().to_numpy()
        if first["status"] == "ok" and times.size:
            s = stats.summarize(times)
            row.update(
                n=s.n,
                median_s=s.median,
                q1_s=s.q1,
                q3_s=s.q3,
                iqr_s=s.iqr,
                min_s=s.min,
                mean_s=s.mean,
                cv=s.cv,
                items_per_s=items_per_step(group).iloc[0] / s.median,
                noisy=bool(s.cv > noise_cv),
            )
        else:
            row.update(n=0, noisy=False)
        rows.append(row)
    columns = [*CELL_KEYS, "status", "n", "median_s", "q1_s", "q3_s", "iqr_s", "min_s", "mean_s", "cv",
               "items_per_s", "noisy", *[c for c in CELL_INFO if c != "status"]]
    return pd.DataFrame(rows, columns=columns)


def items_per_step(rows: pd.DataFrame) -> pd.Series:
    """Images one step processes: the batch size, except in an epoch whose last batch is
    partial (mnist_epoch: 1000 images in 16 steps of up to 64), where it is images / steps."""
    items = rows["batch_size"].astype(float)
    if "images_per_epoch" in rows:
        epoch = rows["images_per_epoch"].notna() & rows["steps_per_repeat"].notna()
        items = items.where(~epoch, rows["images_per_epoch"] / rows["steps_per_repeat"])
    return items


def _per_item_samples(raw: pd.DataFrame) -> dict[tuple, np.ndarray]:
    ok = raw[(raw["status"] == "ok") & raw["step_time_s"].notna()]
    per_item = ok["step_time_s"] / items_per_step(ok)
    return {
        key: values.to_numpy()
        for key, values in per_item.groupby([ok[k] for k in CELL_KEYS], sort=True)
    }


BaselinePicker = Callable[[Sequence[Any]], Any]


def baseline_value(value: Any) -> BaselinePicker:
    """Pick a fixed baseline (a device, a torch version, a dtype) when it is present."""
    return lambda present: value if value in present else None


def smallest(present: Sequence[Any]) -> Any:
    return min(present)


def compare_along(
    raw: pd.DataFrame,
    axis: str,
    pick_baseline: BaselinePicker,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Speed-up of every value of `axis` over the group's baseline, all other keys equal.

    Compares time per item, so a batch-size comparison is a throughput ratio and a device
    comparison (same batch) is the ratio of step times. Only cells with status ok take part.
    """
    samples = _per_item_samples(raw)
    position = CELL_KEYS.index(axis)
    groups: dict[tuple, dict[Any, tuple]] = {}
    for key in samples:
        rest = key[:position] + key[position + 1 :]
        groups.setdefault(rest, {})[key[position]] = key
    pairs = []
    for rest, members in groups.items():
        base = pick_baseline(sorted(members))
        if base is None:
            continue
        pairs.extend((members[base], members[value]) for value in sorted(members) if value != base)

    columns = [*CELL_KEYS, "axis", "baseline", "candidate", "speedup", "ci_low", "ci_high",
               "baseline_median_s", "candidate_median_s", "baseline_items_per_s", "candidate_items_per_s",
               "n_baseline", "n_candidate", "significant"]
    if not pairs:
        return pd.DataFrame(columns=columns)
    # Stack pairs of equal sample counts, so the bootstrap runs vectorised.
    by_shape: dict[tuple[int, int], list[int]] = {}
    for index, (b, c) in enumerate(pairs):
        by_shape.setdefault((len(samples[b]), len(samples[c])), []).append(index)
    estimate = np.empty(len(pairs))
    low = np.empty(len(pairs))
    high = np.empty(len(pairs))
    for indices in by_shape.values():
        base = np.stack([samples[pairs[i][0]] for i in indices])
        cand = np.stack([samples[pairs[i][1]] for i in indices])
        e, lo, hi = stats.speedups_stacked(base, cand, confidence, resamples, seed)
        estimate[indices], low[indices], high[indices] = e, lo, hi

    rows = []
    for index, (b, c) in enumerate(pairs):
        row = dict(zip(CELL_KEYS, c))
        batch_b, batch_c = b[CELL_KEYS.index("batch_size")], c[CELL_KEYS.index("batch_size")]
        median_b, median_c = float(np.median(samples[b])), float(np.median(samples[c]))
        row.update(
            axis=axis,
            baseline=str(b[position]),
            candidate=str(c[position]),
            speedup=estimate[index],
            ci_low=low[index],
            ci_high=high[index],
            baseline_median_s=median_b * batch_b,
            candidate_median_s=median_c * batch_c,
            baseline_items_per_s=1 / median_b,
            candidate_items_per_s=1 / median_c,
            n_baseline=len(samples[b]),
            n_candidate=len(samples[c]),
            significant=bool(low[index] > 1 or high[index] < 1),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def speedup_table(
    raw: pd.DataFrame,
    baseline_device: str,
    baseline_torch: str,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """All comparisons of a study, one `axis` at a time.

    device: every device over `baseline_device`; torch: every version over `baseline_torch`;
    dtype: float16/bfloat16 over float32; variant: over eager; batch_size: throughput of each
    batch size over the smallest one (the speed-up a single-device study can still show).
    """
    axes = [
        ("device", baseline_value(baseline_device)),
        ("torch_requested", baseline_value(baseline_torch)),
        ("dtype", baseline_value("float32")),
        ("variant", baseline_value("eager")),
        ("batch_size", smallest),
    ]
    frames = [compare_along(raw, axis, pick, confidence, resamples, seed) for axis, pick in axes]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return compare_along(raw, "device", baseline_value(baseline_device))
    return pd.concat(frames, ignore_index=True)


def format_ratio(value: float, low: float, high: float) -> str:
    """'5.20× [4.90–5.50]' — the form used in every table and sentence of the report."""
    return f"{value:.2f}× [{low:.2f}–{high:.2f}]"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    if frame.empty:
        return "_(none)_\n"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join("" if pd.isna(v) else str(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body]) + "\n"
