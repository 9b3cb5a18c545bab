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


def _brute_two_level(x, resamples, rng):
    """Resample processes, then samples within each drawn process, literally: index draws."""
    processes, n = x.shape
    picks = rng.integers(0, processes, (resamples, processes))
    draws = rng.integers(0, n, (resamples, processes, n))
    return np.median(x[picks[:, :, None], draws], axis=2).mean(axis=1)


@pytest.mark.parametrize("processes, n", [(2, 5), (3, 8), (4, 1), (1, 7)])
def test_two_level_bootstrap_follows_brute_force(processes, n):
    """Processes with different centres (a host-bound cell): the shortcut has the brute-force
    distribution, and its spread shows the between-process variation."""
    rng = np.random.default_rng(processes * 10 + n)
    x = rng.lognormal(0, 0.05, (processes, n)) * rng.uniform(0.7, 1.4, (processes, 1))
    fast = stats.bootstrap_process_medians(x[None], 200_000, np.random.default_rng(1), chunk=1)[0]
    brute = _brute_two_level(x, 200_000, np.random.default_rng(2))
    assert _ks_distance(fast, brute) < 0.01  # 0.001-level critical value at 200,000 each: 0.006
    assert fast.mean() == pytest.approx(stats.process_center(x[None])[0], rel=0.02)


def test_two_level_bootstrap_is_wider_than_pooling_when_processes_disagree():
    rng = np.random.default_rng(8)
    x = np.stack([rng.normal(1.0, 0.01, 20), rng.normal(1.3, 0.01, 20), rng.normal(1.1, 0.01, 20)])
    two = stats.bootstrap_process_medians(x[None], 4000, np.random.default_rng(0))[0]
    pooled = stats.bootstrap_medians(x.reshape(1, -1), 4000, np.random.default_rng(0))[0]
    assert np.ptp(np.percentile(two, [2.5, 97.5])) > 5 * np.ptp(np.percentile(pooled, [2.5, 97.5]))


def test_ragged_two_level_bootstrap_follows_brute_force():
    rng = np.random.default_rng(9)
    parts = [rng.lognormal(0, 0.1, 6), rng.lognormal(0.3, 0.1, 9)]
    fast = stats.bootstrap_ragged_process_medians(parts, 100_000, np.random.default_rng(1))
    draw = np.random.default_rng(2)
    picks = draw.integers(0, 2, (100_000, 2))
    medians = [np.median(p[draw.integers(0, len(p), (100_000, 2, len(p)))], axis=2) for p in parts]
    brute = np.where(picks == 0, medians[0], medians[1]).mean(axis=1)
    assert _ks_distance(fast, brute) < 0.015


def test_two_level_bootstrap_is_reproducible_across_chunks():
    x = np.random.default_rng(3).lognormal(0, 0.1, (5, 3, 6))
    a = stats.bootstrap_process_medians(x, 300, np.random.default_rng(4), chunk=5)
    b = stats.bootstrap_process_medians(x, 300, np.random.default_rng(4), chunk=5)
    assert a.shape == (5, 300) and np.array_equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_median_pair_law_matches_enumeration(n):
    """The law of the middle order statistics of n uniform indices, against all n**n draws."""
    import itertools

    counts = np.zeros((n, n))
    for draw in itertools.product(range(n), repeat=n):
        ordered = sorted(draw)
        counts[ordered[(n + 1) // 2 - 1], ordered[n // 2]] += 1
    assert np.allclose(stats._median_pair_law(n), (counts / n**n).ravel(), atol=1e-12)


def test_rerun_interval_holds_on_a_rerun_where_the_bootstrap_does_not():
    """Simulated cells whose fresh processes differ (log-normal spread between processes, 10x
    the spread within one): a second run of 3 processes lands inside the first run's 95% rerun
    interval about 95% of the time, and inside the plain two-level bootstrap's far less often.
    A seeded Monte Carlo of 600 cells, so it cannot pass by luck and fail on the next run."""
    rng = np.random.default_rng(7)
    cells, processes, n = 600, 3, 10

    def run():
        level = np.exp(rng.normal(0.0, 0.10, size=(cells, processes, 1)))
        return level * np.exp(rng.normal(0.0, 0.01, size=(cells, processes, n)))

    first, second = run(), run()
    center, again = stats.process_center(first), stats.process_center(second)
    boot = stats.bootstrap_process_medians(first, 2000, rng)
    plain = np.percentile(boot, [2.5, 97.5], axis=1)
    rerun = np.percentile(stats.rerun_draws(center, boot, processes, rng), [2.5, 97.5], axis=1)
    inside_plain = np.mean((again >= plain[0]) & (again <= plain[1]))
    inside_rerun = np.mean((again >= rerun[0]) & (again <= rerun[1]))
    assert 0.92 <= inside_rerun <= 0.99
    assert inside_plain < 0.80


def test_rerun_draws_need_two_processes_and_keep_the_center():
    rng = np.random.default_rng(0)
    center = np.array([2.0])
    same = np.full((1, 5), 2.0)
    assert np.allclose(stats.rerun_draws(center, same, 3, rng), 2.0)
    with pytest.raises(ValueError):
        stats.rerun_draws(center, same, 1, rng)
