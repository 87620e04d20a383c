"""The post's rules as claims: which claims each study that sweeps one of the post's settings
alone gets (``RULES``), and the checks made on each run's curves.

Studies are found by the setting they sweep alone (``study_params``), never by their name.
"""

from __future__ import annotations

import numpy as np

from hpstudy.formatting import format_value, pct, points_size
from hpstudy.report.claims import (
    COST_MARGIN,
    INSTABILITY_DROP,
    LOSS_REL_TOL,
    OVERFIT_RISE,
    TIME_MARGIN,
    Context,
    Finding,
    by_value,
    cost_claim,
    curve,
    per_run_claim,
    study_rows,
    trend_claim,
    two_group_claim,
    values_of,
)
from hpstudy.run_files import DIVERGENCE_RULE
from hpstudy.stats import INCONCLUSIVE
from hpstudy.tables import final_accuracies


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
            f"accuracy {points_size(worst)}"
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
            f"the end ({rise * 100:+.1f}%); train loss {train[at]:.4f} -> {train[-1]:.4f}"
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
