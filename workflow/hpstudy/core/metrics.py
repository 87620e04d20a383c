"""The metrics a selection, a search and the exploration tables rank runs by: each one's
summary column, its direction, its test-split twin and its words. The one table of them;
``selection.metric`` and ``search.<name>.metric`` (the schema) name these.

A metric is ``<split>_<score>``: ``val_acc``, ``test_loss``, ``val_macro_f1``, ...
"""

from __future__ import annotations

SPLITS = {"val": "validation", "test": "test"}
SCORES = {  # score -> its words
    "acc": "accuracy",
    "loss": "loss",
    "balanced_acc": "balanced accuracy",
    "macro_f1": "macro-F1",
}
METRICS = tuple(f"{split}_{score}" for split in SPLITS for score in SCORES)
EPOCHS = ("final", "best")  # the final epoch's value, or the best epoch's


def maximise(metric: str) -> bool:
    """Accuracy, balanced accuracy and macro-F1 are maximised, loss minimised."""
    return not metric.endswith("_loss")


def on_test(metric: str) -> str:
    """The test split's twin of a metric (``val_acc`` -> ``test_acc``)."""
    return metric.replace("val_", "test_")


def column(metric: str, epoch: str = "final") -> str:
    """The summary column holding ``metric`` at the ``final`` or the ``best`` epoch
    (``final_val_acc``, ``best_val_acc``, ``min_val_loss``)."""
    if metric not in METRICS or epoch not in EPOCHS:
        raise KeyError((metric, epoch))
    if epoch == "best":
        return f"{'best' if maximise(metric) else 'min'}_{metric}"
    return f"final_{metric}"


def describe(metric: str, epoch: str = "final") -> str:
    """A metric in words: ``final validation accuracy``."""
    split, score = metric.split("_", 1)
    return f"{epoch} {SPLITS[split]} {SCORES[score]}"
