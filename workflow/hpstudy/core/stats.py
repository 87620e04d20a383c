"""The statistics behind every verdict: intervals over seeds, and the four outcomes.

- Two groups (e.g. the best middle learning rate against the best end): Welch's t interval
  for the difference of means, with the Welch-Satterthwaite degrees of freedom. A group with
  zero spread (runs stuck at chance) is handled: with one spread left it is a one-sample t
  interval; with none, the interval is the point itself.
- A trend over three or more values: a least-squares line through every (value, seed) point,
  on the log of the value where the values span two decades or more; the effect is the line's
  change from the smallest to the largest value, with the slope's t interval.
- One seed: the test set's binomial standard error, or, for two runs that share a test set, a
  paired interval on their per-image correctness. A single-seed verdict is labelled so and
  never says "no practical difference".

A verdict compares the interval with a practical margin in the claimed direction:
*holds* (beyond +margin), *contradicted* (beyond -margin), *no practical difference* (inside
±margin), *inconclusive* otherwise, then with a rough count of seeds that would resolve it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
HOLDS, CONTRADICTED, NO_DIFFERENCE, INCONCLUSIVE = (
    "holds",
    "contradicted",
    "no practical difference",
    "inconclusive",
)
LOG_SPAN = 100.0  # values spanning two decades or more are compared on a log scale
MAX_SEEDS_ADVICE = 100


@dataclass(frozen=True)
class Interval:
    """An effect and its confidence interval, with how many seeds stand behind it."""

    effect: float
    low: float
    high: float
    seeds: int  # seeds per value (the smallest group)
    method: str
    single_seed: bool = False

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2

    def scaled(self, factor: float) -> Interval:
        """The same interval in other units (e.g. relative instead of absolute)."""
        low, high = sorted((self.low * factor, self.high * factor))
        return Interval(self.effect * factor, low, high, self.seeds, self.method, self.single_seed)


@functools.lru_cache(maxsize=4096)  # a sequential sweep's simulation asks for few distinct ones
def t_quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided t quantile for ``df`` degrees of freedom (the normal's for df = inf):
    the functions behind ``scipy.stats.t.ppf`` and ``norm.ppf``, equal to them, from
    ``scipy.special`` (a third of ``scipy.stats``' import time; a figure job asks for one)."""
    from scipy import special  # imported when needed: the workflow plans without it

    if not math.isfinite(df):
        return float(special.ndtri(0.5 + level / 2))
    return float(special.stdtrit(df, 0.5 + level / 2))


def _interval(effect: float, se: float, df: float, seeds: int, method: str, level: float,
              single: bool = False) -> Interval:  # fmt: skip
    if se == 0:
        return Interval(effect, effect, effect, seeds, method, single)
    half = t_quantile(df, level) * se
    return Interval(effect, effect - half, effect + half, seeds, method, single)


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Welch's t interval for ``mean(a) - mean(b)`` (each group: one value per seed)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's interval needs at least two seeds per group")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    effect = float(a.mean() - b.mean())
    seeds = min(len(a), len(b))
    if va + vb == 0:  # both groups without spread: no interval to draw
        return Interval(effect, effect, effect, seeds, "welch")
    if va == 0 or vb == 0:  # one group without spread: the other's one-sample t
        df = (len(b) if va == 0 else len(a)) - 1
    else:
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return _interval(effect, math.sqrt(va + vb), df, seeds, "welch", level)


def one_sample(values: Sequence[float], reference: float, level: float = LEVEL) -> Interval:
    """The t interval for ``mean(values) - reference``."""
    values = np.asarray(values, float)
    effect = float(values.mean() - reference)
    if len(values) < 2:
        raise ValueError("a one-sample interval needs at least two seeds")
    se = values.std(ddof=1) / math.sqrt(len(values))
    return _interval(effect, se, len(values) - 1, len(values), "one-sample t", level)


def spans_decades(xs: Sequence[float]) -> bool:
    """Whether positive values span a factor of ``LOG_SPAN`` or more (then use their log)."""
    xs = [x for x in xs if x > 0]
    return len(xs) >= 2 and max(xs) / min(xs) >= LOG_SPAN


