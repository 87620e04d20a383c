"""Checks of our own, beyond what the post says: the second table of ``findings.md``, judged
with the same care (costs, memory, overfitting at the best rate, the kernel-width accuracy
trend)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hpstudy.core.formatting import format_value
from hpstudy.core.stats import INCONCLUSIVE
from hpstudy.report.claims import (
    BEYOND,
    TIME_MARGIN,
    Context,
    Finding,
    at,
    cost_claim,
    curve,
    monotone_claim,
    not_testable,
    per_run_claim,
    study_rows,
    values_of,
)
from hpstudy.report.tables import final_accuracies

LOSS_REL_TOL = 0.005  # relative fall of test loss over the last epoch that counts as falling
OVERFIT_RISE = 0.05  # relative rise of test loss above its minimum that is overfitting
OVERFIT_MIN_EPOCHS = 5  # fewer epochs cannot show that a run does not overfit


def own(rule: str, study: str, key: str, text: str) -> Finding:
    """A new, undecided check of our own."""
    return Finding(rule, text, INCONCLUSIVE, study=study, table=BEYOND, key=key)


def seconds(x: float) -> str:
    """An epoch time."""
    return f"{x:.2f} s"


def millions(x: float) -> str:
    """A parameter count in millions."""
    return f"{x / 1e6:.4f} M"


def megabytes(x: float) -> str:
    """A memory size."""
    return f"{x:.0f} MB"


def total_parameters(rows: pd.DataFrame, key: str) -> str:
    """The total parameter count by kernel width, and why it falls as kernels widen."""
    totals = {
        v: float(rows.loc[rows[key] == v, "param_count"].astype(float).mean())
        for v in values_of(rows, key)
    }
    return (
        "in all (convolutions and fully connected layers): "
        + ", ".join(f"{format_value(v)}: {millions(t)}" for v, t in totals.items())
        + ". The total falls as kernels widen because the convolutions have no padding to make "
        "up for a wider kernel: each layer's output shrinks, so the flattened feature map that "
        "feeds the first fully connected layer, which holds most of the parameters, gets smaller."
    )


def lowest_lr_improving(ctx: Context, study: str) -> Finding:
    """The lowest rate's test loss is still falling at the last epoch (per run)."""
    rows, key = study_rows(ctx.summary, study)
    lowest = values_of(rows, key)[0]
    f = own(
        "Learning rate",
        study,
        "lowest-still-improving",
        f"the lowest learning rate ({format_value(lowest)}) is still improving: its test "
        "loss falls over the last epoch",
    )
    flags, evidence = [], []
    for run_id in at(rows, key, lowest)["run_id"]:
        loss = curve(ctx.metrics, run_id)["test_loss"].to_numpy(float)
        if len(loss) < 2:
            evidence.append(f"{run_id}: one epoch only")
            continue
        flags.append(bool(loss[-1] < loss[-2] * (1 - LOSS_REL_TOL)))
        evidence.append(f"{run_id}: test loss {loss[-2]:.4f} -> {loss[-1]:.4f} over the last epoch")
    if not flags:
        return not_testable(f, "one epoch cannot show a falling loss")
    criterion = f"test loss falls by more than {LOSS_REL_TOL * 100:g}% over the last epoch"
    return per_run_claim(f, flags, evidence, criterion)


def overfits_at_best_lr(ctx: Context, study: str) -> Finding:
    """At the best rate the test loss rises after its minimum while the train loss falls (per
    run); its absence is only stated after ``OVERFIT_MIN_EPOCHS`` epochs."""
    rows, key = study_rows(ctx.summary, study)
    means = {v: float(np.mean(final_accuracies(at(rows, key, v)))) for v in values_of(rows, key)}
    good = max(means, key=means.get)
    f = own(
        "Overfitting",
        study,
        "overfits-at-best",
        f"at a good learning rate ({format_value(good)}, the best mean final test accuracy) "
        "test loss rises after its minimum while train loss keeps falling",
    )
    flags, evidence, epochs = [], [], []
    for run_id in at(rows, key, good)["run_id"]:
        runs = curve(ctx.metrics, run_id)
        test, train = runs["test_loss"].to_numpy(float), runs["train_loss"].to_numpy(float)
        low = int(np.nanargmin(test))
        rise = test[-1] / test[low] - 1
        overfits = bool(low < len(test) - 1 and rise > OVERFIT_RISE and train[-1] < train[low])
        flags.append(overfits)
        epochs.append(len(test))
        epoch = int(runs["epoch"].iloc[low])
        text = (
            f"{run_id}: test loss lowest at epoch {epoch} ({test[low]:.4f}), {test[-1]:.4f} at "
            f"the end ({rise * 100:+.1f}%); train loss {train[low]:.4f} -> {train[-1]:.4f}"
        )
        evidence.append(text + (f"; overfitting from epoch {epoch + 1}" if overfits else ""))
    if not any(flags) and min(epochs, default=0) < OVERFIT_MIN_EPOCHS:
        f.evidence += evidence
        return not_testable(
            f,
            f"{min(epochs, default=0)} epochs cannot show overfitting (needs at least "
            f"{OVERFIT_MIN_EPOCHS})",
        )
    criterion = (
        f"final test loss more than {OVERFIT_RISE * 100:g}% above its minimum and final train "
        "loss below the train loss at that minimum"
    )
    return per_run_claim(f, flags, evidence, criterion)


def epoch_time(ctx: Context, study: str, direction: int, text: str) -> Finding:
    """Epoch time moving in ``direction`` as the value grows."""
    rows, key = study_rows(ctx.summary, study)
    f = own(str(rows["study_params"].iloc[0]), study, "epoch-time", text)
    return cost_claim(
        ctx, f, rows, key, "mean_epoch_time_s", direction, TIME_MARGIN, ("epoch time", seconds)
    )


def learning_rate(ctx: Context, study: str) -> list[Finding]:
    """Our checks on a learning-rate study."""
    return [lowest_lr_improving(ctx, study), overfits_at_best_lr(ctx, study)]


def batch_size(ctx: Context, study: str) -> list[Finding]:
    """Our checks on a batch-size study."""
    f = epoch_time(ctx, study, -1, "larger batches take less time per epoch")
    f.rule = "Batch size"
    return [f]


def kernel_width(ctx: Context, study: str) -> list[Finding]:
    """Our checks on a kernel-width study."""
    rows, key = study_rows(ctx.summary, study)
    acc = own(
        "Kernel width", study, "wider-higher", "wider kernels reach a higher final test accuracy"
    )
    time = epoch_time(ctx, study, +1, "wider kernels take more time per epoch")
    time.rule = "Kernel width"
    return [monotone_claim(ctx, acc, rows, key, +1), time]


def weight_decay(ctx: Context, study: str) -> list[Finding]:
    """No check of our own on a weight-decay study."""
    return []
