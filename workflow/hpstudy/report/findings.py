"""``findings.md``: a verdict on each of the post's rules, with its statistics.

Studies are found by the setting they sweep alone (``study_params``), never by their name. Each
verdict states its effect, the effect's 95 % interval across seeds, the number of seeds and the
practical margin, and is one of *holds*, *contradicted*, *no practical difference* or
*inconclusive* (:mod:`hpstudy.core.stats`); an inconclusive one says roughly how many seeds would
resolve it. Accuracy claims compare final test accuracies, with a diverged run counted at
chance. The margin of an accuracy claim is ``findings.margin`` (2 points) or twice the test
set's binomial standard error, whichever is larger. Checks made on each run's curves
(underfitting, overfitting, instability) report in how many seeds they hold.

With one seed, an accuracy claim's interval comes from the test set alone: a paired interval
on the per-image predictions of the two runs it compares (they share the test set), labelled
single-seed; one seed never yields "no practical difference".
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hpstudy.core import schema, stats
from hpstudy.core.atomic import atomic_write_json, atomic_write_text
from hpstudy.core.formatting import (
    format_value,
    pct,
    pct_interval,
    points,
    points_interval,
    relative,
    relative_interval,
    setting_label,
    sort_key,
)
from hpstudy.core.paths import PREDICTIONS
from hpstudy.core.run_record import DIVERGENCE_RULE
from hpstudy.core.stats import CONTRADICTED, HOLDS, INCONCLUSIVE, NO_DIFFERENCE, Interval
from hpstudy.report import post_runs
from hpstudy.report.tables import final_accuracies, read_table, read_tables

MARGIN = schema.default("findings", "margin")  # practical margin of an accuracy claim
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
    if interval.low == interval.high:
        return f"{points(interval.effect)} (no spread)"
    return points_interval(interval.effect, interval.low, interval.high)


def relative_text(interval: Interval) -> str:
    """``-42% [-48%, -35%]``."""
    if interval.low == interval.high:
        return f"{relative(interval.effect)} (no spread)"
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
    finding = Finding(rule, claim, INCONCLUSIVE, study=study, margin=points(margin, signed=False))
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
    finding = Finding(rule, claim, INCONCLUSIVE, study=study, margin=points(margin, signed=False))
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
    finding = Finding(rule, claim, INCONCLUSIVE, study=study, margin=relative(margin, signed=False))
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


def lowest_lr_underfits(ctx: Context, study: str) -> Finding:
    rows, key = study_rows(ctx.summary, study)
    lowest = values_of(rows, key)[0]
    flags, evidence = [], []
    for run_id in rows.loc[rows[key] == lowest, "run_id"]:
        loss = curve(ctx.metrics, run_id)["test_loss"].to_numpy(float)
        if len(loss) < 2:
            evidence.append(f"{run_id}: one epoch only")
            continue
        falling = bool(loss[-1] < loss[-2] * (1 - LOSS_REL_TOL))
        flags.append(falling)
        evidence.append(f"{run_id}: test loss {loss[-2]:.4f} -> {loss[-1]:.4f} over the last epoch")
    return per_run_claim(
        "Learning rate",
        f"the lowest learning rate ({format_value(lowest)}) underfits: its test loss is still "
        "falling at the last epoch",
        study,
        flags,
        evidence,
        f"test loss falls by more than {LOSS_REL_TOL * 100:g}% over the last epoch",
    )


def highest_lr_unstable(ctx: Context, study: str) -> Finding:
    rows, key = study_rows(ctx.summary, study)
    highest = values_of(rows, key)[-1]
    flags, evidence = [], []
    for _, run in rows[rows[key] == highest].iterrows():
        acc = curve(ctx.metrics, run["run_id"])["test_acc"].to_numpy(float)
        drops = -np.diff(acc) if len(acc) > 1 else np.array([0.0])
        worst = float(np.nanmax(drops)) if np.isfinite(drops).any() else 0.0
        diverged = bool(run["diverged"])
        flags.append(diverged or worst > INSTABILITY_DROP)
        reason = f"diverged ({run.get('diverged_reason')})" if diverged else "did not diverge"
        evidence.append(
            f"{run['run_id']}: {reason}; largest epoch-to-epoch drop in test "
            f"accuracy {points(worst, signed=False)}"
        )
    return per_run_claim(
        "Learning rate",
        f"the highest learning rate ({format_value(highest)}) is unstable",
        study,
        flags,
        evidence,
        f"the run diverged ({DIVERGENCE_RULE}) or its test accuracy fell by more than "
        f"{INSTABILITY_DROP * 100:g} points between consecutive epochs",
    )


def overfits_at_best_lr(ctx: Context, study: str) -> Finding:
    rows, key = study_rows(ctx.summary, study)
    means = {
        v: float(np.mean(final_accuracies(rows[rows[key] == v]))) for v in values_of(rows, key)
    }
    good = max(means, key=means.get)
    flags, evidence = [], []
    for run_id in rows.loc[rows[key] == good, "run_id"]:
        runs = curve(ctx.metrics, run_id)
        test, train = runs["test_loss"].to_numpy(float), runs["train_loss"].to_numpy(float)
        at = int(np.nanargmin(test))
        rise = test[-1] / test[at] - 1
        overfits = bool(at < len(test) - 1 and rise > OVERFIT_RISE and train[-1] < train[at])
        flags.append(overfits)
        epoch = int(runs["epoch"].iloc[at])
        text = (
            f"{run_id}: test loss lowest at epoch {epoch} ({test[at]:.4f}), {test[-1]:.4f} at "
            f"the end ({pct(rise, signed=True)}); train loss {train[at]:.4f} -> {train[-1]:.4f}"
        )
        evidence.append(text + (f"; overfitting from epoch {epoch + 1}" if overfits else ""))
    return per_run_claim(
        "Overfitting",
        f"at a good learning rate ({format_value(good)}, the best mean final test accuracy) test "
        "loss rises after its minimum while train loss keeps falling",
        study,
        flags,
        evidence,
        f"final test loss more than {OVERFIT_RISE * 100:g}% above its minimum and final train "
        "loss below the train loss at that minimum",
    )


# --- the rules ------------------------------------------------------------------------


def learning_rate_findings(ctx: Context, study: str) -> list[Finding]:
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)
    found = []
    if len(values) >= 3:
        means = {v: float(np.mean(final_accuracies(rows[rows[key] == v]))) for v in values}
        middle = max(values[1:-1], key=means.get)
        end = max((values[0], values[-1]), key=means.get)
        found.append(
            two_group_claim(
                ctx,
                "Learning rate",
                "a middle learning rate beats both the lowest and the highest",
                study,
                rows[rows[key] == middle],
                rows[rows[key] == end],
                +1,
                f"best middle value {format_value(middle)} minus the better end "
                f"{format_value(end)}",
            )
        )
        found[-1].evidence.insert(
            0, "mean final test accuracy by value: " + by_value(rows, key, values)
        )
    found += [
        lowest_lr_underfits(ctx, study),
        highest_lr_unstable(ctx, study),
        overfits_at_best_lr(ctx, study),
    ]
    return found


def seconds(x: float) -> str:
    return f"{x:.2f} s"


def batch_size_findings(ctx: Context, study: str) -> list[Finding]:
    return [
        trend_claim(
            ctx, "Batch size", "smaller batches reach a higher final test accuracy", study, -1
        ),
        cost_claim(
            ctx,
            "Batch size",
            "larger batches take less time per epoch",
            study,
            "mean_epoch_time_s",
            -1,
            TIME_MARGIN,
            ("epoch time", seconds),
        ),
    ]


def kernel_width_findings(ctx: Context, study: str) -> list[Finding]:
    def millions(x: float) -> str:
        return f"{x / 1e6:.4f} M"

    def megabytes(x: float) -> str:
        return f"{x:.0f} MB"

    rule = "Kernel width"
    params = cost_claim(
        ctx,
        rule,
        "wider kernels have more parameters (in the convolutions)",
        study,
        "conv_param_count",
        +1,
        COST_MARGIN,
        ("convolution parameters", millions),
    )
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)
    totals = {
        v: float(rows.loc[rows[key] == v, "param_count"].astype(float).mean()) for v in values
    }
    params.evidence.append(
        "in all (convolutions and fully connected layers): "
        + ", ".join(f"{format_value(v)}: {millions(t)}" for v, t in totals.items())
        + ". The total falls as kernels widen because the convolutions have no padding to make "
        "up for a wider kernel: each layer's output shrinks, so the flattened feature map that "
        "feeds the first fully connected layer, which holds most of the parameters, gets smaller."
    )
    return [
        trend_claim(ctx, rule, "wider kernels reach a higher final test accuracy", study, +1),
        params,
        cost_claim(
            ctx,
            rule,
            "wider kernels take more time per epoch",
            study,
            "mean_epoch_time_s",
            +1,
            TIME_MARGIN,
            ("epoch time", seconds),
        ),
        cost_claim(
            ctx,
            rule,
            "wider kernels need more memory",
            study,
            "peak_memory_mb",
            +1,
            COST_MARGIN,
            ("peak memory", megabytes),
        ),
    ]


def weight_decay_findings(ctx: Context, study: str) -> list[Finding]:
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)
    if len(values) < 2:
        return [
            Finding(
                "Weight decay",
                "an extreme weight decay stops learning",
                INCONCLUSIVE,
                study=study,
                evidence=["needs at least two weight decays"],
            )
        ]
    largest, smallest = rows[rows[key] == values[-1]], rows[rows[key] == values[0]]
    finding = two_group_claim(
        ctx,
        "Weight decay",
        f"an extreme weight decay ({format_value(values[-1])}) stops learning: far below the "
        f"smallest ({format_value(values[0])})",
        study,
        largest,
        smallest,
        -1,
        f"{format_value(values[-1])} minus {format_value(values[0])}",
    )
    chance = 1 / float(rows["num_classes"].iloc[0])
    finding.evidence.insert(0, "mean final test accuracy by value: " + by_value(rows, key, values))
    finding.evidence.append(
        f"chance is {pct(chance)}; the largest weight decay ends at "
        f"{pct(float(np.mean(final_accuracies(largest))))} on average"
    )
    return [finding]


RULES = {
    "lr": ("Learning rate", learning_rate_findings),
    "batch_size": ("Batch size", batch_size_findings),
    "kernel_width": ("Kernel width", kernel_width_findings),
    "weight_decay": ("Weight decay", weight_decay_findings),
}


def compute_findings(ctx: Context) -> list[Finding]:
    """Every verdict for the studies that sweep one of the post's settings alone."""
    found: list[Finding] = []
    studies = ctx.summary.drop_duplicates("study")[["study", "study_params"]]
    for param, (_, judge) in RULES.items():
        for study in studies.loc[studies["study_params"] == param, "study"]:
            found += judge(ctx, study)
    return found


