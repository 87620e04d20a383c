"""``results/findings.md``: a verdict on each rule of the post, computed from this sweep.

Each verdict is one of ``holds``, ``does not hold``, ``inconclusive`` or ``not run`` (no study
sweeps that setting), with the numbers behind it and the threshold used. Studies are found by
the setting they sweep (their ``param``), never by their name. With several seeds a value's
accuracy is the mean over its seeds, and a check made on each run must agree in every seed:
all seeds -> holds, none -> does not hold, some -> inconclusive.

The thresholds are the fields of :class:`Thresholds` (defaults: the module constants).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy import reference
from hpstudy.atomic import atomic_write_text
from hpstudy.formatting import format_value, pct, points, sort_key
from hpstudy.tables import read_tables

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"


@dataclass(frozen=True)
class Thresholds:
    """The margins behind the verdicts (fractions unless the name says otherwise)."""

    acc_margin: float = 0.01  # accuracy gap that counts as a difference
    loss_rel_tol: float = 0.005  # relative change in test loss that counts as still falling
    falling_window: int = 1  # epochs back from the last one over which "still falling" is judged
    instability_drop: float = 0.05  # test-accuracy drop between epochs that counts as unstable
    overfit_rise: float = 0.05  # relative rise of test loss above its minimum: overfitting
    time_rel_margin: float = 0.10  # relative difference in epoch time that counts
    cost_rel_margin: float = 0.05  # relative difference in parameters or memory that counts
    chance_margin: float = 0.10  # accuracy within this of chance counts as not learning


@dataclass
class Finding:
    """One claim of the post with its verdict, the numbers behind it and the threshold."""

    rule: str  # section: "Learning rate", ...
    claim: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    threshold: str = ""
    study: str | None = None


def combine(flags: list[bool]) -> str:
    """A per-run check over seeds: all true -> holds, none -> does not hold, else inconclusive."""
    if not flags:
        return INCONCLUSIVE
    if all(flags):
        return HOLDS
    return FAILS if not any(flags) else INCONCLUSIVE


def compare_gap(gap: float, margin: float) -> str:
    """``gap`` in the claimed direction: above ``margin`` holds, below ``-margin`` does not."""
    if gap > margin:
        return HOLDS
    return FAILS if gap < -margin else INCONCLUSIVE


def studies_sweeping(summary: pd.DataFrame, param: str) -> list[str]:
    """Names of the studies that sweep ``param`` alone, in order of appearance."""
    return list(dict.fromkeys(summary.loc[summary["study_params"] == param, "study"]))


def per_value(summary: pd.DataFrame, study: str, column: str) -> pd.Series:
    """Mean of ``column`` over seeds for each swept value of ``study``, values in order."""
    rows = summary[summary["study"] == study]
    param = rows["study_params"].iloc[0]
    means = rows.groupby(param)[column].mean()
    return means.loc[sorted(means.index, key=sort_key)]


def runs_of(summary: pd.DataFrame, study: str, value) -> pd.DataFrame:
    """Summary rows of ``study`` whose swept value is ``value``."""
    rows = summary[summary["study"] == study]
    return rows[rows[rows["study_params"].iloc[0]] == value]


def curve(metrics: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """One run's per-epoch rows, in epoch order."""
    return metrics[metrics["run_id"] == run_id].sort_values("epoch")


def _values_line(series: pd.Series, fmt: Callable[[float], str] = pct) -> str:
    return ", ".join(f"{format_value(v)}: {fmt(x)}" for v, x in series.items())


# --- learning rate ------------------------------------------------------------------------


def lr_middle_beats_ends(summary: pd.DataFrame, study: str, t: Thresholds) -> Finding:
    """A learning rate between the extremes reaches a higher final test accuracy than both."""
    acc = per_value(summary, study, "final_test_acc")
    finding = Finding(
        "Learning rate",
        "a middle learning rate beats both the lowest and the highest",
        INCONCLUSIVE,
        [f"final test accuracy by lr: {_values_line(acc)}"],
        f"the middle must lead both ends by more than {points(t.acc_margin)}",
        study,
    )
    if len(acc) < 3:
        finding.evidence.append("needs at least three learning rates")
        return finding
    interior, ends = acc.iloc[1:-1], acc.iloc[[0, -1]]
    gap = interior.max() - ends.max()
    finding.verdict = compare_gap(gap, t.acc_margin)
    finding.evidence.append(
        f"best middle value {format_value(interior.idxmax())} at {pct(interior.max())} vs best "
        f"end {format_value(ends.idxmax())} at {pct(ends.max())} (gap {gap * 100:+.1f} points)"
    )
    return finding


