"""How many fresh processes a cell needs for its interval to reach the precision asked for.

A cell's value is the mean of its processes' log medians; its interval says where a rerun of the
cell should land: centre ± t · s · sqrt(1/N + 1/N), the classical prediction interval of a mean
of N processes against a rerun of N more (s: the spread of the processes' log medians, t: the
Student quantile with the degrees of freedom s was estimated with).

`timing.precision` asks for a relative half-width: the interval [c / (1 + p), c * (1 + p)], that
is a half-width of log(1 + p) on the log scale. How many processes that takes depends on the
spread, which is unknown before measuring, so the rule is Stein's (1945) two-stage procedure:
a pilot of n0 processes estimates the spread s0; the cell then gets

    N = max(n0, ceil(2 * (t(n0 - 1) * s0 / log(1 + p)) ** 2))

processes in all, and its interval uses s0 and n0 - 1 degrees of freedom, not the spread of
all N. Because N depends on the pilot's spread only, the mean of the N processes is, given s0,
normal with variance sigma^2 / N, and the interval has its nominal coverage exactly (for normal
process effects) although the spread was estimated. A loop that adds processes until the
interval looks narrow enough stops when the spread happens to look small: that is optional
stopping, its intervals are too narrow, and it is never used here (tests/test_precision.py shows
both). A budget (`timing.max_processes`, `timing.max_seconds`) can cap N; such a cell reports the
half-width it did reach and is flagged short of precision.

Runner side (it runs in the process jobs of a cell): standard library only. The Student-t
quantile is computed here (regularised incomplete beta by Lentz's continued fraction, then
bisection) because scipy is in no torch environment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass



def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz), as in Numerical Recipes §6.4."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x >= 0 else tail


def t_quantile(probability: float, df: float) -> float:
    """The `probability` quantile of Student's t with `df` degrees of freedom (to ~1e-12)."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"a quantile needs 0 < probability < 1, not {probability}")
    if probability < 0.5:
        return -t_quantile(1.0 - probability, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < probability:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < probability:
            low = middle
        else:
            high = middle
        if high - low < 1e-13 * max(1.0, high):
            break
    return 0.5 * (low + high)


def rerun_scale(spread: float, processes: int) -> float:
    """The log-scale standard error of the gap between this cell and a rerun of it, each the
    mean of `processes` processes whose log medians spread by `spread`."""
    return spread * math.sqrt(2.0 / processes)


def half_width(spread: float, df: int, processes: int, confidence: float) -> float:
    """Log-scale half-width of the rerun interval (see the module docstring)."""
    return t_quantile(0.5 + confidence / 2.0, df) * rerun_scale(spread, processes)


def relative(half: float) -> float:
    """A log-scale half-width as the relative precision p it gives: exp(half) - 1."""
    return math.expm1(half)


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1)."""
    n = len(values)
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class Plan:
    """How many processes a cell gets in all, and what its interval will be."""

    processes: int  # N: in all, the pilot included
    wanted: int  # what the precision alone asks for (>= processes when a budget cut it)
    half_width: float  # log scale, of the interval the cell will report (with `processes`)
    spread: float  # s0, the pilot's spread of log medians
    limited_by: str | None  # "max_processes" or "max_seconds" when the budget cut N, else None

    @property
    def precision(self) -> float:
        """The relative precision the cell reaches: exp(half_width) - 1."""
        return relative(self.half_width)


def plan(pilot_log_medians: Sequence[float], precision: float, confidence: float, max_processes: int,
         seconds_per_process: float | None = None, max_seconds: float | None = None) -> Plan:
    """Stein's second stage: the number of processes a cell needs, from its pilot (n0 >= 2 log
    medians of per-item times); capped by `max_processes` and by `max_seconds` of processes at
    the pilot's `seconds_per_process`."""
    n0 = len(pilot_log_medians)
    if n0 < 2:
        raise ValueError("a pilot needs at least 2 processes to estimate their spread")
    s0 = spread(pilot_log_medians)
    t = t_quantile(0.5 + confidence / 2.0, n0 - 1)
    target = math.log1p(precision)
    wanted = max(n0, math.ceil(2.0 * (t * s0 / target) ** 2 - 1e-9))
    cap, limited_by = max_processes, "max_processes"
    if max_seconds is not None and seconds_per_process:
        by_time = max(n0, int(max_seconds // seconds_per_process))
        if by_time < cap:
            cap, limited_by = by_time, "max_seconds"
    processes = min(wanted, max(n0, cap))
    return Plan(processes, wanted, t * rerun_scale(s0, processes), s0, limited_by if processes < wanted else None)
