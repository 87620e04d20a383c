"""Optimizer, loss and learning-rate schedule of a run.

The loss is ``CrossEntropyLoss()`` with its default batch mean, as in the post. With Adam's
coupled L2 (``weight_decay`` added to the gradient) a summed loss would scale the gradient by the
batch size but not the decay term, silently weakening weight decay by that factor.

The schedule is a pure function of the epoch (:func:`epoch_lr`), set at the start of each
epoch: a resumed run, or one extended later, follows it exactly with no scheduler state to
save, and a run of ``epochs`` E on a schedule of ``schedule_epochs`` S > E is the first E
epochs of the run of length S.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

ONECYCLE_RISE = 0.3  # share of the schedule spent rising (torch's OneCycleLR pct_start)
ONECYCLE_START = 25.0  # starts at lr / this (torch's div_factor)
ONECYCLE_END = 1e4  # ends at lr / this (torch's final_div_factor)


def build_optimizer(settings: dict, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """``adam`` (coupled L2, as the post), ``adamw`` (decoupled) or ``sgd`` with momentum."""
    name, lr, wd = settings["optimizer"], float(settings["lr"]), float(settings["weight_decay"])
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.SGD(
        params,
        lr=lr,
        momentum=float(settings["momentum"]),
        nesterov=bool(settings["nesterov"]),
        weight_decay=wd,
    )


def build_loss() -> nn.Module:
    """The training loss: cross-entropy averaged over the batch (the post's default)."""
    return nn.CrossEntropyLoss()


def schedule_length(settings: dict) -> int:
    """The epochs the schedule spans: ``schedule_epochs``, or the run's own length."""
    return int(settings["schedule_epochs"] or settings["epochs"])


def epoch_lr(settings: dict, epoch: int) -> float:
    """The learning rate of ``epoch`` (1-based): linear warm-up over ``warmup_epochs``, then
    the schedule, started afresh after the warm-up."""
    lr, warmup = float(settings["lr"]), int(settings["warmup_epochs"])
    if epoch <= warmup:
        return lr * epoch / (warmup + 1)
    t = epoch - warmup - 1  # epochs into the schedule
    span = max(schedule_length(settings) - warmup, 1)
    name = settings["scheduler"]
    if name == "step":
        return lr * float(settings["gamma"]) ** (t // int(settings["step_size"]))
    if name == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * min(t, span) / span))
    if name == "onecycle":
        rise = max(1, round(ONECYCLE_RISE * span))
        if t < rise:
            low = lr / ONECYCLE_START
            return low + (lr - low) * t / rise
        floor, fall = lr / ONECYCLE_END, max(span - rise, 1)
        return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(t - rise, fall) / fall))
    return lr


def set_epoch_lr(optimizer: torch.optim.Optimizer, settings: dict, epoch: int) -> None:
    """Set every parameter group's learning rate for ``epoch``."""
    for group in optimizer.param_groups:
        group["lr"] = epoch_lr(settings, epoch)
