"""Verdicts that settle themselves: the looks of a sequential sweep and its decision rule.

With ``findings: sequential: {max_seeds, step}`` a claim is judged at looks fixed beforehand:
at n0 (the configured seeds), n0 + step, ... and at ``max_seeds``; their number K is known
before the first. Each look judges the claim on exactly the first n_k seeds of its settings with
a (1 - 0.05/K) interval (Bonferroni over the looks, so the whole sweep keeps the 5 % error of
one 95 % interval), and the claim stops at its first decided look (holds, contradicted, no
practical difference) or at ``max_seeds``. Only interval claims are sequential: a per-run
"k of n" count never settles.

:func:`decide_sequentially` is the rule itself, a pure function over per-seed values, so that
its error rates can be checked by simulation (tests/test_sequential.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hpstudy.core import stats
from hpstudy.core.stats import INCONCLUSIVE

ALPHA = 1 - stats.LEVEL
DECIDED, LIMIT = "decided", "limit reached"


def schedule(n0: int, step: int, max_seeds: int) -> list[int]:
    """The seed counts of the looks: n0, n0 + step, ... and ``max_seeds`` (n0 alone when it is
    already ``max_seeds`` or more)."""
    looks = list(range(n0, max_seeds, step)) if n0 < max_seeds else []
    return [*looks, max(max_seeds, n0)]


def look_level(looks: int, alpha: float = ALPHA) -> float:
    """The confidence level of every look's interval: 1 - alpha / K."""
    return 1 - alpha / looks


@dataclass(frozen=True)
class Decision:
    """Where a claim stopped: its verdict, the look (1-based) and the seeds it took."""

    verdict: str
    look: int
    seeds: int
    looks: int

    @property
    def reason(self) -> str:
        """Why it stopped: decided, or the seed limit reached."""
        return DECIDED if self.verdict != INCONCLUSIVE else LIMIT

    def text(self) -> str:
        """``look 2 of 5, 5 seeds: decided``."""
        return f"look {self.look} of {self.looks}, {self.seeds} seeds: {self.reason}"


def interval_at(a: np.ndarray, b: np.ndarray, n: int, level: float, paired: bool):
    """The interval of ``mean(a) - mean(b)`` on the first ``n`` seeds."""
    if paired:
        return stats.paired_seeds(a[:n], b[:n], level)
    return stats.welch(a[:n], b[:n], level)


def decide_sequentially(
    a: Sequence[float],
    b: Sequence[float],
    looks: Sequence[int],
    margin: float,
    direction: int = 1,
    paired: bool = True,
) -> Decision:
    """Judge the claim ``mean(a) - mean(b)`` goes in ``direction`` by more than ``margin`` at
    each look (``a[i]``, ``b[i]``: seed i's values; ``looks``: seed counts), stopping at the
    first decided look."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    level = look_level(len(looks))
    verdict = INCONCLUSIVE
    for k, n in enumerate(looks, 1):
        verdict = stats.decide(interval_at(a, b, n, level, paired), margin, direction)
        if verdict != INCONCLUSIVE:
            return Decision(verdict, k, n, len(looks))
    return Decision(verdict, len(looks), looks[-1], len(looks))
