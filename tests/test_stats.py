"""Statistics: summaries of raw samples and bootstrap intervals of speed-ups."""

import numpy as np
import pytest

from speedatlas import stats


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


def test_stacked_equals_single_and_is_reproducible():
    rng = np.random.default_rng(5)
    base, cand = rng.normal(1, 0.05, (3, 10)), rng.normal(0.5, 0.02, (3, 10))
    e, lo, hi = stats.speedups_stacked(base, cand, seed=7)
    e2, lo2, hi2 = stats.speedups_stacked(base, cand, seed=7)
    assert np.array_equal(lo, lo2) and np.array_equal(hi, hi2)
    assert np.allclose(e, np.median(base, axis=1) / np.median(cand, axis=1))
    assert np.all(lo < e) and np.all(e < hi)
