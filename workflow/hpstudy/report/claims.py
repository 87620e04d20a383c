"""The claim engine behind ``findings.md``: a claim, its verdict and the evidence for it.

A verdict states its effect, the effect's interval (95 % for that claim alone, or the look's
level in a sequential sweep), the seeds and the practical margin, and is one of *holds*,
*contradicted*, *no practical difference* or *inconclusive* (:mod:`hpstudy.core.stats`); a claim the
runs cannot test says *not testable here* and why.

- Two groups are compared **paired by design** when they ran the same seeds from the same
  initial weights in the same image order (the same model, kernel widths, image size and
  training split): seed by seed on the shared seeds. Otherwise Welch. The evidence names the
  method and, when paired, the pairs' correlation. With one seed, accuracies are compared on
  the shared test images (or by their binomial errors) and labelled single-seed; any other
  measured quantity has no interval with one seed. One seed never yields "no practical
  difference" for a measured quantity; exact quantities (parameter counts) need no seeds.
- Accuracy margins: ``findings.margin`` (2 points) or twice the test split's binomial error,
  whichever is larger; losses: a relative change of 10 %; costs: 10 % (time), 5 % (memory,
  parameters).
- A monotone claim ("smaller batches reach a higher accuracy") holds when the extremes differ
  in its direction and no adjacent step is contradicted; it is contradicted when any step is,
  each step judged at alpha divided by the number of steps.
- A claim made of several comparisons gets the weakest of their verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.core import schema, stats
from hpstudy.core.formatting import (
    format_value,
    pct,
    points_interval,
    points_size,
    relative,
    relative_interval,
    sort_key,
)
from hpstudy.core.paths import PREDICTIONS
from hpstudy.core.run_record import instability
from hpstudy.core.stats import CONTRADICTED, HOLDS, INCONCLUSIVE, Interval
from hpstudy.report.tables import final_accuracies

MARGIN = schema.default("findings", "margin")  # practical margin of an accuracy claim
LOSS_MARGIN = 0.10  # loss claims: a relative change of 10 %
TIME_MARGIN = 0.10  # epoch time: a relative change of 10 %
COST_MARGIN = 0.05  # parameters and memory: a relative change of 5 %
PER_RUN = "per run"
NOT_TESTABLE = "not testable here"
NO_VERDICT = "no verdict"  # the post takes no side: the measured change, reported
POST, BEYOND, APPLIED = "post", "beyond", "applied"  # the three tables of findings.md
EXACT_COLUMNS = ("param_count", "conv_param_count", "fc_param_count")  # the same on every seed
# what sets a run's initial weights and image order besides its seed: two groups equal in
# these and run on the same seeds start alike and see the images alike (paired by design)
PAIRING_KEYS = ("model", "pretrained", "kernel_width", "image_size", "train_on", "val_fraction")


@dataclass
class Finding:
    """One claim, its verdict and what stands behind it."""

    rule: str
    claim: str
    verdict: str
    effect: str = ""  # the effect with its interval, as people read it
    seeds: str = ""
    margin: str = ""
    evidence: list[str] = field(default_factory=list)
    study: str | None = None
    resolve: int | None = None  # about how many seeds would resolve an inconclusive verdict
    says: str = ""  # the post's sentence, paraphrased in one line (first table only)
    table: str = POST  # POST, BEYOND or APPLIED
    key: str = ""  # a stable name of the claim within its study (sequential looks)
    settings: list[str] = field(default_factory=list)  # the run names it compares
    interval: bool = False  # judged on an interval (sequential looks settle only these)
    looks: str = ""  # sequential: the looks and seeds it took and why it stopped


@dataclass
class Context:
    """What every claim reads: the tables, the run folders, the margin and the level."""

    summary: pd.DataFrame
    metrics: pd.DataFrame
    runs_dir: Path | None = None
    margin: float = MARGIN
    level: float = stats.LEVEL


def accuracy_margin(rows: pd.DataFrame, margin: float) -> float:
    """The configured margin, raised to twice the test set's binomial standard error."""
    n = int(rows["test_count"].iloc[0]) if "test_count" in rows else 0
    if n <= 0:
        return margin
    return max(margin, 2 * stats.binomial_se(float(np.mean(final_accuracies(rows))), n))