def lr_lowest_underfits(
    summary: pd.DataFrame, metrics: pd.DataFrame, study: str, t: Thresholds
) -> Finding:
    """The lowest learning rate underfits: its test loss is still falling at the last epoch."""
    acc = per_value(summary, study, "final_test_acc")
    lowest = acc.index[0]
    finding = Finding(
        "Learning rate",
        f"the lowest learning rate ({format_value(lowest)}) underfits: its test loss is still "
        "falling at the last epoch",
        INCONCLUSIVE,
        threshold=f"test loss at the last epoch below its value {t.falling_window} epoch(s) "
        f"earlier by more than {t.loss_rel_tol * 100:g}%",
        study=study,
    )
    flags = []
    for run_id in runs_of(summary, study, lowest)["run_id"]:
        loss = curve(metrics, run_id)["test_loss"].to_numpy(float)
        if len(loss) <= t.falling_window:
            finding.evidence.append(f"{run_id}: only {len(loss)} epoch(s)")
            return finding
        before, last = loss[-1 - t.falling_window], loss[-1]
        flags.append(bool(last < before * (1 - t.loss_rel_tol)))
        finding.evidence.append(
            f"{run_id}: test loss {before:.4f} -> {last:.4f} over the last "
            f"{t.falling_window} epoch(s) ({(last / before - 1) * 100:+.1f}%)"
        )
    finding.evidence.append(
        f"its final test accuracy {pct(acc.iloc[0])} vs the best lr's {pct(acc.max())}"
    )
    finding.verdict = combine(flags)
    return finding


def lr_highest_unstable(
    summary: pd.DataFrame, metrics: pd.DataFrame, study: str, t: Thresholds
) -> Finding:
    """The highest learning rate is unstable: the run diverged, or its test accuracy drops by
    more than the margin from one epoch to the next."""
    acc = per_value(summary, study, "final_test_acc")
    highest = acc.index[-1]
    finding = Finding(
        "Learning rate",
        f"the highest learning rate ({format_value(highest)}) is unstable",
        INCONCLUSIVE,
        threshold=f"the run diverged, or test accuracy fell by more than "
        f"{points(t.instability_drop)} between consecutive epochs",
        study=study,
    )
    flags = []
    for _, run in runs_of(summary, study, highest).iterrows():
        acc_curve = curve(metrics, run["run_id"])["test_acc"].to_numpy(float)
        drops = -np.diff(acc_curve) if len(acc_curve) > 1 else np.array([0.0])
        worst = float(np.nanmax(drops)) if np.isfinite(drops).any() else 0.0
        diverged = bool(run["diverged"])
        flags.append(diverged or worst > t.instability_drop)
        finding.evidence.append(
            f"{run['run_id']}: diverged: {'yes' if diverged else 'no'}; largest epoch-to-epoch "
            f"drop in test accuracy {worst * 100:.1f} points"
        )
    finding.verdict = combine(flags)
    return finding


def overfitting_at_good_lr(
    summary: pd.DataFrame, metrics: pd.DataFrame, study: str, t: Thresholds
) -> Finding:
    """At the best learning rate, test loss rises after its minimum while train loss keeps
    falling (overfitting), from the epoch after the minimum."""
    acc = per_value(summary, study, "final_test_acc")
    good = acc.idxmax()
    finding = Finding(
        "Overfitting",
        f"at a good learning rate ({format_value(good)}, the best final test accuracy) test loss "
        "rises after its minimum while train loss keeps falling",
        INCONCLUSIVE,
        threshold=f"final test loss more than {t.overfit_rise * 100:g}% above its minimum, "
        "and final train loss below the train loss at that minimum",
        study=study,
    )
    flags = []
    for run_id in runs_of(summary, study, good)["run_id"]:
        rows = curve(metrics, run_id)
        test_loss = rows["test_loss"].to_numpy(float)
        train_loss = rows["train_loss"].to_numpy(float)
        at_min = int(np.nanargmin(test_loss))
        rise = test_loss[-1] / test_loss[at_min] - 1
        train_falls = train_loss[-1] < train_loss[at_min]
        overfits = bool(at_min < len(test_loss) - 1 and rise > t.overfit_rise and train_falls)
        flags.append(overfits)
        epoch_min = int(rows["epoch"].iloc[at_min])
        text = (
            f"{run_id}: test loss lowest at epoch {epoch_min} ({test_loss[at_min]:.4f}), "
            f"{test_loss[-1]:.4f} at the end ({rise * 100:+.1f}%); train loss "
            f"{train_loss[at_min]:.4f} -> {train_loss[-1]:.4f}"
        )
        if overfits:
            text += f"; overfitting from epoch {epoch_min + 1}"
        finding.evidence.append(text)
    finding.verdict = combine(flags)
    return finding


# --- batch size, kernel width, weight decay ----------------------------------------------

