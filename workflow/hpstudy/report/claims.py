"""The claim engine behind ``findings.md``: a claim, its verdict and the evidence for it.

Each verdict states its effect, the effect's 95 % interval across seeds, the number of seeds and
the practical margin, and is one of *holds*, *contradicted*, *no practical difference* or
*inconclusive* (:mod:`hpstudy.stats`); an inconclusive one says roughly how many seeds would
resolve it. Accuracy claims compare final test accuracies, with a diverged run counted at
chance. The margin of an accuracy claim is ``findings.margin`` (2 points) or twice the test
set's binomial standard error, whichever is larger. Checks made on each run's curves report in
how many seeds they hold.

With one seed, an accuracy claim's interval comes from the test set alone: a paired interval
on the per-image predictions of the two runs it compares (they share the test set), labelled
single-seed; one seed never yields "no practical difference".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy import stats
from hpstudy.formatting import (
    format_value,
    pct,
    points_interval,
    points_size,
    relative,
    relative_interval,
    sort_key,
)
from hpstudy.layout import PREDICTIONS
from hpstudy.stats import CONTRADICTED, HOLDS, INCONCLUSIVE, Interval
from hpstudy.tables import final_accuracies

MARGIN = 0.02  # default practical margin of an accuracy claim (2 points)
TIME_MARGIN = 0.10  # epoch time: a relative change of 10 %
COST_MARGIN = 0.05  # parameters and memory: a relative change of 5 %
LOSS_REL_TOL = 0.005  # relative fall of test loss over the last epoch that counts as falling
INSTABILITY_DROP = 0.05  # a test-accuracy drop between consecutive epochs that is unstable
OVERFIT_RISE = 0.05  # relative rise of test loss above its minimum that is overfitting
PER_RUN = "per run"


@dataclass
class Finding:
    """One claim of the post, its verdict and what stands behind it."""

    rule: str
    claim: str
    verdict: str
    effect: str = ""  # the effect with its interval, as people read it
    seeds: str = ""
    margin: str = ""
    evidence: list[str] = field(default_factory=list)
    study: str | None = None
    resolve: int | None = None  # about how many seeds would resolve an inconclusive verdict


@dataclass
class Context:
    """What every claim reads: the tables, the run folders and the margin settings."""

    summary: pd.DataFrame
    metrics: pd.DataFrame
    runs_dir: Path | None = None
    margin: float = MARGIN


def accuracy_margin(rows: pd.DataFrame, margin: float) -> float:
    """The configured margin, raised to twice the test set's binomial standard error."""
    n = int(rows["test_count"].iloc[0]) if "test_count" in rows else 0
    if n <= 0:
        return margin
    return max(margin, 2 * stats.binomial_se(float(np.mean(final_accuracies(rows))), n))


def points_text(interval: Interval) -> str:
    """``+3.1 points [-0.4, +6.6]`` (a fraction shown in percentage points)."""
    return points_interval(interval.effect, interval.low, interval.high)


def relative_text(interval: Interval) -> str:
    """``-42% [-48%, -35%]``."""
    return relative_interval(interval.effect, interval.low, interval.high)


def seeds_text(interval: Interval) -> str:
    return f"{interval.seeds} (single-seed)" if interval.single_seed else str(interval.seeds)


def study_rows(summary: pd.DataFrame, study: str) -> tuple[pd.DataFrame, str]:
    """The rows of a one-key study and the key it sweeps."""
    rows = summary[summary["study"] == study]
    return rows, str(rows["study_params"].iloc[0])


def values_of(rows: pd.DataFrame, key: str) -> list:
    """The study's swept values, in order."""
    return sorted(rows[key].drop_duplicates().tolist(), key=sort_key)


def numeric(value) -> float:
    """A swept value as a number on its axis (kernel widths: their sum)."""
    if isinstance(value, str) and all(p.isdigit() for p in value.split("-")):
        return float(sum(int(p) for p in value.split("-")))
    return float(value)


def correctness(ctx: Context, run_id: str) -> np.ndarray | None:
    """Per test image, whether the run got it right (None when its predictions are absent)."""
    if ctx.runs_dir is None:
        return None
    path = ctx.runs_dir / run_id / PREDICTIONS
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return saved["pred"] == saved["label"]


def accuracy_difference(ctx: Context, group_a: pd.DataFrame, group_b: pd.DataFrame) -> Interval:
    """Mean final accuracy of ``group_a`` minus ``group_b``: Welch over seeds, or with one
    seed the paired interval on the two runs' predictions (binomial when they are absent)."""
    a, b = final_accuracies(group_a), final_accuracies(group_b)
    if len(a) >= 2 and len(b) >= 2:
        return stats.welch(a, b)
    first_a, first_b = group_a.iloc[0], group_b.iloc[0]
    correct_a, correct_b = correctness(ctx, first_a["run_id"]), correctness(ctx, first_b["run_id"])
    diverged = bool(first_a["diverged"]) or bool(first_b["diverged"])
    if (
        correct_a is not None
        and correct_b is not None
        and len(correct_a) == len(correct_b)
        and not diverged
    ):
        return stats.paired(correct_a, correct_b)
    return stats.single_run_difference(a[0], b[0], int(first_a["test_count"]))


