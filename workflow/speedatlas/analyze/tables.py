"""Turn cell files into tidy tables: one row per cell, and speed-ups along each axis.

Orchestration side (pandas, pyarrow). Pure functions over DataFrames, so every number in the
report can be unit-tested without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from speedatlas import cellkey
from speedatlas.analyze import multiprocess, neighbours, stats
from speedatlas.measure import cellio

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
    "lock_wait_s",
    "launcher",
    "final_loss",
    "started_at",
    "finished_at",
    "concurrency",
    "gpu_index",
    "gpu_uuid",
    "cpu_affinity",
    "model_source",
    "input_kind",
    "vocab_size",
    # Mac/mps truthfulness (issue 13): all optional, nulls in older cell files
    "compute_dtype",
    "cpu_fallback_ops",
    "mps_driver_allocated_bytes",
    "mps_recommended_max_bytes",
    "mps_over_recommended",
    "cpu_performance_cores",
    "cpu_efficiency_cores",
    "power_source",
    "low_power_mode",
    "thermal_state",
    "pytorch_mps_env",
    # the precision rule and the sources of variance (issue 23): nulls in older cell files
    "precision_target",
    "pilot_processes",
    "planned_processes",
    "wanted_processes",
    "precision_limited_by",
    "warmup_steps_run",
    "gc_disabled",
    "host_cpu",
    "cpu_governor",
    "cudnn_benchmark",
    # which timing protocol measured the cell (a study may include cells of an older one)
    "protocol",
)


# What the tables are built from: the cell keys and information, the samples, and what turns
# a step into images (epochs). Reading only these is a fifth less work over 10,000 files.
AGGREGATE_COLUMNS = (*cellkey.KEY_COLUMNS, *CELL_INFO, "step_time_s", "images_per_epoch", *multiprocess.AGGREGATE_COLUMNS)


class SchemaMismatch(ValueError):
    """A cell file does not follow workflow/schemas/cell.schema.json; the message names it."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# The column read_cell_files adds: which of the paths a row came from.
FILE_COLUMN = "_file"


def read_cells(paths: Iterable[str], columns: Sequence[str] | None = None, threads: int = 2) -> pd.DataFrame:
    """Read many cell files, checking each against the schema, into one DataFrame.

    Raises for the first file that cannot be read (speedatlas.plan.quarantine.UnreadableCell) or
    does not follow the schema (SchemaMismatch), naming it; read_cell_files collects them all.
    """
    paths = list(paths)
    raw, bad = read_cell_files(paths, columns, threads)
    if bad:
        raise bad[0]
    return raw.drop(columns=FILE_COLUMN)


def read_cell_files(
    paths: Sequence[str], columns: Sequence[str] | None = None, threads: int = 2
) -> tuple[pd.DataFrame, list[ValueError]]:
    """The rows of every readable cell file (column `_file`: the index of its path in `paths`),
    and, for each file that is not, why (UnreadableCell or SchemaMismatch, naming it).

    Each file is read by `pyarrow.parquet.ParquetFile` on a small thread pool (the reads run in
    C++ and release the GIL). A `pyarrow.dataset` scan of the same 10,368 files took 9.7 s on
    the 2-core machine against 6.8 s here: a scan cannot see which columns a file lacks, so the
    schema check had to open every file a second time; here each file's schema comes with it.
    `columns` reads only those (the aggregation needs 36 of 49). Files written before an
    optional column existed read as nulls there; columns the schema does not know are dropped.
    A file without rows is not a cell (SchemaMismatch).
    """
    expected = cellio.arrow_schema()
    if columns is not None:
        expected = pa.schema([expected.field(name) for name in columns])
    required = cellio.required_columns()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(lambda path: _read_cell_file(path, required, expected.names), paths))
    bad = [part for part in parts if isinstance(part, ValueError)]
    good = [(index, part) for index, part in enumerate(parts) if not isinstance(part, ValueError)]
    mistyped = _type_mismatches([part.schema for _, part in good], expected)
    if mistyped:
        bad += [SchemaMismatch(paths[i], mistyped[part.schema]) for i, part in good if part.schema in mistyped]
        good = [(i, part) for i, part in good if part.schema not in mistyped]
    bad.sort(key=lambda error: paths.index(error.path))
    schema = pa.schema([*expected, pa.field(FILE_COLUMN, pa.int32())])
    if not good:
        return schema.empty_table().to_pandas(), bad
    files = np.repeat(np.array([i for i, _ in good], dtype=np.int32), [len(part) for _, part in good])
    same = all(part.schema.equals(good[0][1].schema) for _, part in good)  # the usual case: no promotion
    table = pa.concat_tables([part for _, part in good], promote_options="none" if same else "permissive")
    table = table.combine_chunks().append_column(FILE_COLUMN, pa.array(files))
    del parts, good
    arrays = [
        table[field.name].cast(field.type) if field.name in table.column_names else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema).to_pandas(), bad


