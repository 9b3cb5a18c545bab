"""Statistics of raw timing samples: robust summaries and intervals.

Pure numpy. Medians rather than means because timing noise is one-sided (a preempted step is
slower, never faster). A cell of one process gets a bootstrap interval of its median (how
precise that process's median is); a cell of several processes gets a rerun interval (where a
rerun of the cell should land, from the spread between its processes). Speed-ups are ratios of
draws of both sides, so a speed-up of 5.2x comes with how sure we are of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    q1: float
    q3: float
    min: float
    mean: float
    cv: float  # sample standard deviation / mean

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def summarize(samples: np.ndarray) -> Summary:
    """Median, quartiles, minimum and coefficient of variation of positive samples."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("timing samples must be finite and positive")
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    mean = float(x.mean())
    cv = float(x.std(ddof=1) / mean) if x.size > 1 else 0.0
    return Summary(int(x.size), float(median), float(q1), float(q3), float(x.min()), mean, cv)


@dataclass(frozen=True)
class Ratio:
    estimate: float
    low: float
    high: float


def bootstrap_medians(
    samples: np.ndarray, resamples: int, rng: np.random.Generator, chunk: int = 1024
) -> np.ndarray:
    """Medians of `resamples` resamples (with replacement) of each row of `samples` (C, n).

    Returns (C, resamples). Computed once per cell and reused by every comparison the cell
    takes part in (a cell is baseline or candidate along several axes).

    Exact without drawing n indices per resample: with the row sorted, a resample's median is
    the mean of the sorted values at the middle order statistics of n uniform indices, and the
    j-th order statistic of n uniforms on [0, 1) is Beta(j, n - j + 1); the next one is that
    plus (1 - it) * Beta(1, n - j). Flooring n * U gives the index (floor is monotone). Two
    draws per resample instead of n draws and a partition: 10,000 cells take about a second.
    """
    x = np.sort(np.asarray(samples, dtype=float), axis=1)
    cells, n = x.shape
    if n == 0:
        raise ValueError("no samples to resample")
    out = np.empty((cells, resamples))
    middle = (n + 1) // 2  # 1-based rank of the (lower) middle order statistic
    for start in range(0, cells, chunk):
        block = x[start : start + chunk]
        lower = rng.beta(middle, n - middle + 1, size=(len(block), resamples))
        medians = np.take_along_axis(block, _order_index(lower, n), axis=1)
        if n % 2 == 0:  # even n: np.median averages the two middle values
            upper = lower + (1 - lower) * (1 - rng.random((len(block), resamples)) ** (1 / (n - middle)))
            medians += np.take_along_axis(block, _order_index(upper, n), axis=1)
            medians /= 2
        out[start : start + chunk] = medians
    return out


def rerun_draws(log_medians: np.ndarray, pilot: int, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Estimates and rerun draws of cells measured in several processes.

    `log_medians` is (C, P): the log of each process's median per-item time, for C cells of P
    processes each, of which the first `pilot` are the pilot whose spread the cells' intervals
    use (the precision rule: speedatlas.measure.protocol.precision; for a fixed number of
    processes, pilot = P). A cell's estimate is the mean of its log medians (the geometric mean
    of its processes' medians); a rerun of the cell in P new processes lands at
    estimate * exp(scale * T), T Student's t with pilot - 1 degrees of freedom and scale
    = s * sqrt(2 / P), s the pilot's spread: the classical prediction interval of a mean, which
    Stein's two-stage rule keeps exact although P was chosen from s. Returns the estimates (C,)
    and the draws (C, resamples), from which speed-ups take ratios (both sides' uncertainty).
    """
    log_medians = np.asarray(log_medians, dtype=float)
    cells, processes = log_medians.shape
    if not 2 <= pilot <= processes:
        raise ValueError(f"a rerun interval needs a pilot of 2 to {processes} processes, not {pilot}")
    center = log_medians.mean(axis=1)
    scale = log_medians[:, :pilot].std(axis=1, ddof=1) * np.sqrt(2.0 / processes)
    # clipped far beyond any percentile read from it: with a pilot of 2, t has 1 degree of
    # freedom (a Cauchy law), whose rare huge draws would overflow exp
    t = np.clip(rng.standard_t(pilot - 1, size=(cells, resamples)), -1e6, 1e6)
    return np.exp(center), np.exp(center[:, None] + np.clip(scale[:, None] * t, -50, 50))


def _order_index(uniform: np.ndarray, n: int) -> np.ndarray:
    return np.minimum((uniform * n).astype(np.intp), n - 1)


def ratio_interval(
    baseline_medians: np.ndarray, candidate_medians: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of baseline/candidate from bootstrap medians (P, B) each."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(baseline_medians / candidate_medians, [tail, 100 - tail], axis=1)
    return low, high


def speedup(
    baseline: np.ndarray,
    candidate: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Ratio:
    """median(baseline) / median(candidate) with a percentile bootstrap interval.

    Both sample sets are resampled independently (they come from independent runs). Values
    above 1 mean the candidate is faster. Seeded, so tables are reproducible bit for bit.
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    low, high = ratio_interval(
        bootstrap_medians(base[None, :], resamples, rng), bootstrap_medians(cand[None, :], resamples, rng), confidence
    )
    return Ratio(float(np.median(base) / np.median(cand)), float(low[0]), float(high[0]))
