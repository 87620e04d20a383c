"""Aggregation of run folders into the results tables."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from runfactory import METRIC_COLUMNS, approach, write_run, write_study

from hpstudy import aggregate
from hpstudy.cli import main as cli_main
from hpstudy.errors import HpstudyError


@pytest.fixture()
def runs_dir(tmp_path):
    """Two seeds x three learning rates (4 epochs) and one kernel-width run (3 epochs)."""
    runs = tmp_path / "runs"
    write_study(
        runs,
        "learning_rate",
        "lr",
        [1e-7, 1e-4, 1e-2],
        seeds=(0, 1),
        epochs=4,
        curves=lambda v, s: {"test_acc": approach(0.2, 0.5 + 0.1 * s, 4)},
    )
    write_run(runs, experiment="kernel_width", param="kernel_width", value=[3, 5, 7], epochs=3)
    return runs


def test_metrics_table_has_one_row_per_run_and_epoch_with_settings(runs_dir, tmp_path):
    paths = aggregate.write_results(aggregate.find_run_dirs(runs_dir), tmp_path / "out")
    metrics = aggregate.read_table(paths["metrics"])
    assert len(metrics) == 6 * 4 + 3
    for column in [
        "run_id",
        "experiment",
        "param",
        "value",
        "seed",
        "model",
        "lr",
        "batch_size",
        "kernel_width",
        "weight_decay",
        "optimizer",
        "num_classes",
    ]:
        assert column in metrics.columns, column  # fmt: skip
    # every per-epoch metric is there; the run's per-epoch lr is renamed so `lr` is the setting
    for column in METRIC_COLUMNS:
        assert (column if column != "lr" else "epoch_lr") in metrics.columns
    assert "requested_device" in metrics.columns and "device" not in metrics.columns
    kernel = metrics[metrics["experiment"] == "kernel_width"]
    assert set(kernel["kernel_width"]) == {"3-5-7"}
    assert kernel["epoch"].tolist() == [1, 2, 3]
    one = metrics[metrics["run_id"] == "learning_rate/lr-1e-04/seed-1"]
    assert one["lr"].unique().tolist() == [1e-4]
    assert one["seed"].unique().tolist() == [1]


def test_summary_numbers_come_from_the_run_curves(tmp_path):
    runs = tmp_path / "runs"
    write_run(
        runs,
        epochs=5,
        test_acc=[0.3, 0.6, 0.8, 0.7, 0.75],
        test_loss=[1.5, 1.0, 0.6, 0.7, 0.9],
        train_loss=[1.6, 1.1, 0.7, 0.5, 0.4],
        epoch_time_s=[1.0, 2.0, 3.0, 4.0, 5.0],
        param_count=1234,
    )
    summary = aggregate.build_summary_table(
        [aggregate.load_run(d) for d in [runs / "learning_rate/lr-1e-04/seed-0"]]
    )
    row = summary.iloc[0]
    assert row["final_test_acc"] == pytest.approx(0.75)
    assert row["best_test_acc"] == pytest.approx(0.8) and row["best_epoch"] == 3
    assert row["min_test_loss"] == pytest.approx(0.6) and row["min_test_loss_epoch"] == 3
    assert row["final_train_loss"] == pytest.approx(0.4)
    assert row["mean_epoch_time_s"] == pytest.approx(3.0)
    assert row["param_count"] == 1234 and row["device"] == "cpu"
    assert not row["diverged"] and pd.isna(row["diverged_epoch"])


def test_diverged_run_is_flagged_with_its_epoch(tmp_path):
    run_dir = write_run(tmp_path / "runs", epochs=4, diverged=True)
    summary = aggregate.build_summary_table([aggregate.load_run(run_dir)])
    assert bool(summary.loc[0, "diverged"]) and summary.loc[0, "diverged_epoch"] == 4
    assert math.isnan(summary.loc[0, "final_train_loss"])


def test_seed_summary_means_and_stds_across_seeds(runs_dir, tmp_path):
    paths = aggregate.write_results(aggregate.find_run_dirs(runs_dir), tmp_path / "out")
    seeds = pd.read_csv(paths["seed_summary"])
    assert len(seeds) == 4  # three learning rates + one kernel width
    lr_rows = seeds[seeds["experiment"] == "learning_rate"]
    assert lr_rows["n_seeds"].tolist() == [2, 2, 2]
    summary = pd.read_csv(paths["summary"])
    finals = summary.loc[summary["experiment"] == "learning_rate", "final_test_acc"]
    expected_std = pd.Series(finals.iloc[:2].tolist()).std()
    assert lr_rows["final_test_acc_mean"].iloc[0] == pytest.approx(finals.iloc[:2].mean())
    assert lr_rows["final_test_acc_std"].iloc[0] == pytest.approx(expected_std)
    assert expected_std > 0
    # one seed: the std is NaN, not zero
    kernel = seeds[seeds["experiment"] == "kernel_width"].iloc[0]
    assert kernel["n_seeds"] == 1 and math.isnan(kernel["final_test_acc_std"])


def test_summary_json_matches_csv(runs_dir, tmp_path):
    paths = aggregate.write_results(aggregate.find_run_dirs(runs_dir), tmp_path / "out")
    records = json.loads(paths["summary_json"].read_text())
    summary = pd.read_csv(paths["summary"])
    assert [r["run_id"] for r in records] == summary["run_id"].tolist()
    assert records[0]["final_test_acc"] == pytest.approx(summary["final_test_acc"].iloc[0])


def test_cli_with_run_ids_and_missing_run_error(runs_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["aggregate", "--runs-dir", str(runs_dir), "--run-ids",
                   "learning_rate/lr-1e-04/seed-0", "learning_rate/lr-0.01/seed-1",
                   "--out-dir", str(out)])  # fmt: skip
    assert rc == 0
    assert pd.read_csv(out / "summary.csv")["run_id"].tolist() == [
        "learning_rate/lr-1e-04/seed-0",
        "learning_rate/lr-0.01/seed-1",
    ]
    rc = cli_main(["aggregate", "--runs-dir", str(runs_dir), "--run-ids", "nope/seed-0",
                   "--out-dir", str(out)])  # fmt: skip
    assert rc == 1
    assert "nope/seed-0" in capsys.readouterr().err


def test_missing_runs_dir_is_a_clear_error(tmp_path):
    with pytest.raises(HpstudyError, match="No finished run"):
        aggregate.find_run_dirs(tmp_path / "empty")