def _read_cell_file(path: str, required: Sequence[str], wanted: Sequence[str]) -> pa.Table | ValueError:
    """The file's wanted columns, or the error that names it (returned: one bad file among
    thousands must not hide the others)."""
    from speedatlas.plan.quarantine import UnreadableCell

    try:
        file = pq.ParquetFile(path, memory_map=True)
        present = set(file.schema_arrow.names)  # a property that converts the schema on every access
        missing = [name for name in required if name not in present]
        if missing:
            return SchemaMismatch(path, f"missing columns {missing}")
        if file.metadata.num_rows == 0:
            return SchemaMismatch(path, "no rows: a cell file holds at least one")
        return file.read(columns=[name for name in wanted if name in present], use_threads=False)
    except (pa.ArrowException, OSError) as error:  # a damaged file: name it (speedatlas.plan.quarantine)
        return UnreadableCell(path, f"{type(error).__name__}: {error}")


def _type_mismatches(schemas: Sequence[pa.Schema], expected: pa.Schema) -> dict[pa.Schema, str]:
    """{schema: why} for each distinct file schema with a column whose type the cell schema
    cannot take (all-null columns aside). Files written by one pipeline share one schema, so this
    looks at a handful of schemas, not at every file."""
    found = {}
    for schema in set(schemas):
        for field in schema:
            if field.name in expected.names and not field.type.equals(expected.field(field.name).type):
                if not pa.types.is_null(field.type):
                    found[schema] = (f"column {field.name!r} is {field.type}, the cell schema says "
                                     f"{expected.field(field.name).type}")
                    break
    return found


def summarize_cells(raw: pd.DataFrame, noise_cv: float = 0.1, host_bound_share: float = 0.9) -> pd.DataFrame:
    """One row per cell: status, median/IQR/min step time, throughput, noise flag, environment.

    Vectorised groupby (no Python loop over cells): ten thousand cells summarise in a second.
    """
    keys = list(cellkey.KEY_COLUMNS)
    columns = [*cellkey.KEY_COLUMNS, "status", "n", "median_s", "q1_s", "q3_s", "iqr_s", "min_s", "mean_s", "cv",
               "items_per_s", "tokens_per_s", "noisy", *[c for c in CELL_INFO if c != "status"],
               *multiprocess.CELL_COLUMNS, "neighbours_busy"]
    if raw.empty:
        return pd.DataFrame(columns=columns)
    first_rows = raw.drop_duplicates(keys)
    info = first_rows[[*keys, *CELL_INFO]].assign(_items=items_per_step(first_rows).to_numpy())
    ok = raw[(raw["status"] == "ok") & raw["step_time_s"].notna()]
    times = ok["step_time_s"].to_numpy(dtype=float)
    if not np.all(np.isfinite(times)) or np.any(times <= 0):
        bad = ok[~(np.isfinite(times) & (times > 0))].iloc[0]
        raise ValueError(f"timing samples must be finite and positive: {dict(bad[keys])}")
    grouped = ok.groupby(keys, sort=False)["step_time_s"]
    summary = pd.DataFrame(
        {
            "n": grouped.size(),
            "median_s": grouped.median(),
            "q1_s": grouped.quantile(0.25),
            "q3_s": grouped.quantile(0.75),
            "min_s": grouped.min(),
            "mean_s": grouped.mean(),
            "cv": (grouped.std(ddof=1) / grouped.mean()).fillna(0.0),
        }
    ).reset_index()
    cells = info.merge(summary, on=keys, how="left")
    cells["n"] = cells["n"].fillna(0).astype(int)
    cells = multiprocess.add_cell_columns(cells, ok, keys, host_bound_share)
    cells["iqr_s"] = cells["q3_s"] - cells["q1_s"]
    cells["items_per_s"] = cells.pop("_items") / cells["median_s"]
    # token inputs: items are sequences of input_size tokens (input_kind is null in older files)
    cells["tokens_per_s"] = (cells["items_per_s"] * cells["input_size"]).where(cells["input_kind"] == "tokens")
    cells["noisy"] = (cells["cv"] > noise_cv).fillna(False).astype(bool)
    # timed regions per process: a cell's processes run in rounds across the study, so the span
    # from its first process to its last covers every other cell's and says nothing about neighbours
    regions = raw.assign(process=multiprocess.process_ids(raw))
    spans = regions.groupby([*keys, "process"], sort=False, dropna=False).agg(
        started_at=("started_at", "min"), finished_at=("finished_at", "max")).reset_index()
    spans["busy"] = neighbours.neighbours_busy(spans).to_numpy()
    busiest = spans.groupby(keys, sort=False, dropna=False)["busy"].max().reset_index()
    cells["neighbours_busy"] = cells[keys].merge(busiest, on=keys, how="left")["busy"].astype("Int64").to_numpy()
    return cells.sort_values(keys, ignore_index=True)[columns]