COLUMN_WORDS = {
    "final_test_acc": "final test accuracy",
    "mean_epoch_time_s": "mean epoch time",
    "param_count": "parameters",
    "peak_memory_mb": "peak memory",
}


def trend_finding(
    summary: pd.DataFrame,
    study: str,
    column: str,
    rule: str,
    claim: str,
    direction: int,
    margin: float,
    relative: bool,
    fmt: Callable[[float], str],
) -> Finding:
    """Compare ``column`` at the largest swept value with the smallest: the claim is that it
    moves in ``direction`` (+1 up, -1 down) by more than ``margin`` (relative or absolute)."""
    values = per_value(summary, study, column)
    kind = "relative" if relative else "absolute"
    finding = Finding(
        rule,
        claim,
        INCONCLUSIVE,
        [f"{COLUMN_WORDS.get(column, column)} by value: {_values_line(values, fmt)}"],
        f"largest vs smallest value must differ by more than {margin * 100:g}"
        f"{'%' if relative else ' percentage points'} ({kind}) in the claimed direction",
        study,
    )
    if len(values) < 2 or values.isna().any():
        finding.evidence.append("needs at least two values with numbers")
        return finding
    first, last = float(values.iloc[0]), float(values.iloc[-1])
    change = (last / first - 1) if relative and first else last - first
    finding.verdict = compare_gap(direction * change, margin)
    unit = "%" if relative else " points"
    finding.evidence.append(
        f"{format_value(values.index[-1])} vs {format_value(values.index[0])}: "
        f"{change * 100:+.1f}{unit}"
    )
    return finding


def batch_size_findings(summary: pd.DataFrame, study: str, t: Thresholds) -> list[Finding]:
    """Smaller batches reach a higher test accuracy; larger batches take less time per epoch."""
    seconds = lambda x: f"{x:.2f} s"  # noqa: E731
    return [
        trend_finding(summary, study, "final_test_acc", "Batch size",
                      "smaller batches reach a higher final test accuracy",
                      -1, t.acc_margin, False, pct),
        trend_finding(summary, study, "mean_epoch_time_s", "Batch size",
                      "larger batches take less time per epoch",
                      -1, t.time_rel_margin, True, seconds),
    ]  # fmt: skip


def kernel_width_findings(summary: pd.DataFrame, study: str, t: Thresholds) -> list[Finding]:
    """Wider kernels: accuracy, parameter count, epoch time and peak memory, widest vs
    narrowest (widths ordered by their sum)."""
    millions = lambda x: f"{x / 1e6:.3f} M"  # noqa: E731
    seconds = lambda x: f"{x:.2f} s"  # noqa: E731
    megabytes = lambda x: f"{x:.0f} MB"  # noqa: E731
    rule = "Kernel width"
    return [
        trend_finding(summary, study, "final_test_acc", rule,
                      "wider kernels reach a higher final test accuracy",
                      1, t.acc_margin, False, pct),
        trend_finding(summary, study, "param_count", rule,
                      "wider kernels have more parameters", 1, t.cost_rel_margin, True, millions),
        trend_finding(summary, study, "mean_epoch_time_s", rule,
                      "wider kernels take more time per epoch",
                      1, t.time_rel_margin, True, seconds),
        trend_finding(summary, study, "peak_memory_mb", rule,
                      "wider kernels need more memory", 1, t.cost_rel_margin, True, megabytes),
    ]  # fmt: skip


def weight_decay_stops_learning(summary: pd.DataFrame, study: str, t: Thresholds) -> Finding:
    """The largest weight decay stops learning (final accuracy within the margin of chance),
    provided the smallest one does learn (otherwise the sweep cannot tell)."""
    acc = per_value(summary, study, "final_test_acc")
    largest, smallest = acc.index[-1], acc.index[0]
    classes = summary.loc[summary["study"] == study, "num_classes"]
    finding = Finding(
        "Weight decay",
        f"an extreme weight decay ({format_value(largest)}) stops learning",
        INCONCLUSIVE,
        [f"final test accuracy by weight decay: {_values_line(acc)}"],
        f"final test accuracy at most chance (1 / classes) + {points(t.chance_margin)}",
        study,
    )
    if classes.isna().all() or len(acc) < 2:
        finding.evidence.append("needs the class count and at least two weight decays")
        return finding
    ceiling = 1 / float(classes.iloc[0]) + t.chance_margin
    finding.evidence.append(f"chance {pct(1 / float(classes.iloc[0]))}, ceiling {pct(ceiling)}")
    if acc.loc[smallest] <= ceiling:
        finding.evidence.append(
            f"the smallest weight decay ({format_value(smallest)}) does not learn either, so "
            "weight decay is not what stops learning here"
        )
        return finding
    flags = [bool(a <= ceiling) for a in runs_of(summary, study, largest)["final_test_acc"]]
    finding.verdict = combine(flags)
    return finding


