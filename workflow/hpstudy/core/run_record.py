"""What a run's files hold: the columns of ``metrics.csv`` and the rule that marks a run
diverged. Written by :mod:`hpstudy.training.job`, read by :mod:`hpstudy.report.aggregate`
and the tests; free of torch, so readers import it cheaply."""

from __future__ import annotations

import math

import numpy as np

from hpstudy.core.formatting import pct, points_size

# per epoch, the scores that weigh every class alike, for the splits evaluated; appended
# after the older columns, so a metrics.csv written before them keeps its prefix (and reads
# with these columns empty)
CLASS_SCORE_COLUMNS = ("val_balanced_acc", "val_macro_f1", "test_balanced_acc", "test_macro_f1")
# one row per epoch, in this order
METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
    "epoch_time_s", "train_time_s", "eval_time_s", "train_images_per_s", "peak_memory_mb",
    *CLASS_SCORE_COLUMNS,
)  # fmt: skip
# per epoch: the validation split's loss and accuracy are empty (nan) when there is none
# the columns that differ between two otherwise identical runs (wall-clock and memory)
TIMING_COLUMNS = (
    "epoch_time_s", "train_time_s", "eval_time_s", "train_images_per_s", "peak_memory_mb",
)  # fmt: skip

# A run has exploded when its final train loss is this many times the loss of a uniform guess
# (ln of the class count) while its final test accuracy stays within CHANCE_MARGIN of chance.
EXPLOSION_FACTOR = 10.0
CHANCE_MARGIN = 0.05
DIVERGENCE_RULE = (
    f"the train loss became non-finite, or it ended above {EXPLOSION_FACTOR:g} x ln(classes) "
    f"(the loss of a uniform guess) with the final test accuracy within "
    f"{CHANCE_MARGIN * 100:g} points of chance"
)


def divergence(rows: list[dict], num_classes: int) -> str | None:
    """Why a run diverged (see ``DIVERGENCE_RULE``), or None when it did not."""
    for row in rows:
        if not math.isfinite(row["train_loss"]):
            return f"non-finite train loss at epoch {row['epoch']}"
    last = rows[-1]
    ceiling = EXPLOSION_FACTOR * math.log(num_classes)
    chance = 1 / num_classes
    if last["train_loss"] > ceiling and last["test_acc"] <= chance + CHANCE_MARGIN:
        return (
            f"exploded: final train loss {last['train_loss']:.3g} > {ceiling:.3g} "
            f"({EXPLOSION_FACTOR:g} x ln {num_classes}) with test accuracy "
            f"{pct(last['test_acc'])} at chance"
        )
    return None


def at_chance(accuracy, diverged, num_classes):
    """An accuracy as every table, verdict, selection and search reads it: a diverged run
    (or one without the number) counts at chance, 1 / classes. Takes a run's numbers or
    arrays of them (one per run); returns a float or an array."""
    value = np.asarray(np.nan if accuracy is None else accuracy, dtype=float)
    missing = np.asarray(diverged, dtype=bool) | ~np.isfinite(value)
    counted = np.where(missing, 1 / np.asarray(num_classes, dtype=float), value)
    return float(counted) if counted.ndim == 0 else counted


# A run is unstable (the post's "keeps jumping around") when its loss explodes, its curves
# spike between epochs or it collapses to one class. Read from a finished run's files when the
# tables are built, so runs trained before this rule existed are judged alike; the divergence
# rule above (which decides what a run counts as) is a different, narrower rule.
EXPLOSION_RISE = 2.0  # train loss above twice its first epoch's
SPIKE_RISE = 0.5  # train loss up by half over the epoch before
SPIKE_DROP = 0.05  # test accuracy down by 5 points over the epoch before...
SPIKE_ERRORS = 2.0  # ...and by twice the binomial error of a difference on the test split
INSTABILITY_RULE = (
    f"the train loss rose above {EXPLOSION_RISE:g} x its first epoch's, or above ln(classes) "
    "(a uniform guess) and its first epoch's (an explosion); or between two epochs it rose by "
    f"more than {SPIKE_RISE * 100:g}%, or the test accuracy fell by more than "
    f"{SPIKE_DROP * 100:g} points and {SPIKE_ERRORS:g} binomial errors of a difference on the "
    "test split (a spike); or the final predictions name one class only (a collapse)"
)


def spike_drop(accuracy: float, test_count: int | None) -> float:
    """The test-accuracy drop between two epochs that counts as a spike: 5 points, or more
    where the test split is small (twice the binomial error of a difference of two accuracies
    measured on it: 11 points on 153 images at 50 %)."""
    if not test_count:
        return SPIKE_DROP
    p = min(max(accuracy, 0.0), 1.0)
    se = math.sqrt(max(p * (1 - p), 1.0 / test_count) / test_count)
    return max(SPIKE_DROP, SPIKE_ERRORS * math.sqrt(2) * se)


def instability(
    rows: list[dict], num_classes: int, test_count: int | None, predicted_classes: int | None
) -> str | None:
    """Why a run is unstable (see ``INSTABILITY_RULE``), or None when it is not. ``rows``: its
    metrics.csv rows in epoch order; ``predicted_classes``: how many classes its final test
    predictions name (None when they are not saved)."""
    reasons = []
    losses = [float(r["train_loss"]) for r in rows]
    if not all(math.isfinite(v) for v in losses):
        reasons.append("non-finite train loss")
    elif len(losses) > 1:
        first, peak = losses[0], max(losses[1:])
        if peak > EXPLOSION_RISE * first or peak > max(first, math.log(num_classes)):
            reasons.append(f"train loss exploded to {peak:.3g} (first epoch {first:.3g})")
    for before, after in zip(rows, rows[1:], strict=False):
        loss_a, loss_b = float(before["train_loss"]), float(after["train_loss"])
        acc_a, acc_b = float(before["test_acc"]), float(after["test_acc"])
        if math.isfinite(loss_a) and loss_b > loss_a * (1 + SPIKE_RISE):
            reasons.append(f"train loss spiked at epoch {after['epoch']}")
        if acc_a - acc_b > spike_drop(acc_a, test_count):
            reasons.append(
                f"test accuracy fell {points_size(acc_a - acc_b)} at epoch {after['epoch']}"
            )
    if predicted_classes == 1 and num_classes > 1:
        reasons.append("collapsed: every test image predicted as one class")
    return "; ".join(dict.fromkeys(reasons)) or None
