"""cost.csv: runs, device-hours and images seen per study, search, claim, the final runs and
the sweep; recorded device-seconds where a run has them, its epoch times where it predates
them."""

from __future__ import annotations

import json

import pytest
from support.runfactory import Sweep

from hpstudy.cli import main as cli_main
from hpstudy.report import cost
from hpstudy.report.tables import read_table

EPOCHS = 3  # each synthetic epoch: 2 s (1.6 s training, 0.4 s evaluation), 800 images


@pytest.fixture
def sweep(tmp_path):
    sweep = Sweep(tmp_path)
    lr = sweep.study("learning_rate", "lr", [0.1, 0.01], seeds=(0, 1), epochs=EPOCHS)
    sweep.study("again", "lr", [0.1], seeds=(0,), epochs=EPOCHS)  # shares lr's first run
    # one run recorded its device-seconds (trained by this version)
    path = sweep.runs_dir / lr[1] / "summary.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "device_s": 100.0, "train_device_s": 80.0,
                                "eval_device_s": 15.0, "startup_device_s": 5.0}))  # fmt: skip
    sweep.aggregate()
    return sweep, lr


def test_a_run_costs_what_it_recorded_or_its_epoch_times(sweep):
    sweep, lr = sweep
    summary, metrics = sweep.tables()
    costs = cost.run_costs(summary, metrics).set_index("run_id")
    assert costs.loc[lr[1], "device_s"] == 100.0 and not costs.loc[lr[1], "derived"]
    assert costs.loc[lr[0], "device_s"] == pytest.approx(EPOCHS * 2.0)
    assert costs.loc[lr[0], "derived"]
    assert (costs["images_seen"] == EPOCHS * 800).all()


def test_cost_csv_per_study_claim_and_sweep_counts_each_run_once(sweep, tmp_path):
    sweep, lr = sweep
    out = tmp_path / "cost.csv"
    argv = ["cost", "--tables", str(sweep.out), "--runs-dir", str(sweep.runs_dir)]
    assert cli_main([*argv, "--out", str(out)]) == 0
    table = read_table(out).set_index(["scope", "name"])
    study = table.loc[("study", "learning_rate")]
    assert study["runs"] == 4 and study["derived_runs"] == 3
    assert study["device_hours"] == pytest.approx((3 * EPOCHS * 2.0 + 100.0) / 3600)
    assert study["images_seen"] == 4 * EPOCHS * 800
    assert table.loc[("study", "again"), "runs"] == 1
    sweep_row = table.loc[("sweep", "sweep")]
    assert sweep_row["runs"] == 4  # the shared run once
    assert sweep_row["device_hours"] == pytest.approx(study["device_hours"])
    claims = table.loc["claim"]  # a claim costs every run of the study it judges
    on_lr = claims[claims["study"] == "learning_rate"]
    assert len(on_lr) >= 1 and (on_lr["runs"] == 4).all()
    assert (claims.loc[claims["study"] == "again", "runs"] == 1).all()


def test_a_search_and_the_final_runs_get_their_rows(sweep, tmp_path):
    sweep, lr = sweep
    summary, metrics = sweep.tables()
    search = (summary[summary["study"] == "again"], metrics)
    final = cost.run_folder_tables([sweep.runs_dir / lr[1] / "summary.json"])
    table = cost.cost_table(None, {"s": search}, [], final).set_index("scope")
    assert table.loc["search", "runs"] == 1 and table.loc["final", "runs"] == 1
    assert table.loc["final", "device_hours"] == pytest.approx(100 / 3600)
    assert table.loc["sweep", "runs"] == 2


def test_a_verdict_says_what_it_cost(sweep):
    sweep, _ = sweep
    summary, metrics = sweep.tables()
    text = cost.verdict_cost(summary, metrics, "learning_rate")
    assert text == "4 runs, 0.0328 device-hours, 9,600 images seen"
