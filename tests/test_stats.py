"""Statistics: summaries of raw samples and bootstrap intervals of speed-ups."""

import numpy as np
import pytest

from speedatlas.analyze import stats


def test_summary():
    s = stats.summarize(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert s.median == 3.0 and s.min == 1.0 and s.n == 5
    assert s.q1 == 2.0 and s.q3 == 4.0 and s.iqr == 2.0
    assert s.cv > 1


@pytest.mark.parametrize("bad", [[], [1.0, -1.0], [1.0, float("nan")], [0.0]])
def test_summary_rejects_impossible_samples(bad):
    with pytest.raises(ValueError):
        stats.summarize(np.array(bad))


def test_speedup_interval_covers_the_true_ratio():
    rng = np.random.default_rng(3)
    slow = rng.lognormal(np.log(1.0), 0.05, 30)
    fast = rng.lognormal(np.log(0.2), 0.05, 30)
    ratio = stats.speedup(slow, fast)
    assert ratio.low < ratio.estimate < ratio.high
    assert ratio.low < 5.0 < ratio.high
    assert ratio.high - ratio.low < 1.0


def test_identical_distributions_are_not_significant():
    rng = np.random.default_rng(4)
    a, b = rng.normal(1, 0.1, 20), rng.normal(1, 0.1, 20)
    ratio = stats.speedup(a, b)
    assert ratio.low < 1 < ratio.high


def test_bootstrap_medians_are_reproducible_and_bracket_the_median():
    rng = np.random.default_rng(5)
    samples = rng.normal(1, 0.05, (3, 10))
    a = stats.bootstrap_medians(samples, 500, np.random.default_rng(7), chunk=2)
    b = stats.bootstrap_medians(samples, 500, np.random.default_rng(7), chunk=2)
    assert a.shape == (3, 500) and np.array_equal(a, b)
    assert np.all(a.min(axis=1) >= samples.min(axis=1)) and np.all(a.max(axis=1) <= samples.max(axis=1))
    medians = np.median(samples, axis=1)
    assert np.all(np.abs(np.median(a, axis=1) - medians) < 0.05)
    low, high = stats.ratio_interval(a, a[::-1])
    assert np.all(low <= high)


@pytest.mark.parametrize("n", [1, 2, 7, 20])
def test_bootstrap_medians_follow_brute_force_resampling(n):
    """The order-statistic shortcut has the distribution of resampling n values and taking
    np.median: compare the two on one skewed sample, quantile by quantile."""
    x = np.random.default_rng(n).lognormal(0, 0.5, n)
    fast = stats.bootstrap_medians(x[None, :], 200_000, np.random.default_rng(1))[0]
    draws = np.random.default_rng(2).integers(0, n, (200_000, n))
    brute = np.median(x[draws], axis=1)
    pairs = {round((a + b) / 2, 12) for a in x for b in x}
    assert set(np.round(np.unique(fast), 12)) <= pairs  # only medians a resample can have
    # the same distribution: Kolmogorov distance within sampling error (critical value at
    # 200,000 draws each and a 0.001 level is 0.006)
    grid = np.union1d(fast, brute)
    cdf = lambda v: np.searchsorted(np.sort(v), grid, side="right") / len(v)  # noqa: E731
    assert np.max(np.abs(cdf(fast) - cdf(brute))) < 0.01


def _ks_distance(a, b):
    grid = np.union1d(a, b)
    cdf = lambda v: np.searchsorted(np.sort(v), grid, side="right") / len(v)  # noqa: E731
    return np.max(np.abs(cdf(a) - cdf(b)))


def test_rerun_interval_holds_on_a_rerun_where_one_process_does_not():
    """Simulated cells whose fresh processes differ (log-normal spread between processes, 10x
    the spread within one): a second run of 3 processes lands inside the first run's 95% rerun
    interval about 95% of the time; a bootstrap of one process's samples, which cannot see the
    spread between processes, far less often. A seeded Monte Carlo of 600 cells, so it cannot
    pass by luck and fail on the next run."""
    rng = np.random.default_rng(7)
    cells, processes, n = 600, 3, 10

    def run():
        level = np.exp(rng.normal(0.0, 0.10, size=(cells, processes, 1)))
        return level * np.exp(rng.normal(0.0, 0.01, size=(cells, processes, n)))

    first, second = run(), run()
    logs_first, logs_second = np.log(np.median(first, axis=2)), np.log(np.median(second, axis=2))
    center, draws = stats.rerun_draws(logs_first, processes, 4000, rng)
    rerun = np.percentile(draws, [2.5, 97.5], axis=1)
    again = np.exp(logs_second.mean(axis=1))
    inside_rerun = np.mean((again >= rerun[0]) & (again <= rerun[1]))
    one = np.percentile(stats.bootstrap_medians(first[:, 0, :], 2000, rng), [2.5, 97.5], axis=1)
    inside_one = np.mean((again >= one[0]) & (again <= one[1]))
    assert 0.92 <= inside_rerun <= 0.99
    assert inside_one < 0.50
    assert np.allclose(center, np.exp(logs_first.mean(axis=1)))


def test_rerun_draws_use_the_pilots_spread_and_need_a_pilot_of_two():
    rng = np.random.default_rng(0)
    quiet_pilot = np.log([[1.0, 1.0, 1.0, 1.5, 0.7]])  # the pilot (3) agrees; the rest does not
    _, draws = stats.rerun_draws(quiet_pilot, 3, 1000, rng)
    assert np.allclose(draws, draws[0, 0])  # the interval is the pilot's (Stein), not all five's
    _, wide = stats.rerun_draws(quiet_pilot, 5, 1000, rng)
    assert np.ptp(wide) > 0.1
    with pytest.raises(ValueError):
        stats.rerun_draws(np.log([[1.0, 1.1]]), 1, 10, rng)
