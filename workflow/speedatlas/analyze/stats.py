"""Statistics of raw timing samples: robust summaries and bootstrap intervals.

Pure numpy. Medians rather than means because timing noise is one-sided (a preempted step is
slower, never faster); intervals from resampling the raw samples, so a speed-up of 5.2x comes
with how sure we are of it.
"""

from __future__ import annotations

import math
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


def bootstrap_process_medians(
    samples: np.ndarray, resamples: int, rng: np.random.Generator, chunk: int = 256
) -> np.ndarray:
    """Two-level bootstrap of cells measured in several processes: `samples` is (C, P, n),
    n samples from each of P processes. Returns (C, resamples).

    One resample draws P processes with replacement, then, inside each drawn process, n of its
    samples with replacement; its statistic is the mean of those P resampled medians (what
    `process_center` computes on the data). Drawing the processes is what lets the interval
    include the between-process variation that one process's samples cannot show: on a lent
    H100 a host-bound cell's median moved 1.5x between fresh processes while its samples in
    one process spread by a few percent (issue 14).

    Exact and cheap: the median of n values resampled from a sorted row is (x[i] + x[j]) / 2
    for the pair of middle order statistics (i, j) of n uniform indices, whose joint law
    depends on n alone (`_median_pair_law`). Each (resample, drawn process) is one draw, by
    Walker's alias method, of the process and the pair together: one uniform, where the
    single-level shortcut needs a Beta variate (and for even n a uniform and a power).
    """
    x = np.sort(np.asarray(samples, dtype=float), axis=2)
    cells, processes, n = x.shape
    if n == 0 or processes == 0:
        raise ValueError("no samples to resample")
    # One alias table over (process, pair): outcome o = process * K + pair, so one uniform
    # gives the column (its integer part) and the alias coin (its fraction; 53-bit doubles
    # leave over 30 bits for it at any practical P * K)
    probability, alias = _alias_table(_median_pair_law(n))
    outcomes = len(probability)
    offsets = np.repeat(np.arange(processes) * outcomes, outcomes)
    probability, alias = np.tile(probability, processes), np.tile(alias, processes) + offsets
    pair_lower, pair_upper = np.divmod(np.tile(np.arange(outcomes), processes), n)
    start_of_process = np.repeat(np.arange(processes) * n, outcomes)
    lower_at, upper_at = start_of_process + pair_lower, start_of_process + pair_upper
    columns = processes * outcomes
    out = np.empty((cells, resamples))
    for start in range(0, cells, chunk):
        block = x[start : start + chunk].reshape(-1, processes * n)
        u = rng.random((len(block), resamples * processes)) * columns
        column = np.minimum(u.astype(np.intp), columns - 1)
        outcome = np.where(u - column < probability[column], column, alias[column])
        medians = np.take_along_axis(block, lower_at[outcome], axis=1)
        if n % 2 == 0:
            medians += np.take_along_axis(block, upper_at[outcome], axis=1)
            medians /= 2
        out[start : start + chunk] = medians.reshape(len(block), resamples, processes).mean(axis=2)
    return out


