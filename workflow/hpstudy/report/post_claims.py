"""The post's claims, as the post makes them: the first table of ``findings.md``.

Each claim stands beside a one-line paraphrase of the post's sentence. Studies are found by
the setting they sweep alone (``study_params``), never by their name; a study on another model
than the post's for that setting (a custom CNN sweeping the learning rate) gets the same claims
as "the post's rules, applied to your study". Checks of our own go to
:mod:`hpstudy.report.own_claims` ("beyond the post").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hpstudy.core import stats
from hpstudy.core.formatting import format_value, pct
from hpstudy.core.run_record import DIVERGENCE_RULE, INSTABILITY_RULE
from hpstudy.core.stats import INCONCLUSIVE, weaker
from hpstudy.report import own_claims
from hpstudy.report.claims import (
    APPLIED,
    COST_MARGIN,
    NO_VERDICT,
    POST,
    Context,
    Finding,
    at,
    by_value,
    chance,
    cost_claim,
    curve,
    curve_values,
    difference,
    loss_claim,
    monotone_claim,
    names,
    not_testable,
    per_run_claim,
    points_text,
    study_rows,
    two_group_claim,
    unstable_reason,
    values_of,
)
from hpstudy.report.own_claims import megabytes, millions, total_parameters
from hpstudy.report.tables import final_accuracies

# the model each of the post's experiments used
POST_MODEL = {
    "lr": "resnet18",
    "batch_size": "custom",
    "kernel_width": "custom",
    "weight_decay": "custom",
}


def claim(ctx, rule, study, table, key, says, text) -> Finding:
    """A new, undecided claim of the post."""
    return Finding(rule, text, INCONCLUSIVE, study=study, says=says, table=table, key=key)


def mean_accuracy(rows: pd.DataFrame, key: str, value) -> float:
    """The mean final test accuracy of one swept value."""
    return float(np.mean(final_accuracies(rows[rows[key] == value])))


# --- learning rate ------------------------------------------------------------------------


def middle_beats_ends(ctx, rows, key, values, make) -> Finding:
    """Too low or too high a rate degrades performance: the best middle rate beats each end;
    the verdict is the weaker of the two comparisons."""
    middle = max(values[1:-1], key=lambda v: mean_accuracy(rows, key, v))
    low, high = values[0], values[-1]
    f = make(
        "middle-beats-ends",
        "Too low or too high a learning rate severely degrades performance.",
        f"a middle learning rate ({format_value(middle)}) beats both the lowest "
        f"({format_value(low)}) and the highest ({format_value(high)})",
    )
    sides = []
    for end in (low, high):
        side = Finding(f.rule, f.claim, INCONCLUSIVE)
        two_group_claim(
            ctx,
            side,
            at(rows, key, middle),
            at(rows, key, end),
            +1,
            f"{format_value(middle)} minus {format_value(end)}",
        )
        sides.append(side)
        f.evidence += side.evidence
    worst = min(sides, key=lambda s: stats.VERDICT_ORDER.index(s.verdict))
    f.verdict = weaker(*(s.verdict for s in sides))
    f.effect, f.seeds, f.margin, f.resolve = worst.effect, worst.seeds, worst.margin, worst.resolve
    f.settings, f.interval = names(*(at(rows, key, v) for v in (low, middle, high))), True
    return f


def learning_rate(ctx: Context, study: str, table: str) -> list[Finding]:
    """The post's four sentences on the learning rate (ResNet18)."""
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)

    def make(name, says, text):
        return claim(ctx, "Learning rate", study, table, name, says, text)

    if len(values) < 3:
        why = f"needs a lowest, a middle and a highest rate; the study has {len(values)}"
        return [
            not_testable(make(n, s, t), why)
            for n, s, t in (
                (
                    "middle-beats-ends",
                    "Too low or too high a rate degrades performance.",
                    "a middle learning rate beats both the lowest and the highest",
                ),
                (
                    "lowest-slow",
                    "At the lowest rate the model learns very slowly.",
                    "the lowest rate's final train loss is above the middle rate's first",
                ),
                (
                    "highest-loss",
                    "At the highest rate the loss stays high.",
                    "the highest rate's lowest train loss stays above the middle rate's",
                ),
            )
        ] + [highest_erratic(ctx, rows, key, values[-1], make)]
    found = [middle_beats_ends(ctx, rows, key, values, make)]
    middle = max(values[1:-1], key=lambda v: mean_accuracy(rows, key, v))
    low, high, mid = (at(rows, key, v) for v in (values[0], values[-1], middle))
    f = make(
        "lowest-slow",
        "At the lowest rate the model learns very slowly.",
        f"at the lowest rate ({format_value(values[0])}) the train loss after the last epoch is "
        f"still above the middle rate's ({format_value(middle)}) after its first",
    )
    last, first = curve_values(ctx, "train_loss", _last), curve_values(ctx, "train_loss", _first)
    what = "the lowest rate's last train loss against the middle rate's first"
    found.append(loss_claim(ctx, f, low, mid, last, what, value_b=first))
    f = make(
        "highest-loss",
        "At the highest rate the lowest loss stays well above the good rate's.",
        f"at the highest rate ({format_value(values[-1])}) the lowest train loss stays above "
        f"the middle rate's ({format_value(middle)})",
    )
    lowest = curve_values(ctx, "train_loss", np.nanmin)
    found.append(
        loss_claim(ctx, f, high, mid, lowest, "lowest train loss, highest rate against middle")
    )
    found.append(highest_erratic(ctx, rows, key, values[-1], make))
    return found


