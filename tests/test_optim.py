"""Optimizers and learning-rate schedules: every epoch's rate, against torch's own schedulers."""

from __future__ import annotations

import pytest
import torch

from hpstudy.training.identity import (
    canonical_settings,
    run_identity,
    run_name,
    trajectory_identity,
)
from hpstudy.training.optim import build_optimizer, epoch_lr


def rates(epochs=10, **settings):
    full = canonical_settings({"lr": 0.1, "epochs": epochs, **settings})
    return [epoch_lr(full, e) for e in range(1, epochs + 1)]


def torch_rates(make, epochs=10):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = make(optimizer)
    out = []
    for _ in range(epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_no_schedule_keeps_the_rate():
    assert rates() == [0.1] * 10


def test_step_matches_torchs_step_lr():
    expected = torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
    assert rates(scheduler="step", step_size=3, gamma=0.5) == pytest.approx(expected)


def test_cosine_matches_torchs_cosine_annealing_over_the_schedule_length():
    expected = torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10))
    assert rates(scheduler="cosine") == pytest.approx(expected)
    # a shorter run on a longer schedule is that schedule's first epochs
    assert rates(epochs=4, scheduler="cosine", schedule_epochs=10) == pytest.approx(expected[:4])


def test_onecycle_rises_to_lr_then_falls_towards_lr_over_ten_thousand():
    lr = rates(scheduler="onecycle")
    assert lr[0] == pytest.approx(0.1 / 25) and max(lr) == pytest.approx(0.1)
    peak = lr.index(max(lr))
    assert peak == 3 and all(a < b for a, b in zip(lr[:peak], lr[1 : peak + 1], strict=False))
    assert all(a > b for a, b in zip(lr[peak:], lr[peak + 1 :], strict=False))
    assert lr[-1] > 0.1 / 1e4


def test_warm_up_rises_linearly_then_the_schedule_starts_afresh():
    lr = rates(scheduler="cosine", warmup_epochs=3)
    assert lr[:3] == pytest.approx([0.025, 0.05, 0.075])
    expected = torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7), 7)
    assert lr[3:] == pytest.approx(expected)


def test_sgd_takes_momentum_and_nesterov():
    params = [torch.zeros(1, requires_grad=True)]
    sgd = build_optimizer(
        canonical_settings({"optimizer": "sgd", "nesterov": True, "momentum": 0.8}), params
    )
    assert sgd.defaults["nesterov"] is True and sgd.defaults["momentum"] == 0.8
    assert (
        type(build_optimizer(canonical_settings({"optimizer": "adamw"}), params))
        is torch.optim.AdamW
    )


def test_a_length_dependent_schedule_keeps_its_length_in_the_trajectory():
    def trajectory(**settings):
        return run_name(trajectory_identity(run_identity(canonical_settings(settings), 0)))

    # no schedule: runs of 3 and 9 epochs follow one trajectory (a longer one continues)
    assert trajectory(epochs=3) == trajectory(epochs=9)
    # cosine over the run's own length: different schedules, different trajectories
    assert trajectory(epochs=3, scheduler="cosine") != trajectory(epochs=9, scheduler="cosine")
    # cosine over a stated length: one trajectory again
    assert trajectory(epochs=3, scheduler="cosine", schedule_epochs=9) == trajectory(
        epochs=9, scheduler="cosine", schedule_epochs=9
    )
