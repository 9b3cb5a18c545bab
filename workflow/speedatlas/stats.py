"""Statistics of raw timing samples: robust summaries and bootstrap intervals.

Pure numpy. Medians rather than means because timing noise is one-sided (a preempted step is
slower, never faster); intervals from resampling the raw samples, so a speed-up of 5.2x comes
with how sure we are of it.
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
    estimate, low, high = speedups_stacked(
        np.asarray(baseline, dtype=float)[None, :],
        np.asarray(candidate, dtype=float)[None, :],
        confidence,
        resamples,
        seed,
    )
    return Ratio(float(estimate[0]), float(low[0]), float(high[0]))

def speedups_stacked(
    baseline: np.ndarray,
    candidate: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`speedup` for many pairs at once: rows of `baseline` (P, n) against rows of `candidate` (P, m).

    Vectorised over pairs (in chunks, to bound memory), so ten thousand cells aggregate in
    seconds. Returns (estimate, low, high), each of shape (P,).
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    rng = np.random.default_rng(seed)
    estimate = np.median(base, axis=1) / np.median(cand, axis=1)
    low = np.empty(len(base))
    high = np.empty(len(base))
    tail = (1 - confidence) / 2 * 100
    for start in range(0, len(base), chunk):
        b = base[start : start + chunk]
        c = cand[start : start + chunk]
        rows_b = np.arange(len(b))[:, None, None]
        draws_b = rng.integers(0, b.shape[1], size=(len(b), resamples, b.shape[1]))
        draws_c = rng.integers(0, c.shape[1], size=(len(c), resamples, c.shape[1]))
        ratios = np.median(b[rows_b, draws_b], axis=2) / np.median(c[rows_b, draws_c], axis=2)
        low[start : start + chunk], high[start : start + chunk] = np.percentile(ratios, [tail, 100 - tail], axis=1)
    return estimate, low, high