def _last(values: np.ndarray) -> float:
    return float(values[-1])


def _first(values: np.ndarray) -> float:
    return float(values[0])


def highest_erratic(ctx, rows, key, highest, make) -> Finding:
    """The highest rate's runs are unstable: exploded, spiked or collapsed (per run)."""
    f = make(
        "highest-erratic",
        "At the highest rate the optimiser keeps jumping around: the test curve is erratic.",
        f"at the highest rate ({format_value(highest)}) each run is unstable",
    )
    flags, evidence = [], []
    for _, run in at(rows, key, highest).iterrows():
        reason = unstable_reason(ctx, run)
        if bool(run["diverged"]):
            reason = "; ".join(filter(None, [f"diverged ({run.get('diverged_reason')})", reason]))
        flags.append(bool(reason))
        evidence.append(f"{run['run_id']}: {reason or 'stable'}")
    return per_run_claim(f, flags, evidence, f"{INSTABILITY_RULE}; or {DIVERGENCE_RULE}")


# --- batch size, kernel width, weight decay -----------------------------------------------


def batch_size(ctx: Context, study: str, table: str) -> list[Finding]:
    """Smaller batches: a higher test accuracy, and faster learning in the first epochs."""
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)
    f = claim(
        ctx,
        "Batch size",
        study,
        table,
        "smaller-higher",
        "Smaller batches reach a higher test accuracy.",
        "smaller batches reach a higher final test accuracy",
    )
    found = [monotone_claim(ctx, f, rows, key, -1)]
    epochs = int(rows["epochs_completed"].min()) if "epochs_completed" in rows else 1
    early = max(1, math.ceil(epochs / 3))
    f = claim(
        ctx,
        "Batch size",
        study,
        table,
        "smaller-faster",
        "Smaller batches learn faster in the first epochs.",
        f"the smallest batch has a higher mean test accuracy over the first {early} "
        "epoch(s) than the largest",
    )
    if len(values) < 2:
        found.append(not_testable(f, "the study has one value only"))
        return found

    def first_epochs(group):
        return np.array(
            [
                float(np.nanmean(curve(ctx.metrics, rid)["test_acc"].to_numpy(float)[:early]))
                for rid in group["run_id"]
            ]
        )

    found.append(
        two_group_claim(
            ctx,
            f,
            at(rows, key, values[0]),
            at(rows, key, values[-1]),
            +1,
            f"{format_value(values[0])} minus {format_value(values[-1])}, first {early} epoch(s)",
            first_epochs,
        )
    )
    return found


def kernel_width(ctx: Context, study: str, table: str) -> list[Finding]:
    """Wider kernels: more convolution parameters; memory, on which the post takes no side."""
    rows, key = study_rows(ctx.summary, study)
    params = claim(
        ctx,
        "Kernel width",
        study,
        table,
        "conv-params",
        "Wider kernels mean more parameters in the convolutions.",
        "wider kernels have more parameters (in the convolutions)",
    )
    cost_claim(
        ctx,
        params,
        rows,
        key,
        "conv_param_count",
        +1,
        COST_MARGIN,
        ("convolution parameters", millions),
    )
    params.evidence.append(total_parameters(rows, key))
    memory = claim(
        ctx,
        "Kernel width",
        study,
        table,
        "memory",
        "Memory: hard to call (more parameters, but smaller feature maps).",
        "peak memory as kernels widen: the measured change, no verdict",
    )
    cost_claim(
        ctx, memory, rows, key, "peak_memory_mb", +1, COST_MARGIN, ("peak memory", megabytes)
    )
    memory.verdict, memory.resolve, memory.interval = NO_VERDICT, None, False
    memory.evidence.append(
        "the post takes no side: wider kernels hold more parameters (more memory), while "
        "without padding each layer's feature maps shrink (less memory for activations)"
    )
    return [params, memory]