def trend(xs: Sequence[float], ys: Sequence[float], log_x: bool | None = None,
          level: float = LEVEL) -> Interval:  # fmt: skip
    """A line through every (value, seed) point; the effect is its change from the smallest to
    the largest value, with the slope's t interval (n - 2 degrees of freedom)."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    log_x = spans_decades(xs) if log_x is None else log_x
    u = np.log10(xs) if log_x else xs
    values = np.unique(u)
    if len(values) < 2:
        raise ValueError("a trend needs at least two distinct values")
    seeds = int(min(np.sum(u == v) for v in values))
    span = float(values[-1] - values[0])
    slope, intercept = np.polyfit(u, ys, 1)
    residuals = ys - (slope * u + intercept)
    df = len(u) - 2
    sxx = float(np.sum((u - u.mean()) ** 2))
    method = "trend (log value)" if log_x else "trend"
    if df <= 0:
        return Interval(float(slope * span), -math.inf, math.inf, seeds, method)
    se_slope = math.sqrt(float(np.sum(residuals**2)) / df / sxx)
    return _interval(float(slope * span), se_slope * span, df, seeds, method, level)


def binomial_se(accuracy: float, n: int) -> float:
    """The standard error of an accuracy measured on ``n`` test images."""
    p = min(max(float(accuracy), 0.0), 1.0)
    return math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def single_run_difference(acc_a: float, acc_b: float, n: int, level: float = LEVEL) -> Interval:
    """One seed each, no shared predictions: the two test-set binomial errors combined."""
    se = math.hypot(binomial_se(acc_a, n), binomial_se(acc_b, n))
    return _interval(acc_a - acc_b, se, math.inf, 1, "binomial", level, single=True)


def paired(correct_a: Sequence[bool], correct_b: Sequence[bool], level: float = LEVEL) -> Interval:
    """Two runs scored on the same test images: the interval of their accuracy difference
    from the per-image differences (a paired test; one seed each)."""
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("paired predictions must cover the same test images")
    d = a - b
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    return _interval(float(d.mean()), se, math.inf, 1, "paired on test images", level, single=True)


def decide(interval: Interval, margin: float, direction: int = 1) -> str:
    """The verdict on a claim that the effect goes in ``direction`` (+1 up, -1 down) by more
    than ``margin``."""
    low, high = sorted((interval.low * direction, interval.high * direction))
    if low > margin:
        return HOLDS
    if high < -margin:
        return CONTRADICTED
    if -margin <= low and high <= margin and not interval.single_seed:
        return NO_DIFFERENCE
    return INCONCLUSIVE


def seeds_to_resolve(interval: Interval, margin: float) -> int | None:
    """Roughly how many seeds per value would narrow the interval enough to decide, if the
    effect and the spread stayed as measured (the width shrinks as one over the root of the
    seed count); None when no number of seeds would."""
    half = interval.half_width
    if not math.isfinite(half) or half == 0:
        return None
    distance = abs(abs(interval.effect) - margin)
    if distance == 0:
        return None
    needed = math.ceil(max(interval.seeds, 1) * (half / distance) ** 2 * 1.1)
    return max(needed, interval.seeds + 1)


def paired_seeds(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Two groups run on the same seeds with the same initial weights and image order: the
    t interval of the mean per-seed difference ``a - b`` (``a[i]`` and ``b[i]`` share a seed)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) < 2:
        raise ValueError("a paired interval over seeds needs at least two shared seeds")
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    return _interval(float(d.mean()), se, len(d) - 1, len(d), "paired by seed", level)


def correlation(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson's correlation of paired values (None where either side has no spread)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


# from the weakest to the strongest support for a claim: a claim made of several comparisons
# gets the weakest of their verdicts (it holds only when each one holds)
VERDICT_ORDER = (CONTRADICTED, NO_DIFFERENCE, INCONCLUSIVE, HOLDS)


def weaker(*verdicts: str) -> str:
    """The weakest of several verdicts (see ``VERDICT_ORDER``)."""
    return min(verdicts, key=VERDICT_ORDER.index)
