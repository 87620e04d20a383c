"""``train.class_weight: balanced``: the training loss weighted by inverse class frequency.

Each class weighs ``n / (k * n_c)`` (scikit-learn's "balanced": n training images, k classes,
n_c of class c), so every class contributes alike to the loss; a class without training images
weighs 0 (it never is a target). The weighted loss is what the model trains on; evaluation
(which runs in inference mode) keeps the plain cross-entropy, so validation and test losses
stay comparable across runs with and without weighting (selection may compare them).

Part of the code digest only of runs that set it
(:func:`hpstudy.training.identity.code_digest`); the loss module of every other run
(:func:`hpstudy.training.optim.build_loss`) is untouched."""

from __future__ import annotations

import torch
from torch import nn


def balanced_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``n / (k * n_c)`` per class (float32, on the labels' device); 0 for an absent class."""
    counts = torch.bincount(labels.long(), minlength=num_classes)[:num_classes].double()
    weights = len(labels) / (num_classes * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.zeros_like(weights)).float()


class BalancedLoss(nn.Module):
    """Cross-entropy weighted per class while training; unweighted under inference mode."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights)
        self.weighted = nn.CrossEntropyLoss(weight=weights)
        self.plain = nn.CrossEntropyLoss()

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The batch's loss: the weighted mean (weights of the batch's targets) in training."""
        if torch.is_inference_mode_enabled():
            return self.plain(logits, labels)
        return self.weighted(logits, labels)


def class_weighted_loss(setting: str, labels: torch.Tensor, num_classes: int) -> nn.Module | None:
    """The loss a run with ``class_weight: setting`` trains on (None: the default loss)."""
    if setting in (None, "none"):
        return None
    return BalancedLoss(balanced_weights(labels, num_classes))
