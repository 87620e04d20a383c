"""Scores that weigh every class alike, from true and predicted classes: balanced accuracy,
macro-F1, per-class accuracy (recall) and the chance level of an imbalanced split.

Plain NumPy, so the training job (per epoch) and the report (from ``predictions.npz``) compute
them the same way. The definitions are scikit-learn's defaults:
``balanced_accuracy_score(y, p)`` is the mean recall over the classes present in ``y``;
``f1_score(y, p, average="macro")`` the mean F1 over the classes present in ``y`` or ``p``.
"""

from __future__ import annotations

import math

import numpy as np


def confusion(labels, preds) -> np.ndarray:
    """The confusion matrix (rows: true class, columns: predicted class), sized to the largest
    class index seen."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    preds = np.asarray(preds, dtype=np.int64).ravel()
    size = int(max(labels.max(initial=-1), preds.max(initial=-1))) + 1
    return np.bincount(labels * size + preds, minlength=size * size).reshape(size, size)


def balanced_accuracy(labels, preds) -> float:
    """Mean per-class recall over the classes present among ``labels`` (nan when empty)."""
    matrix = confusion(labels, preds)
    support = matrix.sum(axis=1)
    present = support > 0
    if not present.any():
        return math.nan
    return float(np.mean(np.diag(matrix)[present] / support[present]))


def macro_f1(labels, preds) -> float:
    """Mean F1 over the classes present among ``labels`` or ``preds`` (nan when empty)."""
    matrix = confusion(labels, preds)
    true_pos = np.diag(matrix).astype(np.float64)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # 2 tp + fp + fn
    seen = denominator > 0
    if not seen.any():
        return math.nan
    return float(np.mean(2 * true_pos[seen] / denominator[seen]))


def per_class_accuracy(labels, preds, num_classes: int) -> np.ndarray:
    """Each class's accuracy (its recall: the share of its images predicted right); nan for a
    class with no image."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    preds = np.asarray(preds, dtype=np.int64).ravel()
    support = np.bincount(labels, minlength=num_classes)[:num_classes]
    right = np.bincount(labels[labels == preds], minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, right / np.maximum(support, 1), np.nan)


def chance_level(counts) -> float:
    """The accuracy of always guessing the largest class: its share of the images (a list of
    per-class counts, or a mapping class -> count). nan for no images."""
    values = np.asarray(list(counts.values()) if isinstance(counts, dict) else counts, float)
    total = values.sum()
    return float(values.max() / total) if total > 0 else math.nan


def class_scores(labels, preds) -> dict[str, float]:
    """``balanced_acc`` and ``macro_f1`` of one split's predictions."""
    return {"balanced_acc": balanced_accuracy(labels, preds), "macro_f1": macro_f1(labels, preds)}