# --- all rules ----------------------------------------------------------------------------

RULES = {
    "lr": ("Learning rate", "learning rate"),
    "batch_size": ("Batch size", "batch size"),
    "kernel_width": ("Kernel width", "kernel width"),
    "weight_decay": ("Weight decay", "weight decay"),
}


def compute_findings(
    summary: pd.DataFrame, metrics: pd.DataFrame, thresholds: Thresholds | None = None
) -> list[Finding]:
    """Every verdict for this sweep; a rule whose setting no study sweeps is ``not run``."""
    t = thresholds or Thresholds()
    findings: list[Finding] = []
    for param, (rule, words) in RULES.items():
        studies = studies_sweeping(summary, param)
        if not studies:
            findings.append(Finding(rule, f"no study sweeps the {words} ({param})", NOT_RUN))
            if param == "lr":
                findings.append(Finding("Overfitting", "needs a learning-rate study", NOT_RUN))
            continue
        for study in studies:
            if param == "lr":
                findings += [
                    lr_middle_beats_ends(summary, study, t),
                    lr_lowest_underfits(summary, metrics, study, t),
                    lr_highest_unstable(summary, metrics, study, t),
                    overfitting_at_good_lr(summary, metrics, study, t),
                ]
            elif param == "batch_size":
                findings += batch_size_findings(summary, study, t)
            elif param == "kernel_width":
                findings += kernel_width_findings(summary, study, t)
            else:
                findings.append(weight_decay_stops_learning(summary, study, t))
    return findings


def render_markdown(
    findings: list[Finding],
    thresholds: Thresholds,
    n_runs: int,
    comparison_text: str | None = None,
) -> str:
    """``findings.md``: thresholds, then one section per rule, then the seed comparison."""
    lines = [
        "# Findings: do the post's rules hold in this sweep?",
        "",
        f"Computed by `hpstudy findings` from {n_runs} runs (results/summary.csv and "
        "results/metrics.csv). Accuracies are test-set percentages. With several seeds a "
        "value's accuracy is the mean over its seeds, and a per-run check must hold in every "
        "seed (all: holds, none: does not hold, some: inconclusive).",
        "",
        "## Thresholds",
        "",
        "| threshold | value |",
        "| --- | --- |",
        *[f"| {name} | {value:g} |" for name, value in asdict(thresholds).items()],
        "",
    ]
    for rule in dict.fromkeys(f.rule for f in findings):
        lines += [f"## {rule}", ""]
        for f in (f for f in findings if f.rule == rule):
            where = f" (study `{f.study}`)" if f.study else ""
            lines.append(f"- **{f.verdict.upper()}**: {f.claim}{where}.")
            lines += [f"  - {e}" for e in f.evidence]
            if f.threshold:
                lines.append(f"  - threshold: {f.threshold}")
        lines.append("")
    if comparison_text is not None:
        lines += ["## Comparison with the post's own runs", "", comparison_text, ""]
    return "\n".join(lines)


def describe_comparison(table: pd.DataFrame) -> str:
    """A sentence or two on the comparison with the post's own runs."""
    if table.empty:
        return (
            "No run matches one of the post's runs, so nothing is compared (rule: "
            f"{reference.MATCH_RULE}). This is expected on any data other than the Intel images "
            f"at {reference.POST_IMAGE_SIZE} px."
        )
    diff = table["final_test_acc_diff"].astype(float)
    return (
        f"{table['run_id'].nunique()} of our runs match {table['post_run'].nunique()} of the "
        f"post's runs ({len(table)} pairs; rule: {reference.MATCH_RULE}). Final test accuracy, "
        f"ours minus the post's: mean {points(diff.mean())}, from {points(diff.min())} to "
        f"{points(diff.max())}."
    )


def write_findings(
    tables: str | Path, out_path: str | Path, thresholds: Thresholds | None = None
) -> list[Finding]:
    """Compute the verdicts from the results tables in ``tables`` and write ``findings.md``."""
    thresholds = thresholds or Thresholds()
    summary, metrics, comparison = read_tables(
        tables, "summary.csv", "metrics.csv", "comparison.csv"
    )
    findings = compute_findings(summary, metrics, thresholds)
    text = describe_comparison(comparison)
    n_runs = summary["run_id"].nunique()
    atomic_write_text(out_path, render_markdown(findings, thresholds, n_runs, text))
    return findings


def main(argv: list[str] | None = None) -> int:
    """``hpstudy findings``: write ``findings.md`` from the results tables."""
    parser = argparse.ArgumentParser(prog="hpstudy findings", description=__doc__.split("\n")[0])
    parser.add_argument("--tables", required=True, help="the config's results folder")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    for f in write_findings(args.tables, args.out):
        print(f"{f.verdict:>14}: {f.rule}: {f.claim}")
    return 0
