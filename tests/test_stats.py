"""The statistics behind the verdicts, checked against SciPy and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from hpstudy.core import stats


def test_welch_matches_scipy():
    a, b = [0.81, 0.83, 0.80], [0.76, 0.79, 0.74, 0.78]
    ours = stats.welch(a, b)
    reference = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert ours.effect == pytest.approx(np.mean(a) - np.mean(b))
    assert (ours.low, ours.high) == pytest.approx((reference.low, reference.high))
    assert ours.seeds == 3 and not ours.single_seed


def test_a_group_without_spread_leaves_the_other_groups_t_interval():
    stuck = [1 / 6] * 3  # runs stuck at chance: no spread at all
    learning = [0.78, 0.80, 0.83]
    ours = stats.welch(stuck, learning)
    one = scipy_stats.ttest_1samp(learning, 1 / 6).confidence_interval(0.95)  # of mean(learning)
    assert (ours.low, ours.high) == pytest.approx((1 / 6 - one.high, 1 / 6 - one.low))
    both = stats.welch(stuck, [0.5] * 3)
    assert both.low == both.high == both.effect == pytest.approx(1 / 6 - 0.5)


def test_trend_is_the_slope_interval_of_a_line_through_every_point():
    rng = np.random.default_rng(0)
    xs = np.repeat([1e-7, 1e-4, 1e-2], 3).astype(float)
    ys = 0.5 + 0.02 * np.log10(xs) + rng.normal(0, 0.01, len(xs))
    ours = stats.trend(xs, ys)  # spans two decades or more: on log10
    fit = scipy_stats.linregress(np.log10(xs), ys)
    span = math.log10(1e-2) - math.log10(1e-7)
    half = scipy_stats.t.ppf(0.975, len(xs) - 2) * fit.stderr * span
    assert ours.effect == pytest.approx(fit.slope * span)
    assert (ours.low, ours.high) == pytest.approx((ours.effect - half, ours.effect + half))
    assert ours.method == "trend (log value)" and ours.seeds == 3
    linear = stats.trend([3, 5, 7, 3, 5, 7], [1, 2, 3, 1, 2, 3])  # exact line: no spread
    assert linear.effect == pytest.approx(2.0) and linear.half_width == pytest.approx(0, abs=1e-9)


def test_paired_interval_on_shared_test_images():
    a = np.array([1, 1, 0, 1, 0, 1, 1, 1] * 50, bool)
    b = np.array([1, 0, 0, 1, 0, 1, 0, 1] * 50, bool)
    ours = stats.paired(a, b)
    d = a.astype(float) - b
    assert ours.effect == pytest.approx(d.mean())
    assert ours.half_width == pytest.approx(1.959964 * d.std(ddof=1) / math.sqrt(len(d)), rel=1e-5)
    assert ours.single_seed and ours.seeds == 1


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.03, 0.05, stats.HOLDS), (-0.06, -0.03, stats.CONTRADICTED),
     (-0.01, 0.015, stats.NO_DIFFERENCE), (-0.01, 0.04, stats.INCONCLUSIVE)],
)  # fmt: skip
def test_the_four_outcomes(low, high, expected):
    interval = stats.Interval((low + high) / 2, low, high, 3, "test")
    assert stats.decide(interval, 0.02, +1) == expected
    flipped = {stats.HOLDS: stats.CONTRADICTED, stats.CONTRADICTED: stats.HOLDS}
    mirrored = stats.Interval(-interval.effect, -high, -low, 3, "test")
    assert stats.decide(mirrored, 0.02, -1) == expected
    assert stats.decide(interval, 0.02, -1) == flipped.get(expected, expected)


def test_one_seed_never_says_no_practical_difference():
    interval = stats.Interval(0.0, -0.005, 0.005, 1, "paired", single_seed=True)
    assert stats.decide(interval, 0.02) == stats.INCONCLUSIVE


def test_more_seeds_are_advised_when_the_interval_straddles_the_margin():
    wide = stats.Interval(0.04, -0.01, 0.09, 3, "welch")
    needed = stats.seeds_to_resolve(wide, 0.02)
    assert needed > 3
    narrower = stats.Interval(0.04, 0.01, 0.07, 3, "welch")
    assert stats.seeds_to_resolve(narrower, 0.02) < needed


def test_binomial_standard_error_of_a_test_set():
    assert stats.binomial_se(0.8, 3000) == pytest.approx(math.sqrt(0.8 * 0.2 / 3000))
    assert stats.binomial_se(1.0, 360) > 0  # never zero, even at a perfect score