def chance(rows: pd.DataFrame, ctx: Context | None = None) -> float:
    """Chance on the test split: the largest class's share, from the tables or (tables built
    before that column) the saved labels; 1 / classes without either."""
    if "chance" in rows and rows["chance"].notna().any():
        return float(rows["chance"].astype(float).max())
    path = ctx.runs_dir / rows["run_id"].iloc[0] / PREDICTIONS if ctx and ctx.runs_dir else None
    if path is not None and path.is_file():
        with np.load(path) as saved:
            labels = saved["label"].astype(int)
        if len(labels):
            return float(np.bincount(labels).max() / len(labels))
    return 1 / float(rows["num_classes"].iloc[0])


def points_text(interval: Interval) -> str:
    """``+3.1 points [-0.4, +6.6]`` (a fraction shown in percentage points)."""
    return points_interval(interval.effect, interval.low, interval.high)


def relative_text(interval: Interval) -> str:
    """``-42% [-48%, -35%]``."""
    return relative_interval(interval.effect, interval.low, interval.high)


def seeds_text(interval: Interval) -> str:
    """The seeds behind an interval, labelled when there is one."""
    return f"{interval.seeds} (single-seed)" if interval.single_seed else str(interval.seeds)


def study_rows(summary: pd.DataFrame, study: str) -> tuple[pd.DataFrame, str]:
    """The rows of a one-key study and the key it sweeps."""
    rows = summary[summary["study"] == study]
    return rows, str(rows["study_params"].iloc[0])


def values_of(rows: pd.DataFrame, key: str) -> list:
    """The study's swept values, in order."""
    return sorted(rows[key].drop_duplicates().tolist(), key=sort_key)


def at(rows: pd.DataFrame, key: str, value) -> pd.DataFrame:
    """The rows of one swept value, in seed order."""
    return rows[rows[key] == value].sort_values("seed")


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


