"""What a run's files hold: the columns of ``metrics.csv`` and the rule that marks a run
diverged. Written by :mod:`hpstudy.training.job`, read by :mod:`hpstudy.report.aggregate`
and the tests; free of torch, so readers import it cheaply."""

from __future__ import annotations

import math

import numpy as np

from hpstudy.core.formatting import pct

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
