"""Scores that weigh every class alike: balanced accuracy and macro-F1 as scikit-learn computes
them, per-class accuracy, chance on imbalanced data, and the class-weighted loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score

from hpstudy.core.class_scores import (
    balanced_accuracy,
    chance_level,
    macro_f1,
    per_class_accuracy,
)
from hpstudy.training.class_weight import BalancedLoss, balanced_weights, class_weighted_loss


@pytest.mark.parametrize("seed", range(6))
def test_balanced_accuracy_and_macro_f1_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(2, 9))
    # imbalanced labels; predictions that miss some classes and invent others
    labels = rng.choice(classes, size=200, p=np.arange(1, classes + 1) / sum(range(classes + 1)))
    preds = np.where(rng.random(200) < 0.6, labels, rng.integers(0, classes + 2, 200))
    assert balanced_accuracy(labels, preds) == pytest.approx(
        balanced_accuracy_score(labels, preds), abs=1e-12
    )
    assert macro_f1(labels, preds) == pytest.approx(
        f1_score(labels, preds, average="macro"), abs=1e-12
    )


def test_scores_on_saved_predictions_equal_scikit_learns(tmp_path):
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2], np.int16)
    preds = np.array([0, 0, 0, 0, 0, 1, 1, 0, 2, 0], np.int16)
    np.savez(tmp_path / "predictions.npz", label=labels, pred=preds, prob=np.ones(10, np.float32))
    saved = np.load(tmp_path / "predictions.npz")
    assert balanced_accuracy(saved["label"], saved["pred"]) == pytest.approx(
        balanced_accuracy_score(labels, preds)
    )
    assert macro_f1(saved["label"], saved["pred"]) == pytest.approx(
        f1_score(labels, preds, average="macro")
    )
    assert np.allclose(per_class_accuracy(labels, preds, 4)[:3], [5 / 6, 1 / 2, 1 / 2])
    assert math.isnan(per_class_accuracy(labels, preds, 4)[3])  # no image of class 3


def test_chance_is_the_largest_class_share():
    assert chance_level([60, 30, 10]) == 0.6
    assert chance_level({"ants": 1, "bees": 3}) == 0.75
    assert math.isnan(chance_level([0, 0]))


def test_balanced_weights_are_inverse_frequency_and_zero_for_absent_classes():
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    weights = balanced_weights(labels, 4)
    assert torch.allclose(weights, torch.tensor([6 / 12, 6 / 4, 6 / 8, 0.0]))
    assert class_weighted_loss("none", labels, 4) is None


def test_the_weighted_loss_trains_weighted_and_evaluates_plain():
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 3), torch.tensor([0, 0, 0, 0, 0, 0, 1, 2])
    loss = BalancedLoss(balanced_weights(labels, 3))
    weighted = torch.nn.functional.cross_entropy(logits, labels, weight=loss.weights)
    plain = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(loss(logits, labels), weighted) and not torch.allclose(weighted, plain)
    with torch.inference_mode():
        assert torch.allclose(loss(logits, labels), plain)


def test_epoch_scores_split_validation_from_test_and_check_evaluates_own(caplog):
    import torch

    from hpstudy.training.split_scores import PredictionRecorder, epoch_scores

    recorder = PredictionRecorder(torch.nn.Identity())
    val_logits, test_logits = torch.eye(3)[[0, 1, 1, 2]], torch.eye(3)[[2, 2, 0]]
    with torch.inference_mode():
        recorder(val_logits), recorder(test_logits)
    recorder(torch.eye(3))  # training: not recorded
    recorded = recorder.take()
    val, test = torch.tensor([0, 1, 2, 2]), torch.tensor([2, 1, 0])
    scores = epoch_scores(recorded, val, test, torch.tensor([2, 2, 0]))
    assert scores["val_balanced_acc"] == pytest.approx(balanced_accuracy_score(val, [0, 1, 1, 2]))
    assert scores["test_macro_f1"] == pytest.approx(f1_score(test, [2, 2, 0], average="macro"))
    assert recorder.take().numel() == 0
    wrong = epoch_scores(recorded, val, test, torch.tensor([0, 0, 0]))
    assert all(math.isnan(v) for v in wrong.values()) and "left empty" in caplog.text