def paired_by_design(rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> bool:
    """Whether two groups start alike and see the images alike on each seed."""
    for key in PAIRING_KEYS:
        if key in rows_a and key in rows_b:
            both = pd.concat([rows_a[key], rows_b[key]]).astype(str)
            if both.nunique() > 1:
                return False
    return True


def single_seed_accuracy(ctx: Context, rows_a, rows_b) -> Interval:
    """One seed: the paired interval on the two runs' test predictions (binomial when they
    are absent or a run diverged)."""
    first_a, first_b = rows_a.iloc[0], rows_b.iloc[0]
    a, b = final_accuracies(rows_a.iloc[:1]), final_accuracies(rows_b.iloc[:1])
    correct_a, correct_b = correctness(ctx, first_a["run_id"]), correctness(ctx, first_b["run_id"])
    diverged = bool(first_a["diverged"]) or bool(first_b["diverged"])
    shared = correct_a is not None and correct_b is not None and len(correct_a) == len(correct_b)
    if shared and not diverged:
        return stats.paired(correct_a, correct_b, ctx.level)
    return stats.single_run_difference(a[0], b[0], int(first_a["test_count"]), ctx.level)


def difference(
    ctx: Context,
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    value: Callable[[pd.DataFrame], np.ndarray] = final_accuracies,
    accuracy: bool = True,
    level: float | None = None,
    value_b: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> tuple[Interval, str]:
    """``mean(value(rows_a)) - mean(value_b(rows_b))`` (``value_b``: ``value`` by default) and
    how it was compared: paired by seed when the design pairs them, else Welch; one seed as
    :func:`single_seed_accuracy` says for accuracies, without an interval for anything else."""
    level = ctx.level if level is None else level
    value_b = value_b or value
    shared = sorted(set(rows_a["seed"]) & set(rows_b["seed"]))
    if len(shared) >= 2 and paired_by_design(rows_a, rows_b):
        a = value(rows_a[rows_a["seed"].isin(shared)].sort_values("seed"))
        b = value_b(rows_b[rows_b["seed"].isin(shared)].sort_values("seed"))
        interval = stats.paired_seeds(a, b, level)
        r = stats.correlation(a, b)
        how = f"paired by seed, {len(shared)} pairs, correlation " + (
            "undefined (no spread)" if r is None else f"{r:.2f}"
        )
        return interval, how
    a, b = value(rows_a), value_b(rows_b)
    if len(a) >= 2 and len(b) >= 2:
        return stats.welch(a, b, level), "Welch (not paired by design)"
    if accuracy and value is final_accuracies and value_b is final_accuracies:
        interval = single_seed_accuracy(ctx, rows_a, rows_b)
        return interval, interval.method
    effect = float(np.mean(a) - np.mean(b))
    return Interval(effect, -math.inf, math.inf, 1, "one seed", single_seed=True), "one seed"


def judged(finding: Finding, interval: Interval, margin: float, direction: int, text) -> Finding:
    """Fill a finding's verdict, effect, seeds, margin and resolve hint from its interval."""
    finding.verdict = stats.decide(interval, margin, direction)
    finding.effect = text(interval)
    finding.seeds = seeds_text(interval)
    finding.interval = True
    if finding.verdict == INCONCLUSIVE:
        finding.resolve = stats.seeds_to_resolve(interval, margin)
    return finding


def not_testable(finding: Finding, why: str) -> Finding:
    """A claim these runs cannot test, and why."""
    finding.verdict = NOT_TESTABLE
    finding.effect = why
    finding.evidence.append(f"not testable here: {why}")
    return finding


def names(*groups: pd.DataFrame) -> list[str]:
    """The run names (settings) of the groups a claim compares."""
    return list(dict.fromkeys(str(n) for g in groups for n in g["name"]))


# --- accuracy claims ------------------------------------------------------------------


def two_group_claim(ctx, finding, rows_a, rows_b, direction, what, value=None) -> Finding:
    """``finding`` judged on ``rows_a`` beating ``rows_b`` (direction +1) in final test
    accuracy, or in the accuracy ``value`` reads."""
    margin = accuracy_margin(pd.concat([rows_a, rows_b]), ctx.margin)
    finding.margin = points_size(margin)
    finding.settings = names(rows_a, rows_b)
    interval, how = difference(ctx, rows_a, rows_b, value or final_accuracies)
    finding.evidence.append(f"{what}: {points_text(interval)} ({how})")
    return judged(finding, interval, margin, direction, points_text)


def loss_claim(ctx, finding, rows_a, rows_b, value, what, value_b=None) -> Finding:
    """``finding`` judged on the loss ``value`` of ``rows_a`` lying above ``value_b`` (default
    ``value``) of ``rows_b`` by more than ``LOSS_MARGIN`` of the latter (a relative change)."""
    value_b = value_b or value
    finding.margin = relative(LOSS_MARGIN, sign=False)
    finding.settings = names(rows_a, rows_b)
    interval, how = difference(ctx, rows_a, rows_b, value, accuracy=False, value_b=value_b)
    base = float(np.mean(value_b(rows_b)))
    if not base > 0:
        return not_testable(finding, f"{what}: the reference loss is not positive")
    rel = interval.scaled(1 / base)
    finding.evidence.append(f"{what}: {relative_text(rel)} of the reference ({how})")
    return judged(finding, rel, LOSS_MARGIN, +1, relative_text)


def monotone_claim(ctx, finding, rows, key, direction, value=None) -> Finding:
    """``finding`` judged on final test accuracy moving in ``direction`` as the swept value
    grows: the largest against the smallest value, and each adjacent step at alpha / steps."""
    values = values_of(rows, key)
    finding.evidence.append("mean final test accuracy by value: " + by_value(rows, key, values))
    if len(values) < 2:
        return not_testable(finding, "the study has one value only")
    value = value or final_accuracies
    margin = accuracy_margin(rows, ctx.margin)
    first, last = at(rows, key, values[0]), at(rows, key, values[-1])
    finding = two_group_claim(
        ctx,
        finding,
        last,
        first,
        direction,
        f"{format_value(values[-1])} minus {format_value(values[0])}",
        value,
    )
    finding.settings = names(rows)
    steps = list(zip(values, values[1:], strict=False))
    if len(steps) < 2:
        return finding
    level = 1 - (1 - ctx.level) / len(steps)
    for low, high in steps:
        interval, how = difference(ctx, at(rows, key, high), at(rows, key, low), value, level=level)
        step = stats.decide(interval, margin, direction)
        finding.evidence.append(
            f"step {format_value(low)} -> {format_value(high)}: {points_text(interval)} "
            f"({how}; {level * 100:.1f}% interval): {step}"
        )
        if step == CONTRADICTED:
            finding.verdict, finding.resolve = CONTRADICTED, None
    return finding


def by_value(rows: pd.DataFrame, key: str, values: list) -> str:
    """``10: 82.4% (3 seeds), 256: 81.2% (3 seeds)``."""
    parts = []
    for value in values:
        accs = final_accuracies(rows[rows[key] == value])
        parts.append(f"{format_value(value)}: {pct(float(np.mean(accs)))} ({len(accs)} seeds)")
    return ", ".join(parts)


def cost_claim(ctx, finding, rows, key, column, direction, margin, unit) -> Finding:
    """``finding`` judged on a cost (epoch time, parameters, memory) growing or falling with
    the value: the relative change from the smallest to the largest value (a line through the
    log of the cost over every (value, seed) point). Parameter counts are exact; any other
    cost measured on one seed is single-seed."""
    values = values_of(rows, key)
    finding.margin = relative(margin, sign=False)
    finding.settings = names(rows)
    means = {v: float(rows.loc[rows[key] == v, column].astype(float).mean()) for v in values}
    finding.evidence.append(
        f"mean {unit[0]} by value: "
        + ", ".join(f"{format_value(v)}: {unit[1](m)}" for v, m in means.items())
    )
    costs = rows[column].astype(float)
    if len(values) < 2 or not (costs > 0).all():
        return not_testable(finding, "needs at least two values with a positive cost")
    seeds = int(rows.groupby(key)["run_id"].nunique().min())
    exact = column in EXACT_COLUMNS
    if exact or seeds < 2 or len(values) == 2:
        change = means[values[-1]] / means[values[0]] - 1
        single = seeds < 2 and not exact
        interval = Interval(change, change, change, seeds, "largest / smallest", single)
        if len(values) == 2 and seeds >= 2 and not exact:
            ratio, _ = difference(
                ctx, at(rows, key, values[-1]), at(rows, key, values[0]), _log(column), False
            )
            interval = expm1(ratio, seeds)
    else:
        xs = [numeric(v) for v in rows[key]]
        log_change = stats.trend(xs, np.log(costs.to_numpy()), level=ctx.level)
        interval = expm1(log_change, seeds)
    finding.evidence.append(
        f"{format_value(values[-1])} against {format_value(values[0])}: {relative_text(interval)}"
    )
    return judged(finding, interval, margin, direction, relative_text)


def expm1(log_interval: Interval, seeds: int) -> Interval:
    """An interval of a log ratio as a relative change."""
    low, high = math.expm1(log_interval.low), math.expm1(log_interval.high)
    return Interval(math.expm1(log_interval.effect), low, high, seeds, log_interval.method)


def _log(column: str) -> Callable[[pd.DataFrame], np.ndarray]:
    return lambda rows: np.log(rows[column].astype(float).to_numpy())


# --- checks on each run's curves ---------------------------------------------------------


def per_run_claim(finding: Finding, flags: list[bool], evidence: list[str], criterion: str):
    """``finding`` judged by a check made on each seed's run: holds in all, contradicted in
    none, else inconclusive."""
    k, n = sum(flags), len(flags)
    if n == 0:
        verdict = INCONCLUSIVE
    elif k == n:
        verdict = HOLDS
    elif k == 0:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    finding.verdict, finding.effect, finding.margin = verdict, f"{k} of {n} seeds", PER_RUN
    finding.seeds = f"{n} (single-seed)" if n == 1 else str(n)
    finding.evidence += [*evidence, f"criterion: {criterion}"]
    return finding


def curve(metrics: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """One run's per-epoch rows, in epoch order."""
    return metrics[metrics["run_id"] == run_id].sort_values("epoch")


def unstable_reason(ctx: Context, run: pd.Series) -> str:
    """Why a run is unstable (empty when it is not): the tables' ``unstable`` cell, or, for
    tables built before that column existed, the same rule applied to its curve here."""
    if "unstable" in run.index:
        reason = run["unstable"]
        return reason if isinstance(reason, str) else ""
    rows = curve(ctx.metrics, run["run_id"]).to_dict("records")
    correct = correctness(ctx, run["run_id"])
    predicted = None
    if correct is not None:
        with np.load(ctx.runs_dir / run["run_id"] / PREDICTIONS) as saved:
            predicted = int(len(np.unique(saved["pred"])))
    test_count = int(run["test_count"]) if pd.notna(run.get("test_count")) else None
    return instability(rows, int(run["num_classes"]), test_count, predicted) or ""


def curve_values(ctx: Context, column: str, pick: Callable[[np.ndarray], float]):
    """A per-run number read from each run's curve (e.g. its lowest train loss), in row order."""

    def read(rows: pd.DataFrame) -> np.ndarray:
        return np.array(
            [pick(curve(ctx.metrics, rid)[column].to_numpy(float)) for rid in rows["run_id"]]
        )

    return read