def judged(finding: Finding, interval: Interval, margin: float, direction: int, text) -> Finding:
    """Fill a finding's verdict, effect, seeds, margin and resolve hint from its interval."""
    finding.verdict = stats.decide(interval, margin, direction)
    finding.effect = text(interval)
    finding.seeds = seeds_text(interval)
    if finding.verdict == INCONCLUSIVE:
        finding.resolve = stats.seeds_to_resolve(interval, margin)
    return finding


# --- accuracy claims ------------------------------------------------------------------


def two_group_claim(ctx, rule, claim, study, rows_a, rows_b, direction, what) -> Finding:
    """A claim that ``rows_a`` beat ``rows_b`` (direction +1) in final test accuracy."""
    margin = accuracy_margin(pd.concat([rows_a, rows_b]), ctx.margin)
    finding = Finding(rule, claim, INCONCLUSIVE, study=study, margin=points_size(margin))
    interval = accuracy_difference(ctx, rows_a, rows_b)
    finding.evidence.append(f"{what}: {points_text(interval)} ({interval.method})")
    return judged(finding, interval, margin, direction, points_text)


def trend_claim(ctx, rule, claim, study, direction) -> Finding:
    """A claim that final test accuracy moves in ``direction`` as the swept value grows: a
    line over every (value, seed) point, or with one seed the paired interval between the
    smallest and the largest value."""
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)
    margin = accuracy_margin(rows, ctx.margin)
    finding = Finding(rule, claim, INCONCLUSIVE, study=study, margin=points_size(margin))
    finding.evidence.append("mean final test accuracy by value: " + by_value(rows, key, values))
    if len(values) < 2:
        finding.evidence.append("needs at least two values")
        return finding
    seeds = rows.groupby(key)["run_id"].nunique().min()
    if len(values) == 2 or seeds < 2:
        smallest, largest = (rows[rows[key] == v] for v in (values[0], values[-1]))
        interval = accuracy_difference(ctx, largest, smallest)
        what = f"{format_value(values[-1])} minus {format_value(values[0])}"
    else:
        xs = [numeric(v) for v in rows[key]]
        interval = stats.trend(xs, final_accuracies(rows))
        what = f"the line's change from {format_value(values[0])} to {format_value(values[-1])}"
    finding.evidence.append(f"{what}: {points_text(interval)} ({interval.method})")
    return judged(finding, interval, margin, direction, points_text)


def by_value(rows: pd.DataFrame, key: str, values: list) -> str:
    """``10: 82.4% (3 seeds), 256: 81.2% (3 seeds)``."""
    parts = []
    for value in values:
        accs = final_accuracies(rows[rows[key] == value])
        parts.append(f"{format_value(value)}: {pct(float(np.mean(accs)))} ({len(accs)} seeds)")
    return ", ".join(parts)


def cost_claim(ctx, rule, claim, study, column, direction, margin, unit) -> Finding:
    """A claim that a cost (epoch time, parameters, memory) grows or falls with the value,
    judged on the relative change from the smallest to the largest value (a line through the
    log of the cost over every (value, seed) point)."""
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)
    finding = Finding(rule, claim, INCONCLUSIVE, study=study, margin=relative(margin, sign=False))
    means = {v: float(rows.loc[rows[key] == v, column].astype(float).mean()) for v in values}
    finding.evidence.append(
        f"mean {unit[0]} by value: "
        + ", ".join(f"{format_value(v)}: {unit[1](m)}" for v, m in means.items())
    )
    costs = rows[column].astype(float)
    if len(values) < 2 or not (costs > 0).all():
        finding.evidence.append("needs at least two values with a positive cost")
        return finding
    xs = [numeric(v) for v in rows[key]]
    seeds = int(rows.groupby(key)["run_id"].nunique().min())
    exact = costs.groupby(rows[key]).nunique().max() == 1  # one number per value (parameters)
    if exact or seeds < 2 or len(values) == 2:
        change = means[values[-1]] / means[values[0]] - 1
        interval = Interval(
            change, change, change, seeds, "largest / smallest", single_seed=seeds < 2 and not exact
        )
    else:
        log_change = stats.trend(xs, np.log(costs.to_numpy()))
        interval = Interval(
            math.expm1(log_change.effect),
            math.expm1(log_change.low),
            math.expm1(log_change.high),
            log_change.seeds,
            log_change.method,
        )
    finding.evidence.append(
        f"{format_value(values[-1])} against {format_value(values[0])}: {relative_text(interval)}"
    )
    return judged(finding, interval, margin, direction, relative_text)


# --- checks on each run's curves ---------------------------------------------------------


def per_run_claim(
    rule, claim, study, flags: list[bool], evidence: list[str], criterion: str
) -> Finding:
    """A check made on each seed's run: holds in all, contradicted in none, else inconclusive."""
    k, n = sum(flags), len(flags)
    if n == 0:
        verdict = INCONCLUSIVE
    elif k == n:
        verdict = HOLDS
    elif k == 0:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    seeds = f"{n} (single-seed)" if n == 1 else str(n)
    return Finding(
        rule,
        claim,
        verdict,
        f"{k} of {n} seeds",
        seeds,
        PER_RUN,
        [*evidence, f"criterion: {criterion}"],
        study,
    )


def curve(metrics: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """One run's per-epoch rows, in epoch order."""
    return metrics[metrics["run_id"] == run_id].sort_values("epoch")
