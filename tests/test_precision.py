"""The precision rule (issue 23): Stein's two-stage procedure, checked by seeded simulation.

Each simulated cell is measured twice, each time by the whole procedure (a pilot, then as many
processes as the pilot's spread asks for); the second run's estimate must land inside the first
run's interval as often as the confidence says, and the interval must be as narrow as asked. A
loop that adds processes until its interval looks narrow enough (optional stopping) must fail
the same check, or the check could not tell a valid rule from an invalid one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from speedatlas.measure.protocol import precision

TARGET = 0.05
RUNS = 3000
# 3 Monte-Carlo standard errors below 95% over RUNS pairs: a valid rule passes, a rule that
# covers 92% fails.
FLOOR = 0.95 - 3 * math.sqrt(0.95 * 0.05 / RUNS)


def process_effects(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit-variance process effects: normal, Student t with 3 degrees of freedom (heavy tails),
    or a normal with 10% of processes 3 sigma slow (a process that started badly)."""
    if kind == "normal":
        return rng.normal(0.0, 1.0, size)
    if kind == "t3":
        return rng.standard_t(3, size) / math.sqrt(3.0)
    slow = rng.random(size) < 0.1
    return (rng.normal(0.0, 1.0, size) + 3.0 * slow - 0.3) / math.sqrt(1.0 + 0.81)


def two_stage(kind: str, sigma: float, pilot: int, rng: np.random.Generator) -> tuple[float, float, int]:
    first = list(sigma * process_effects(kind, rng, pilot))
    plan = precision.plan(first, TARGET, 0.95, max_processes=500)
    rest = list(sigma * process_effects(kind, rng, plan.processes - pilot))
    return float(np.mean(first + rest)), plan.half_width, plan.processes


def stop_when_narrow(kind: str, sigma: float, start: int, rng: np.random.Generator) -> tuple[float, float]:
    """The invalid rule: one more process until t * s * sqrt(2/n) looks narrow enough."""
    values = list(sigma * process_effects(kind, rng, start))
    while True:
        n = len(values)
        half = precision.half_width(precision.spread(values), n - 1, n, 0.95)
        if half <= math.log1p(TARGET) or n >= 500:
            return float(np.mean(values)), half
        values.append(float(sigma * process_effects(kind, rng, 1)[0]))


@pytest.mark.parametrize(("kind", "sigma", "pilot"), [
    ("normal", 0.02, 3), ("normal", 0.05, 4), ("t3", 0.05, 4), ("slow processes", 0.03, 4),
])
def test_two_stage_intervals_hold_on_a_rerun_and_meet_the_width(kind, sigma, pilot):
    rng = np.random.default_rng(23)
    inside = narrow = 0
    for _ in range(RUNS):
        estimate, half, _ = two_stage(kind, sigma, pilot, rng)
        rerun, _, _ = two_stage(kind, sigma, pilot, rng)
        inside += abs(estimate - rerun) <= half
        narrow += half <= math.log1p(TARGET) + 1e-12
    assert inside / RUNS >= FLOOR, f"{kind}: a rerun landed inside {inside / RUNS:.3f} of the time"
    assert narrow / RUNS >= 0.99


def test_stopping_when_the_interval_looks_narrow_fails_the_same_check():
    rng = np.random.default_rng(23)
    inside = 0
    for _ in range(RUNS):
        estimate, half = stop_when_narrow("normal", 0.05, 4, rng)
        rerun, _ = stop_when_narrow("normal", 0.05, 4, rng)
        inside += abs(estimate - rerun) <= half
    assert inside / RUNS < FLOOR, f"optional stopping covered {inside / RUNS:.3f}: the check cannot tell"


def test_student_t_quantiles_match_the_tables():
    for df, probability, table in [(1, 0.975, 12.7062047), (2, 0.975, 4.3026527), (4, 0.975, 2.7764451),
                                   (9, 0.975, 2.2621572), (30, 0.975, 2.0422725), (2, 0.995, 9.9248432),
                                   (7, 0.90, 1.4149239)]:
        assert precision.t_quantile(probability, df) == pytest.approx(table, abs=1e-6)
        assert precision.t_quantile(1 - probability, df) == pytest.approx(-table, abs=1e-6)
    assert precision.t_quantile(0.975, 10_000) == pytest.approx(1.959964, abs=1e-3)


def test_a_quiet_cell_needs_only_its_pilot_and_a_noisy_one_is_capped_and_says_so():
    quiet = precision.plan([0.001, -0.002, 0.0, 0.001], TARGET, 0.95, max_processes=12)
    assert quiet.processes == 4 and quiet.limited_by is None and quiet.precision <= TARGET
    noisy = precision.plan([0.2, -0.2, 0.1, -0.1], TARGET, 0.95, max_processes=12)
    assert noisy.processes == 12 and noisy.wanted > 12 and noisy.limited_by == "max_processes"
    assert noisy.precision > TARGET  # the precision it did reach, not the one asked for
    slow = precision.plan([0.2, -0.2, 0.1, -0.1], TARGET, 0.95, max_processes=12, seconds_per_process=10,
                          max_seconds=60)
    assert slow.processes == 6 and slow.limited_by == "max_seconds"
    with pytest.raises(ValueError, match="at least 2"):
        precision.plan([0.0], TARGET, 0.95, max_processes=12)