def weight_decay(ctx: Context, study: str, table: str) -> list[Finding]:
    """Too high a decay: the extreme ends closer to chance than to the normal value, and far
    below it; the weaker of the two."""
    rows, key = study_rows(ctx.summary, study)
    values = values_of(rows, key)
    f = claim(ctx, "Weight decay", study, table, "extreme-underfits",
              "Too high a weight decay causes severe underfitting: learning ability almost zero.",
              "the extreme weight decay ends closer to chance than to the normal one, and far "
              "below it")  # fmt: skip
    if len(values) < 2:
        return [not_testable(f, "needs at least two weight decays")]
    extreme, normal = at(rows, key, values[-1]), at(rows, key, values[0])
    f.claim = (
        f"the extreme weight decay ({format_value(values[-1])}) ends closer to chance than to "
        f"the normal one ({format_value(values[0])}), and far below it"
    )
    p = chance(rows, ctx)
    f.evidence.append("mean final test accuracy by value: " + by_value(rows, key, values))
    near, how = difference(
        ctx, extreme, normal, final_accuracies, value_b=lambda g: (final_accuracies(g) + p) / 2
    )
    near_verdict = stats.decide(near, 0.0, -1)
    f.evidence.append(
        f"extreme minus the midpoint of chance ({pct(p)}, the largest class's share of the test "
        f"split) and the normal value: {points_text(near)} ({how}): {near_verdict}"
    )
    two_group_claim(
        ctx, f, extreme, normal, -1, f"{format_value(values[-1])} minus {format_value(values[0])}"
    )
    if stats.VERDICT_ORDER.index(near_verdict) < stats.VERDICT_ORDER.index(f.verdict):
        f.verdict, f.resolve = near_verdict, None
        f.effect = f"{points_text(near)} from the midpoint"
    return [f]


def conclusion(ctx: Context) -> list[Finding]:
    """A poorly tuned ResNet18 easily does worse than a well-tuned simple CNN: the worst
    ResNet18 rate of a learning-rate study against the best custom-CNN setting."""
    summary = ctx.summary
    f = Finding(
        "Conclusion",
        "the worst ResNet18 learning rate ends below the best custom-CNN setting of the sweep",
        INCONCLUSIVE,
        study="(whole sweep)",
        says="A poorly tuned ResNet18 easily does worse than a well-tuned simple CNN.",
        key="resnet-vs-cnn",
    )
    resnet = summary[(summary["study_params"] == "lr") & (summary["model"] == "resnet18")]
    custom = summary[summary["model"] == "custom"].drop_duplicates("run_id")
    if resnet.empty or custom.empty:
        missing = "learning-rate study of ResNet18" if resnet.empty else "custom-CNN run"
        return [not_testable(f, f"the sweep has no {missing}")]
    worst = min(values_of(resnet, "lr"), key=lambda v: mean_accuracy(resnet, "lr", v))
    means = {str(n): float(np.mean(final_accuracies(g))) for n, g in custom.groupby("name")}
    best = max(means, key=means.get)
    f.study = str(resnet["study"].iloc[0])
    two_group_claim(
        ctx,
        f,
        custom[custom["name"] == best],
        at(resnet, "lr", worst),
        +1,
        f"custom CNN `{best}` minus ResNet18 at lr {format_value(worst)}",
    )
    return [f]


# the post's settings -> (the rule's name, its claims, our own checks beyond the post)
RULES = {
    "lr": ("Learning rate", learning_rate, own_claims.learning_rate),
    "batch_size": ("Batch size", batch_size, own_claims.batch_size),
    "kernel_width": ("Kernel width", kernel_width, own_claims.kernel_width),
    "weight_decay": ("Weight decay", weight_decay, own_claims.weight_decay),
}


def study_table(rows: pd.DataFrame, param: str) -> str:
    """POST for a study on the post's model for that setting, else APPLIED."""
    return POST if set(rows["model"].astype(str)) == {POST_MODEL[param]} else APPLIED


def post_findings(ctx: Context) -> list[Finding]:
    """The post's claims and our own checks for every study that sweeps one of the post's
    settings alone, then the post's conclusion."""
    found: list[Finding] = []
    studies = ctx.summary.drop_duplicates("study")[["study", "study_params"]]
    for param, (_, post, own) in RULES.items():
        for study in studies.loc[studies["study_params"] == param, "study"]:
            table = study_table(ctx.summary[ctx.summary["study"] == study], param)
            found += post(ctx, study, table) + own(ctx, study)
    if any(f.table == POST for f in found):
        found += conclusion(ctx)
    return found