class Samples:
    """Per-item times of every ok cell, and their bootstrap medians, computed once per study.

    A cell is compared along several axes (device, torch, dtype, variant, batch); resampling it
    once and reusing the replicate medians in every comparison keeps the intervals exact (the
    two sides of a comparison are still independent resamples) and the cost linear in cells.
    """

    def __init__(self, raw: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> None:
        keys = list(cellkey.KEY_COLUMNS)
        ok = raw[(raw["status"] == "ok") & raw["step_time_s"].notna()].sort_values(keys, kind="stable")
        per_item = (ok["step_time_s"] / items_per_step(ok)).to_numpy(dtype=float)
        codes = ok.groupby(keys, sort=False).ngroup().to_numpy()
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.array([], int)
        self.keys: list[tuple] = list(ok[keys].iloc[starts].itertuples(index=False, name=None))
        arrays = np.split(per_item, starts[1:]) if len(starts) else []
        self.values: dict[tuple, np.ndarray] = dict(zip(self.keys, arrays))
        ids = np.split(multiprocess.process_ids(ok), starts[1:]) if len(starts) else []
        several = {key: p for key, p in zip(self.keys, ids) if multiprocess.is_multiprocess(p)}
        self.medians: dict[tuple, float] = {}
        self.boot: dict[tuple, np.ndarray] = {}
        self.spreads: dict[tuple, tuple[float, int]] = {}
        rng = np.random.default_rng(seed)
        by_size: dict[int, list[tuple]] = {}
        for key, values in self.values.items():
            if key not in several:  # one process: the exact single-level bootstrap, as before
                by_size.setdefault(len(values), []).append(key)
        for size, members in sorted(by_size.items()):
            block = np.stack([self.values[k] for k in members])
            self.medians.update(zip(members, np.median(block, axis=1).tolist()))
            self.boot.update(zip(members, stats.bootstrap_medians(block, resamples, rng)))
        if several:  # samples from several processes: where a rerun should land
            pilots = {}
            if "pilot_processes" in ok:
                first = ok["pilot_processes"].to_numpy()[starts]
                pilots = {key: int(p) for key, p in zip(self.keys, first) if key in several and not pd.isna(p)}
            medians, boot, self.spreads = multiprocess.multiprocess_draws(
                {k: self.values[k] for k in several}, several, pilots, resamples, rng
            )
            self.medians.update(medians)
            self.boot.update(boot)

    def intervals(self, confidence: float) -> pd.DataFrame:
        """Each ok cell's interval of its per-item time (low, high) and the relative precision
        it reaches, exp(half-width) - 1: closed form (Student's t) for a cell of several
        processes, the bootstrap's percentiles for a cell of one."""
        from speedatlas.measure.protocol.precision import relative, t_quantile

        rows = []
        tail = (1 - confidence) / 2 * 100
        for key in self.keys:
            median = self.medians[key]
            if key in self.spreads:
                scale, df = self.spreads[key]
                half = t_quantile(0.5 + confidence / 2, df) * scale
                low, high = median * np.exp(-half), median * np.exp(half)
            else:
                low, high = np.percentile(self.boot[key], [tail, 100 - tail])
                half = 0.5 * np.log(high / low) if low > 0 else np.nan
            rows.append((*key, low, high, relative(half)))
        return pd.DataFrame(rows, columns=[*cellkey.KEY_COLUMNS, "_low_item", "_high_item", "precision"])


INTERVAL_COLUMNS = ("ci_low_s", "ci_high_s", "precision", "precision_met")


def add_intervals(cells: pd.DataFrame, samples: Samples, confidence: float) -> pd.DataFrame:
    """Each ok cell's interval of its median step time (ci_low_s, ci_high_s), the relative
    precision it reaches and whether that meets the cell's precision target (true where it had
    none). Cells that did not run get nulls."""
    intervals = samples.intervals(confidence)
    out = cells.drop(columns=[c for c in INTERVAL_COLUMNS if c in cells]).merge(
        intervals, on=list(cellkey.KEY_COLUMNS), how="left")
    per_item = pd.Series([samples.medians.get(tuple(key)) for key in out[list(cellkey.KEY_COLUMNS)].itertuples(index=False)],
                         index=out.index, dtype=float)
    out["ci_low_s"] = out["median_s"] * out.pop("_low_item") / per_item
    out["ci_high_s"] = out["median_s"] * out.pop("_high_item") / per_item
    target = out["precision_target"] if "precision_target" in out else pd.Series(np.nan, index=out.index)
    met = target.isna() | (out["precision"] <= target * (1 + 1e-9))
    out["precision_met"] = met.where(out["precision"].notna(), None)
    return out


def items_per_step(rows: pd.DataFrame) -> pd.Series:
    """Images one step processes: the batch size, except in an epoch whose last batch is
    partial (mnist_epoch: 1000 images in 16 steps of up to 64), where it is images / steps."""
    items = rows["batch_size"].astype(float)
    if "images_per_epoch" in rows:
        epoch = rows["images_per_epoch"].notna() & rows["steps_per_repeat"].notna()
        items = items.where(~epoch, rows["images_per_epoch"] / rows["steps_per_repeat"])
    return items


BaselinePicker = Callable[[Sequence[Any]], Any]


def baseline_value(value: Any) -> BaselinePicker:
    """Pick a fixed baseline (a device, a torch version, a dtype) when it is present."""
    return lambda present: value if value in present else None


def smallest(present: Sequence[Any]) -> Any:
    return min(present)


SPEEDUP_COLUMNS = [*cellkey.KEY_COLUMNS, "axis", "baseline", "candidate", "speedup", "ci_low", "ci_high",
                   "baseline_median_s", "candidate_median_s", "baseline_items_per_s", "candidate_items_per_s",
                   "n_baseline", "n_candidate", "significant"]


def compare_along(
    raw: pd.DataFrame,
    axis: str,
    pick_baseline: BaselinePicker,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    samples: Samples | None = None,
    chunk: int = 1024,
) -> pd.DataFrame:
    """Speed-up of every value of `axis` over the group's baseline, all other keys equal.

    Compares time per item, so a batch-size comparison is a throughput ratio and a device
    comparison (same batch) is the ratio of step times. Only cells with status ok take part.
    """
    samples = samples if samples is not None else Samples(raw, resamples, seed)
    position = cellkey.KEY_COLUMNS.index(axis)
    groups: dict[tuple, dict[Any, tuple]] = {}
    for key in samples.keys:
        rest = key[:position] + key[position + 1 :]
        groups.setdefault(rest, {})[key[position]] = key
    pairs = []
    for members in groups.values():
        base = pick_baseline(sorted(members))
        if base is None:
            continue
        pairs.extend((members[base], members[value]) for value in sorted(members) if value != base)
    if not pairs:
        return pd.DataFrame(columns=SPEEDUP_COLUMNS)

    low = np.empty(len(pairs))
    high = np.empty(len(pairs))
    for start in range(0, len(pairs), chunk):
        block = pairs[start : start + chunk]
        lo, hi = stats.ratio_interval(
            np.stack([samples.boot[b] for b, _ in block]), np.stack([samples.boot[c] for _, c in block]), confidence
        )
        low[start : start + chunk], high[start : start + chunk] = lo, hi

    batch = cellkey.KEY_COLUMNS.index("batch_size")
    rows = []
    for index, (b, c) in enumerate(pairs):
        median_b, median_c = samples.medians[b], samples.medians[c]
        row = dict(zip(cellkey.KEY_COLUMNS, c))
        row.update(
            axis=axis,
            baseline=str(b[position]),
            candidate=str(c[position]),
            speedup=median_b / median_c,
            ci_low=low[index],
            ci_high=high[index],
            baseline_median_s=median_b * b[batch],
            candidate_median_s=median_c * c[batch],
            baseline_items_per_s=1 / median_b,
            candidate_items_per_s=1 / median_c,
            n_baseline=len(samples.values[b]),
            n_candidate=len(samples.values[c]),
            significant=bool(low[index] > 1 or high[index] < 1),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=SPEEDUP_COLUMNS)


def speedup_table(
    raw: pd.DataFrame,
    baseline_device: str,
    baseline_torch: str,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    samples: Samples | None = None,
) -> pd.DataFrame:
    """All comparisons of a study, one `axis` at a time (`samples`: the study's, when already made).

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
    samples = samples if samples is not None else Samples(raw, resamples, seed)
    frames = [compare_along(raw, axis, pick, confidence, resamples, seed, samples) for axis, pick in axes]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=SPEEDUP_COLUMNS)
    return pd.concat(frames, ignore_index=True)