# --- findings.md --------------------------------------------------------------------------


def verdict_cell(f: Finding) -> str:
    text = f"**{f.verdict}**"
    if f.verdict == INCONCLUSIVE and f.resolve:
        more = (
            f"> {stats.MAX_SEEDS_ADVICE}" if f.resolve > stats.MAX_SEEDS_ADVICE else f"~{f.resolve}"
        )
        text += f" ({more} seeds per value would resolve it)"
    return text


def verdict_table(found: list[Finding]) -> list[str]:
    lines = [
        "| rule | claim | verdict | effect (95% CI) | seeds | margin |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in found:
        lines.append(
            f"| {f.rule} | {f.claim} | {verdict_cell(f)} | {f.effect} | {f.seeds} | {f.margin} |"
        )
    return lines


def other_studies(summary: pd.DataFrame) -> list[str]:
    """Studies that sweep none of the post's settings alone: no rule to judge, their table."""
    lines = []
    studies = summary.drop_duplicates("study")
    for _, row in studies[~studies["study_params"].isin(RULES)].iterrows():
        rows = summary[summary["study"] == row["study"]]
        keys = str(row["study_params"]).split(",")
        lines += [
            f"### Study `{row['study']}` ({' x '.join(setting_label(k) for k in keys)})",
            "",
            "No rule of the post is about this study, so there is no verdict to give; its "
            "mean final test accuracy (95% interval over seeds):",
            "",
            f"| {' | '.join(keys)} | final test accuracy | seeds |",
            "| " + " | ".join("---" for _ in keys) + " | --- | --- |",
        ]
        groups = sorted(
            rows.groupby(keys, sort=False), key=lambda g: tuple(sort_key(v) for v in g[0])
        )
        for point, group in groups:
            accs = final_accuracies(group)
            cell = pct(float(np.mean(accs)))
            if len(accs) >= 2:
                interval = stats.one_sample(accs, 0.0)  # shown within the possible 0-100%
                cell += f" [{pct(max(interval.low, 0.0))}, {pct(min(interval.high, 1.0))}]"
            lines.append(f"| {' | '.join(format_value(v) for v in point)} | {cell} | {len(accs)} |")
        lines.append("")
    return lines


def comparison_section(comparison: pd.DataFrame) -> list[str]:
    """The post's own runs beside ours, the headline first."""
    lines = ["## The post's own runs beside ours", ""]
    labelled = comparison[comparison["kind"] == "labelled"]
    if labelled.empty:
        return lines + [
            "No setting of this sweep is one of the post's runs, so nothing is compared (rule: "
            f"{post_runs.MATCH_RULE}). This is expected on any data other than the Intel images "
            f"at {post_runs.POST_IMAGE_SIZE} px.",
            "",
        ]
    reproduced = labelled.loc[labelled["reproduced"].astype(bool), "post_run"].nunique()
    lines += [
        f"**{reproduced} of {labelled['post_run'].nunique()} post runs reproduced**: the post's "
        "final test accuracy lies within 3 points of our mean over seeds (the interval is shown "
        f"as context). Rule: {post_runs.MATCH_RULE}.",
        "",
        "| post run | our run | weight decay | seeds | ours (95% CI) | post | ours - post | "
        "reproduced | per-epoch mean abs. difference (accuracy, loss) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, row in labelled.iterrows():
        ours = pct(row["final_test_acc_mean"])
        if row["seeds"] >= 2:
            low, high = max(row["final_test_acc_low"], 0.0), min(row["final_test_acc_high"], 1.0)
            ours += f" [{pct(low)}, {pct(high)}]"
        cells = [
            f"{row['post_run']} ({row['post_experiment']})",
            f"`{row['run_name']}`",
            f"{format_value(row['weight_decay'])} ({row['weight_decay_source']})",
            str(row["seeds"]),
            ours,
            pct(row["post_final_test_acc"]),
            points(row["final_test_acc_diff"]),
            "yes" if row["reproduced"] else "no",
            f"{points(row['epoch_test_acc_mad'], signed=False)}, {row['epoch_test_loss_mad']:.3f}",
        ]
        lines.append(f"| {' | '.join(cells)} |")
    unlabelled = comparison[comparison["kind"] == "unlabelled"]
    if not unlabelled.empty:
        lines += [
            "",
            "The post's unlabelled runs (kernel widths unknown; never counted above), "
            "beside each of our runs that matches them but for the kernel widths: "
            + "; ".join(
                f"{r.post_run} ({pct(r.post_final_test_acc)}) vs `{r.run_name}` "
                f"({pct(r.final_test_acc_mean)})"
                for r in unlabelled.itertuples()
            )
            + ".",
        ]
    return [*lines, ""]


# with selection.on_test the test split chose the winner: its test number is no clean estimate
ON_TEST_FINAL = (
    "not a number to report as it stands: the winners were selected on the test set, so their "
    "test accuracy is optimistic, and a final run with the settings and seed of a run of the "
    "sweep is that run itself (the very number that won). Say that it was selected on the test "
    "set, or hold out a validation split (`dataset.val_fraction`) for an unbiased number."
)


def selection_section(best: dict, final: pd.DataFrame | None) -> list[str]:
    """The winners (best.yaml) and, when retrained, their test accuracy (final.csv)."""
    lines = [
        "## Selected and final",
        "",
        f"Each study's winner, {best['note']}: the best mean {best['metric']} "
        f"({best['epoch']} epoch) over seeds, with its 95% interval; separable means the "
        "interval of its lead over the runner-up excludes zero.",
        "",
        "| study | winner | " + best["metric"] + " | runner-up | lead | separable |",
        "|---|---|---|---|---|---|",
    ]
    is_acc = best["metric"].endswith("_acc")
    for study, chosen in best["studies"].items():
        win, runner = chosen["winner"], chosen["runner_up"]
        score = (
            pct_interval(win["mean"], win["low"], win["high"], win["seeds"])
            if is_acc
            else f"{win['mean']:.4f} [{win['low']:.4f}, {win['high']:.4f}] ({win['seeds']} seeds)"
        )
        diff = chosen.get("difference")
        lead = "" if diff is None else points_text(Interval(**diff, seeds=0, method=""))
        if diff is not None and not is_acc:
            lead = f"{diff['effect']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"
        cells = [
            f"`{study}`",
            _values_text(win["values"]),
            score,
            _values_text(runner["values"]) if runner else "none",
            lead,
            {True: "yes", False: "no", None: "n/a (fewer than 2 seeds)"}[chosen["separable"]],
        ]
        lines.append(f"| {' | '.join(cells)} |")
    if final is not None and not final.empty:
        lines += [
            "",
            "The winners retrained (on the split named below, for the selected number of "
            "epochs) and evaluated on the test split once: "
            + (ON_TEST_FINAL if best.get("selected_on") == "test" else "the number to report."),
            "",
            "| study | winner | trained on | epochs | test accuracy |",
            "|---|---|---|---|---|",
        ]
        for row in final.itertuples():
            accuracy = pct_interval(
                row.test_acc_mean, row.test_acc_low, row.test_acc_high, row.seeds
            )
            lines.append(
                f"| `{row.study}` | {row.winner} | {row.train_on} | {row.epochs} | {accuracy} |"
            )
    return [*lines, ""]


def audit_section(audit: dict, manifest: dict | None) -> list[str]:
    """The data audit (audit.json): identical images, leakage, label conflicts, near
    duplicates, with a few example paths; and what `drop_leaks` removed."""
    counts, near = audit["counts"], audit["near_duplicates"]
    lines = [
        "## Data audit",
        "",
        f"{audit['summary']}, over {audit['images']} images (from `hpstudy audit`).",
        "",
        f"- identical-image groups: {counts['duplicate_groups']} "
        f"({counts['images_in_duplicate_groups']} images)",
        f"- groups spanning train and test/validation (leakage): {counts['cross_split_groups']}",
        f"- groups under more than one class (label conflicts): {counts['label_conflict_groups']}",
        f"- near-duplicate pairs (perceptual hashes at most {near['bits']} bits apart): "
        f"{near['pairs']}, {near['cross_split_pairs']} of them across train and test/validation "
        f"({near['low_variance_skipped']} low-variance images left out)",
    ]
    for key, title in (("cross_split_groups", "Leakage"), ("label_conflict_groups", "Conflicts")):
        for group in audit[key][:3]:
            lines.append(
                f"- {title}: {group['count']} copies in {', '.join(group['splits'])} "
                f"({', '.join(group['classes'])}), e.g. "
                + ", ".join(f"`{m}`" for m in group["examples"])
            )
    phantom = (manifest or {}).get("classes_dropped")
    if phantom:
        lines.append(
            f"- class folders dropped, holding no decodable image: {', '.join(phantom)} (not "
            f"classes: the model has {len(manifest['classes'])} outputs, chance is "
            f"{pct(1 / len(manifest['classes']))})"
        )
    dropped = (manifest or {}).get("leaks_dropped")
    if dropped:
        removed = ", ".join(f"{n} from {split}" for split, n in dropped.items())
        lines.append(f"- `dataset.drop_leaks` removed exact copies of training images: {removed}")
    elif counts["cross_split_groups"]:
        lines.append(
            "- Test accuracy counts images the model also trained on; `dataset.drop_leaks: "
            "true` removes those copies from test and validation."
        )
    return [*lines, ""]


def _values_text(values: dict) -> str:
    return ", ".join(f"{setting_label(k)} {format_value(v)}" for k, v in values.items())


def render_markdown(
    found: list[Finding],
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    sections: list[str] = (),
) -> str:
    """``findings.md``: the verdict table first, then the evidence per rule, other studies,
    the extra ``sections`` (selection, audit) and the comparison with the post."""
    n_runs, seeds = (
        summary["run_id"].nunique(),
        int(summary.groupby(["study", "name"])["run_id"].nunique().max()),
    )
    lines = [
        "# Findings: do the post's rules hold in this sweep?",
        "",
        *(verdict_table(found) + [""] if found else []),
        f"Computed by `hpstudy findings` from {n_runs} runs (up to {seeds} seeds per setting). "
        "Each verdict compares the 95% interval of its effect with a practical margin in the "
        "claimed direction: **holds** (beyond it), **contradicted** (beyond it the other way), "
        "**no practical difference** (inside it), **inconclusive** otherwise. Accuracy effects "
        "are differences of mean final test accuracy, diverged runs counted at chance; trends "
        "over three or more values fit a line through every (value, seed) point, on the log of "
        "the value where the values span two decades or more. Checks on each run's curves "
        "count the seeds in which they hold.",
    ]
    if any(f.verdict == INCONCLUSIVE for f in found):
        lines += [
            "",
            "Inconclusive is an honest answer here: with few seeds the interval is "
            "wider than the margin; the table says roughly how many seeds would decide.",
        ]
    if not found:
        lines += [
            "",
            "No study here sweeps one of the post's settings (learning rate, batch "
            "size, kernel width, weight decay) alone, so no rule of the post is judged.",
        ]
    for rule in dict.fromkeys(f.rule for f in found):
        lines += ["", f"## {rule}", ""]
        for f in (f for f in found if f.rule == rule):
            lines.append(f"- **{f.verdict.upper()}**: {f.claim} (study `{f.study}`).")
            lines += [f"  - {e}" for e in f.evidence]
    covered = {RULES[p][0] for p in RULES if (summary["study_params"] == p).any()}
    missing = [rule for rule, _ in RULES.values() if rule not in covered]
    if missing and found:
        lines += [
            "",
            f"Not judged here, as no study sweeps that setting alone: {', '.join(missing)}.",
        ]
    others = other_studies(summary)
    if others:
        lines += ["", "## Other studies", "", *others]
    if sections:
        lines += ["", *sections]
    lines += ["", *comparison_section(comparison)]
    return "\n".join(lines).rstrip() + "\n"


def counts(found: list[Finding]) -> dict:
    """Verdict counts, for the DVC metrics."""
    return {
        v.replace(" ", "_"): sum(f.verdict == v for f in found)
        for v in (HOLDS, CONTRADICTED, NO_DIFFERENCE, INCONCLUSIVE)
    }


def write_findings(
    tables: str | Path,
    out: str | Path,
    runs_dir=None,
    margin: float = MARGIN,
    best: str | Path | None = None,
    final: str | Path | None = None,
    audit: str | Path | None = None,
    manifest: str | Path | None = None,
) -> list[Finding]:
    """Compute the verdicts from the tables in ``tables``; write ``findings.md`` and the
    verdict counts (``findings.json``) beside it. ``best`` (best.yaml) and ``final``
    (final.csv) add the selection section, ``audit`` (audit.json, with the data's
    ``manifest``) the data audit."""
    summary, metrics, comparison = read_tables(
        tables, "summary.csv", "metrics.csv", "comparison.csv"
    )
    ctx = Context(summary, metrics, Path(runs_dir) if runs_dir else None, margin)
    found = compute_findings(ctx)
    sections = []
    if best:
        final_rows = read_table(final) if final else None
        sections += selection_section(yaml.safe_load(Path(best).read_text()), final_rows)
    if audit:
        facts = json.loads(Path(manifest).read_text()) if manifest else None
        sections += audit_section(json.loads(Path(audit).read_text()), facts)
    atomic_write_text(out, render_markdown(found, summary, comparison, sections))
    atomic_write_json(Path(out).with_name("findings.json"), {"verdicts": counts(found)})
    return found


def main(argv: list[str] | None = None) -> int:
    """``hpstudy findings``: write ``findings.md`` from the results tables."""
    parser = argparse.ArgumentParser(prog="hpstudy findings", description=__doc__.split("\n")[0])
    parser.add_argument("--tables", required=True, help="the config's results folder")
    parser.add_argument("--runs-dir", help="the run folders (for single-seed paired tests)")
    parser.add_argument("--margin", type=float, default=MARGIN, help="practical margin (fraction)")
    parser.add_argument("--best", help="best.yaml, for the selection section")
    parser.add_argument("--final", help="final.csv, for the final runs' test accuracy")
    parser.add_argument("--audit", help="the data's audit.json, for the audit section")
    parser.add_argument("--manifest", help="the data's manifest (what drop_leaks removed)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    found = write_findings(
        args.tables,
        args.out,
        args.runs_dir,
        args.margin,
        args.best,
        args.final,
        args.audit,
        args.manifest,
    )
    for f in found:
        print(f"{f.verdict:>24}: {f.rule}: {f.claim}")
    return 0
