"""Budget curves: the expected best of k settings (or trials) drawn at random, by the
unbiased estimator, checked against every k-subset; the figure and the table."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from support.runfactory import Sweep

from hpstudy.report import budget
from hpstudy.report.trial_figures import budget_figure


def brute_force(values, k):
    """Mean and standard deviation of the best over every k-subset."""
    bests = [max(c) for c in itertools.combinations(values, k)]
    return np.mean(bests), np.std(bests)


@pytest.mark.parametrize("values", [[0.3, 0.9, 0.5, 0.5, 0.7, 0.1], [0.2], [0.4, 0.4, 0.8]])
def test_the_expected_best_matches_every_k_subset(values):
    mean, spread = budget.expected_best(values)
    for k in range(1, len(values) + 1):
        want_mean, want_std = brute_force(values, k)
        assert mean[k - 1] == pytest.approx(want_mean)
        assert spread[k - 1] == pytest.approx(want_std, abs=1e-12)
    assert mean[0] == pytest.approx(np.mean(values)) and mean[-1] == max(values)


def test_a_loss_is_minimised():
    values = [1.2, 0.4, 0.9, 2.0]
    mean, _ = budget.expected_best(values, maximise=False)
    want = [np.mean([min(c) for c in itertools.combinations(values, k)]) for k in range(1, 5)]
    assert mean == pytest.approx(want)


@pytest.fixture
def tables(tmp_path):
    sweep = Sweep(tmp_path, data={"val_count": 100})
    sweep.study("lr", "lr", [0.1, 0.01, 0.001], seeds=(0, 1), epochs=2,
                curves=lambda lr, seed: {"val_acc": [0.5, 0.6 + lr + seed / 100]})  # fmt: skip
    return sweep.tables()


def test_a_studys_curve_draws_settings_at_their_mean_over_seeds(tables):
    summary, metrics = tables
    curve = budget.study_curve(summary, metrics, "lr")
    assert curve.metric == "val_acc" and not curve.on_test
    assert sorted(curve.values) == pytest.approx([0.606, 0.615, 0.705])
    assert curve.mean[-1] == pytest.approx(0.705)
    # each setting: two runs of 2 epochs x 2 s; k settings cost k times that
    assert curve.k_hours == pytest.approx(np.arange(1, 4) * 8 / 3600)
    table = curve.table()
    assert list(table["k"]) == [1, 2, 3] and table["in_order_best"].isna().all()


def test_a_search_sits_beside_random_draws_from_its_own_trials():
    trials = pd.DataFrame({
        "trial": [0, 1, 2, 3], "value": [0.5, 0.7, 0.6, 0.9], "metric": "val_acc",
        "note": "searched on the validation split", "run_id": list("abcd"), "state": "complete",
    })  # fmt: skip
    summary = pd.DataFrame({"run_id": list("abcd"), "device_s": [3600.0] * 4,
                            "total_time_s": [1.0] * 4})  # fmt: skip
    metrics = pd.DataFrame(columns=["run_id", "train_time_s", "eval_time_s",
                                    "train_images_per_s"])  # fmt: skip
    curve = budget.search_curve(trials, summary, metrics, "s")
    assert list(curve.in_order) == [0.5, 0.7, 0.7, 0.9]
    assert curve.table()["in_order_hours"].tolist() == [1.0, 2.0, 3.0, 4.0]
    fig = budget_figure(curve, "s")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert any("random" in label for label in labels) and any("order" in lb for lb in labels)


def test_without_a_validation_split_the_figure_says_on_the_test_set(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study("bs", "batch_size", [32, 64], epochs=2)
    summary, metrics = sweep.tables()
    curve = budget.study_curve(summary, metrics, "bs")
    assert curve.on_test
    fig = budget_figure(curve, "bs")
    assert "on the test set" in fig.get_suptitle()
    assert "on the test set" in curve.table()["note"].iloc[0]


def test_every_study_of_two_settings_and_every_search_gets_the_figure_and_a_row(tmp_path):
    from hpstudy import rule_targets
    from hpstudy.cli import main as cli_main
    from hpstudy.report import figures
    from hpstudy.report.tables import read_table

    assert rule_targets.figure_kinds(["lr"], False, settings=3)[-1] == "budget"
    assert "budget" not in rule_targets.figure_kinds(["lr"], False, settings=1)
    assert "budget" in rule_targets.SEARCH_FIGURES
    sweep = Sweep(tmp_path)
    sweep.study("bs", "batch_size", [32, 64, 128], epochs=2)
    sweep.study("one", "lr", [0.1], epochs=2)
    sweep.aggregate()
    fig = figures.build_figure("budget", sweep.out, "bs")
    assert "bs: expected best test accuracy on the test set" in fig.get_suptitle()
    out = tmp_path / "budget.csv"
    assert cli_main(["budget", "--tables", str(sweep.out), "--out", str(out)]) == 0
    table = read_table(out)
    assert set(table["name"]) == {"bs"} and list(table["k"]) == [1, 2, 3]


def test_a_search_whose_trials_all_failed_gets_an_empty_curve():
    trials = pd.DataFrame({"trial": [0, 1], "value": [float("nan")] * 2, "metric": "val_acc",
                           "note": "n", "run_id": ["a", "b"], "state": "failed"})  # fmt: skip
    summary = pd.DataFrame(columns=["run_id", "device_s", "total_time_s"])
    metrics = pd.DataFrame(columns=["run_id", "train_time_s", "eval_time_s",
                                    "train_images_per_s"])  # fmt: skip
    curve = budget.search_curve(trials, summary, metrics, "s")
    assert len(curve.values) == 0 and curve.table().empty
    assert "no trial finished" in budget_figure(curve, "s").get_suptitle()
