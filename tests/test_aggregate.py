"""Aggregation of run folders into the results tables and the DVC headline."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from support.runfactory import Sweep, approach, write_run

from hpstudy.cli import main as cli_main
from hpstudy.core.errors import HpstudyError
from hpstudy.core.run_record import METRIC_COLUMNS
from hpstudy.report import aggregate
from hpstudy.report.tables import read_table


@pytest.fixture()
def sweep(tmp_path):
    """Learning rates x 2 seeds (4 epochs), kernel widths (3 epochs) sharing the 5-5-7 run
    with a batch-size study."""
    sweep = Sweep(tmp_path)
    sweep.study("learning_rate", "lr", [1e-7, 1e-4, 1e-2], seeds=(0, 1), epochs=4,
                curves=lambda v, s: {"test_acc": approach(0.2, 0.5 + 0.1 * s, 4)})  # fmt: skip
    sweep.study("kernel_width", "kernel_width", [[3, 3, 3], [5, 5, 7]], epochs=3)
    sweep.study("batch_size", "batch_size", [256, 450], epochs=3)
    return sweep


def test_metrics_table_has_each_run_once_per_epoch_with_its_settings(sweep):
    (metrics,) = sweep.tables("metrics.csv")
    # 6 lr runs x 4 epochs; kw 3-3-3, the shared default run (5-5-7 = batch 256) and bs 450
    assert len(metrics) == 6 * 4 + 3 * 3
    assert metrics.groupby("run_id")["epoch"].count().max() == 4
    for column in ["run_id", "variant", "name", "seed", "model", "lr", "batch_size",
                   "kernel_width", "weight_decay", "optimizer", "num_classes"]:  # fmt: skip
        assert column in metrics.columns, column
    for column in METRIC_COLUMNS:  # the per-epoch lr is renamed: `lr` is the setting
        assert (column if column != "lr" else "epoch_lr") in metrics.columns
    assert set(metrics["kernel_width"]) == {"5-5-7", "3-3-3"}
    one = metrics[metrics["run_id"] == "intel-image-classification-150/lr-1e-07_ep-4/seed-1"]
    assert one["lr"].unique().tolist() == [1e-7] and one["seed"].unique().tolist() == [1]


def test_a_shared_run_appears_in_each_study(sweep):
    (summary,) = sweep.tables("summary.csv")
    shared = "intel-image-classification-150/ep-3/seed-0"
    assert summary.loc[summary["run_id"] == shared, "study"].tolist() == [
        "kernel_width",
        "batch_size",
    ]
    assert summary["study_params"].tolist()[:6] == ["lr"] * 6
    assert len(summary) == 6 + 2 + 2


def test_summary_rows_carry_every_number_of_the_run_record(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study("s", "lr", [1e-4], epochs=5, curves=lambda v, s: {
        "test_acc": [0.3, 0.6, 0.8, 0.7, 0.75], "test_loss": [1.5, 1.0, 0.6, 0.7, 0.9],
        "train_loss": [1.6, 1.1, 0.7, 0.5, 0.4], "epoch_time_s": [1.0, 2.0, 3.0, 4.0, 5.0],
        "param_count": 1234})  # fmt: skip
    (summary,) = sweep.tables("summary.csv")
    row = summary.iloc[0]
    assert row["final_test_acc"] == pytest.approx(0.75)
    assert row["best_test_acc"] == pytest.approx(0.8) and row["best_epoch"] == 3
    assert row["min_test_loss"] == pytest.approx(0.6) and row["min_test_loss_epoch"] == 3
    assert row["final_train_loss"] == pytest.approx(0.4)
    assert row["mean_epoch_time_s"] == pytest.approx(3.0)
    assert row["param_count"] == 1234 and row["conv_param_count"] == 617
    assert not row["diverged"] and pd.isna(row["diverged_epoch"])


def test_diverged_run_is_flagged_with_its_epoch(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study("s", "lr", [1e-4], epochs=4, curves=lambda v, s: {"diverged": True})
    (summary,) = sweep.tables("summary.csv")
    assert bool(summary.loc[0, "diverged"]) and summary.loc[0, "diverged_epoch"] == 4
    assert math.isnan(summary.loc[0, "final_train_loss"])


def test_seed_summary_means_and_stds_across_seeds(sweep):
    seeds, summary = sweep.tables("seed_summary.csv", "summary.csv")
    assert len(seeds) == 3 + 2 + 2
    lr_rows = seeds[seeds["study"] == "learning_rate"]
    assert lr_rows["n_seeds"].tolist() == [2, 2, 2]
    finals = summary.loc[summary["study"] == "learning_rate", "final_test_acc"].iloc[:2]
    assert lr_rows["final_test_acc_mean"].iloc[0] == pytest.approx(finals.mean())
    assert lr_rows["final_test_acc_std"].iloc[0] == pytest.approx(finals.std()) and finals.std() > 0
    kernel = seeds[seeds["study"] == "kernel_width"].iloc[0]
    assert kernel["n_seeds"] == 1 and math.isnan(kernel["final_test_acc_std"])


def test_summary_json_matches_csv(sweep):
    paths = sweep.aggregate()
    records = json.loads(paths["summary.json"].read_text())
    summary = read_table(paths["summary.csv"])
    assert [r["run_id"] for r in records] == summary["run_id"].tolist()
    assert records[0]["final_test_acc"] == pytest.approx(summary["final_test_acc"].iloc[0])


def test_headline_is_a_handful_of_numbers_per_study(sweep):
    headline = json.loads(sweep.aggregate()["headline.json"].read_text())
    assert headline["runs"] == 9 and headline["runs_diverged"] == 0
    lr = headline["studies"]["learning_rate"]
    assert set(lr) == {"best_lr", "best_final_test_acc"}
    # every rate has the same two seeds' curves: the best is the first of the tied means
    tied = (approach(0.2, 0.5, 4)[-1] + approach(0.2, 0.6, 4)[-1]) / 2
    assert lr["best_final_test_acc"] == pytest.approx(tied) and lr["best_lr"] == 1e-7
    assert headline["studies"]["kernel_width"]["best_kernel_width"] in ("3-3-3", "5-5-7")
    leaves = [v for s in headline["studies"].values() for v in s.values()]
    assert len(leaves) == 6  # not one column per run x metric


def test_cli_reads_membership_from_a_file_and_names_a_missing_run(sweep, tmp_path, capsys):
    membership = tmp_path / "membership.json"
    membership.write_text(json.dumps(sweep.membership))
    out = tmp_path / "cli"
    argv = ["aggregate", "--runs-dir", str(sweep.runs_dir), "--membership", str(membership)]
    assert cli_main([*argv, "--out-dir", str(out)]) == 0
    assert read_table(out / "summary.csv")["run_id"].nunique() == 9
    missing = {"run_id": "intel-image-classification-150/lr-9/seed-0", "values": {"lr": 9.0}}
    sweep.membership["extra"] = {"params": ["lr"], "points": [missing]}
    membership.write_text(json.dumps(sweep.membership))
    assert cli_main([*argv, "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "lr-9/seed-0 lacks" in err and "has not finished" in err


def test_an_unreadable_summary_is_a_clear_error(tmp_path):
    run_id = write_run(tmp_path / "runs")
    (tmp_path / "runs" / run_id / "summary.json").write_text("{cut")
    with pytest.raises(HpstudyError, match="not valid JSON"):
        aggregate.load_run(tmp_path / "runs" / run_id)
