"""Optimizer and loss of a run.

The loss is ``CrossEntropyLoss()`` with its default batch mean, as in the post. With Adam's
coupled L2 (``weight_decay`` added to the gradient) a summed loss would scale the gradient by the
batch size but not the decay term, silently weakening weight decay by that factor.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def build_optimizer(settings: dict, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """``adam`` (coupled L2, as the post), ``adamw`` (decoupled) or ``sgd`` with momentum."""
    name, lr, wd = settings["optimizer"], float(settings["lr"]), float(settings["weight_decay"])
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=float(settings["momentum"]), weight_decay=wd)


def build_loss() -> nn.Module:
    """The training loss: cross-entropy averaged over the batch (the post's default)."""
    return nn.CrossEntropyLoss()