def _median_pair_law(n: int) -> np.ndarray:
    """P(I = i, J = j) as an (n * n,) array: I, J the order statistics of ranks (n+1)//2 and
    n//2 + 1 of n indices drawn uniformly from 0..n-1 (I = J for odd n). The resampled median
    of a sorted row x is then (x[I] + x[J]) / 2, as np.median computes it.

    Odd n: P(I <= k) = P(Binomial(n, (k+1)/n) >= m). Even n, m = n/2: for a < b,
    H(a, b) = P(I <= a, J >= b) = C(n, m) ((a+1)/n)^m ((n-b)/n)^(n-m) (exactly m draws at or
    below a, none strictly between, n-m at or above b); the joint pmf of i < j follows by
    differences of H, and P(I = J = i) = P(I = i) - the pairs with j > i.
    """
    m = (n + 1) // 2
    k = np.arange(n)
    q = (k + 1) / n
    below = np.array([sum(math.comb(n, c) * p**c * (1 - p) ** (n - c) for c in range(m, n + 1)) for p in q])
    p_lower = np.diff(np.r_[0.0, below])  # P(I = k)
    law = np.zeros((n, n))
    if n % 2:
        law[k, k] = p_lower
    else:
        def h(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            valid = (a >= 0) & (b <= n - 1) & (a < b)
            value = math.comb(n, m) * ((a + 1) / n) ** m * ((n - b) / n) ** (n - m)
            return np.where(valid, value, 0.0)

        i, j = np.meshgrid(k, k, indexing="ij")
        law = np.where(j > i, h(i, j) - h(i - 1, j) - h(i, j + 1) + h(i - 1, j + 1), 0.0)
        law[k, k] = p_lower - law.sum(axis=1)
    law = np.clip(law, 0.0, None).ravel()
    return law / law.sum()


def _alias_table(law: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of a discrete law: outcome = column if u < probability[column]
    else alias[column], column uniform."""
    size = len(law)
    scaled = law * size
    probability = np.ones(size)
    alias = np.arange(size)
    small = [i for i in range(size) if scaled[i] < 1.0]
    large = [i for i in range(size) if scaled[i] >= 1.0]
    while small and large:
        low, high = small.pop(), large.pop()
        probability[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return probability, alias


def bootstrap_ragged_process_medians(
    processes: list[np.ndarray], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """The two-level bootstrap of one cell whose processes have different sample counts
    (rare: e.g. a config changed between processes). Returns (resamples,)."""
    count = len(processes)
    # every process gets resamples x count resampled medians; a drawn slot uses its own one
    medians = np.stack(
        [bootstrap_medians(np.asarray(p, float)[None, :], resamples * count, rng)[0].reshape(resamples, count)
         for p in processes]
    )  # (P, resamples, P)
    picks = rng.integers(0, count, size=(resamples, count))
    return medians[picks, np.arange(resamples)[:, None], np.arange(count)[None, :]].mean(axis=1)


def rerun_draws(center: np.ndarray, boot: np.ndarray, processes: int, rng: np.random.Generator) -> np.ndarray:
    """Where a rerun's estimate may land: draws (C, B) whose percentile interval is a
    prediction interval for the same cell measured again in P new processes (issue 14).

    `boot` holds the two-level bootstrap replicates (C, B) of the estimates `center` (C,); their
    spread (log scale) is the estimate's standard error, within and between processes. Three
    textbook corrections turn it into the spread of a rerun, each a factor on that scale:
    - a rerun's estimate carries its own noise, so the gap between two runs has twice the
      variance of one estimate: sqrt(2);
    - resampling P processes sees (P - 1) / P of their variance (the bootstrap's plug-in bias,
      Efron & Tibshirani 1993, §5.2): sqrt(P / (P - 1));
    - a spread estimated from P processes is itself uncertain: the draws follow Student's t
      with P - 1 degrees of freedom, not the normal law (the classical prediction interval).
    Drawn rather than read off the bootstrap's percentiles: with 3 processes those are a few
    distinct values, and scaling their extremes by the t factor overshoots by 2x. With normal
    per-process medians this gives the nominal coverage of a rerun (a seeded simulation in
    tests/test_stats.py); the coverage measured on a lent H100 is in the README.
    """
    if processes < 2:
        raise ValueError("a rerun interval needs at least 2 processes")
    center = np.asarray(center, dtype=float)[:, None]
    spread = np.log(np.asarray(boot, dtype=float) / center).std(axis=1, keepdims=True)
    scale = np.sqrt(2 * processes / (processes - 1)) * spread
    # clipped far beyond any percentile read from it: with 2 processes t has 1 degree of
    # freedom (a Cauchy law), whose rare huge draws would overflow exp
    return center * np.exp(np.clip(scale * rng.standard_t(processes - 1, size=np.shape(boot)), -50, 50))


def process_center(samples: np.ndarray) -> np.ndarray:
    """The estimate the two-level bootstrap resamples: the mean of the per-process medians of
    (C, P, n) samples; with one process it is the plain median."""
    return np.median(np.asarray(samples, dtype=float), axis=2).mean(axis=1)


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
