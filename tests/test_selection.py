"""Selection picks each study's winner on validation numbers (never the test set unless told),
with its interval and runner-up; the final runs retrain it and final.csv reports it once."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from support.runfactory import Sweep, approach, write_run

from hpstudy.cli import main as cli_main
from hpstudy.core.config import validate_config
from hpstudy.core.errors import HpstudyError
from hpstudy.report import findings, findings_report
from hpstudy.report.tables import read_table
from hpstudy.sweep import added_runs
from hpstudy.sweep.plan import data_variant
from hpstudy.tuning import selection

LRS = (0.1, 0.01, 0.001)
DATA = {"name": "mine", "image_size": 48, "num_classes": 6, "val_count": 500}


def ends_at(final, epochs=5, start=0.3):
    return approach(start, final, epochs)[:-1] + [final]


def planted(root, val: dict | None, test: dict, seeds=(0, 1, 2), epochs=5) -> Sweep:
    """A learning-rate study whose val (and test) accuracy ends at the values given per lr;
    seeds scatter by a tenth of a point."""
    sweep = Sweep(root, data=DATA)

    def curves(lr, seed):
        jitter = 0.001 * (seed - 1)
        out = {"test_acc": ends_at(test[lr] + jitter, epochs)}
        if val is not None:
            out["val_acc"] = ends_at(val[lr] + jitter, epochs)
        return out

    sweep.study("lr", "lr", list(LRS), seeds=seeds, epochs=epochs, curves=curves)
    return sweep


VAL = {0.1: 0.70, 0.01: 0.90, 0.001: 0.86}
TEST = {0.1: 0.70, 0.01: 0.84, 0.001: 0.88}  # the test set would pick another winner


def test_selection_picks_the_validation_winner_not_the_test_one(tmp_path):
    summary, metrics = planted(tmp_path, VAL, TEST).tables()
    best, winners = selection.select(summary, metrics, {"metric": "val_acc", "epoch": "final"})
    chosen = best["studies"]["lr"]
    assert chosen["winner"]["values"] == {"lr": 0.01}
    assert chosen["winner"]["seeds"] == 3
    assert chosen["winner"]["low"] < 0.90 < chosen["winner"]["high"]
    assert chosen["runner_up"]["values"] == {"lr": 0.001}
    assert chosen["separable"] is True  # 4 points apart, seeds a tenth of a point apart
    assert best["selected_on"] == "validation"
    assert winners["lr"].endswith("seed-0") and "lr-0.01" in winners["lr"]


def test_close_candidates_are_said_not_separable(tmp_path):
    close = {0.1: 0.70, 0.01: 0.900, 0.001: 0.899}
    sweep = Sweep(tmp_path, data=DATA)
    spread = {0: -0.02, 1: 0.0, 2: 0.02}  # seeds two points apart: a 0.1-point lead is noise
    sweep.study(
        "lr", "lr", list(LRS), seeds=(0, 1, 2), epochs=5,
        curves=lambda lr, seed: {"val_acc": ends_at(close[lr] + spread[seed])},
    )  # fmt: skip
    summary, metrics = sweep.tables()
    best, _ = selection.select(summary, metrics, {})
    chosen = best["studies"]["lr"]
    assert chosen["winner"]["values"] == {"lr": 0.01}
    assert chosen["separable"] is False
    assert chosen["difference"]["low"] < 0 < chosen["difference"]["high"]


def test_loss_metric_picks_the_lowest_and_best_epoch_sets_the_final_length(tmp_path):
    sweep = Sweep(tmp_path, data=DATA)
    peak = [0.5, 0.7, 0.9, 0.8, 0.75]  # the 0.01 run peaks at epoch 3
    sweep.study(
        "lr", "lr", list(LRS), seeds=(0, 1), epochs=5,
        curves=lambda lr, seed: {"val_acc": peak if lr == 0.01 else ends_at(0.6)},
    )  # fmt: skip
    summary, metrics = sweep.tables()
    best, _ = selection.select(summary, metrics, {"metric": "val_acc", "epoch": "best"})
    assert best["studies"]["lr"]["winner"]["values"] == {"lr": 0.01}
    assert best["studies"]["lr"]["epochs"] == 3
    runs = selection.final_runs(best, {"lr": {"lr": 0.01, "epochs": 5}}, {"seeds": [4, 5]})
    assert [r["seed"] for r in runs] == [4, 5]
    assert runs[0]["settings"] == {
        "lr": 0.01, "epochs": 3, "train_on": "train+val", "early_stopping": None,
        "keep_checkpoint": False,
    }  # fmt: skip


def test_selection_refuses_without_validation_numbers(tmp_path):
    summary, metrics = planted(tmp_path, None, TEST).tables()
    with pytest.raises(HpstudyError, match="val_fraction.*on_test: true"):
        selection.select(summary, metrics, {})


def test_on_test_selects_on_the_test_split_and_says_so_everywhere(tmp_path):
    sweep = planted(tmp_path, None, TEST)
    sweep.aggregate()
    out = tmp_path / "best.yaml"
    added_file = tmp_path / "added" / "final.json"
    rc = cli_main(
        ["select", "--tables", str(sweep.out), "--runs-dir", str(sweep.runs_dir),
         "--selection", '{"on_test": true}', "--final", '{"seeds": [0]}',
         "--added-out", str(added_file), "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    text = out.read_text()
    assert text.startswith("# selected on the test set")
    best = yaml.safe_load(text)
    assert best["studies"]["lr"]["winner"]["values"] == {"lr": 0.001}  # the test winner
    assert best["note"] == selection.ON_TEST
    section = "\n".join(findings_report.selection_section(best, None))
    assert "selected on the test set" in section


def test_select_then_final_writes_the_added_runs_and_the_final_table(tmp_path, capsys):
    sweep = planted(tmp_path, VAL, TEST)
    sweep.aggregate()
    best_path, added_file = tmp_path / "best.yaml", tmp_path / "added" / "final.json"
    assert cli_main(
        ["select", "--tables", str(sweep.out), "--runs-dir", str(sweep.runs_dir),
         "--selection", "{}", "--final", '{"seeds": [7, 8]}',
         "--added-out", str(added_file), "--out", str(best_path)]
    ) == 0  # fmt: skip
    assert "lr: lr=0.01 (selected on the validation split)" in capsys.readouterr().out
    pairs = added_runs.read(added_file, data_variant({"name": "mine", "image_size": 48}), {
        "name": "mine", "image_size": 48, "source": "folder", "val_fraction": 0.2})  # fmt: skip
    assert [(study, run.seed) for study, run in pairs] == [("lr", 7), ("lr", 8)]
    run = pairs[0][1]
    assert run.settings["lr"] == 0.01 and run.settings["train_on"] == "train+val"
    assert run.settings["early_stopping"] is None and run.settings["epochs"] == 5
    assert "on-train+val" in run.name  # a new run: its identity differs from the sweep's
    # the final runs trained: two summaries with test accuracies 0.80 and 0.82
    summaries = []
    for seed, acc in ((7, 0.80), (8, 0.82)):
        rid = write_run(
            tmp_path / "final-runs", seed=seed, data=DATA, test_acc=ends_at(acc),
            **{k: v for k, v in run.settings.items() if k in ("lr", "epochs", "train_on")},
        )  # fmt: skip
        summaries.append(str(tmp_path / "final-runs" / rid / "summary.json"))
    final_csv = tmp_path / "final.csv"
    assert cli_main(
        ["final", "--best", str(best_path), "--added", str(added_file),
         "--summaries", *summaries, "--out", str(final_csv)]
    ) == 0  # fmt: skip
    row = read_table(final_csv).iloc[0]
    assert row["study"] == "lr" and row["winner"] == "lr=0.01" and row["seeds"] == 2
    assert row["test_acc_mean"] == pytest.approx(0.81)
    assert row["test_acc_low"] < 0.80 and row["test_acc_high"] > 0.82
    assert row["train_on"] == "train+val" and row["selected_on"] == "validation"
    assert "81.0% [" in capsys.readouterr().out


def test_final_refuses_a_summary_count_that_does_not_match(tmp_path):
    best = tmp_path / "best.yaml"
    best.write_text(yaml.safe_dump({"studies": {}}))
    runs = tmp_path / "final.json"
    added_runs.write(runs, "final", [{"study": "lr", "settings": {}, "seed": 0}])
    with pytest.raises(HpstudyError, match="names 1 final runs but 0 summaries"):
        selection.final_main(
            ["--best", str(best), "--added", str(runs), "--summaries", "--out", "x.csv"]
        )


def test_a_config_selecting_without_any_validation_split_is_refused_before_any_job():
    config = {"dataset": {"source": "digits"}, "selection": {}, "studies": {
        "lr": {"param": "lr", "values": [0.1, 0.01]}}}  # fmt: skip
    with pytest.raises(HpstudyError, match="brings no validation split"):
        validate_config(config)
    ok = validate_config({**config, "dataset": {"source": "digits", "val_fraction": 0.2}})
    assert ok["selection"] == {"metric": "val_acc", "epoch": "final", "on_test": False}
    assert validate_config({**config, "selection": {"on_test": True}})["selection"]["on_test"]
    # final alone implies selection with its defaults
    implied = validate_config(
        {"dataset": {"source": "digits", "val_fraction": 0.2}, "final": {"seeds": [0]},
         "studies": config["studies"]}
    )  # fmt: skip
    assert implied["selection"]["metric"] == "val_acc"
    assert implied["final"] == {"seeds": [0], "train_on": "train+val"}


def test_final_runs_on_train_val_without_a_validation_split_are_refused_before_any_job():
    config = {
        "dataset": {"source": "digits"},
        "selection": {"on_test": True},
        "final": {"seeds": [0]},
        "studies": {"lr": {"param": "lr", "values": [0.1]}},
    }
    with pytest.raises(HpstudyError) as refused:
        validate_config(config)
    message = str(refused.value)
    assert "final.train_on: train" in message and "dataset.val_fraction" in message
    assert "\n" not in message  # one paragraph
    chosen = validate_config({**config, "final": {"seeds": [0], "train_on": "train"}})
    assert chosen["final"]["train_on"] == "train"
    with_val = {**config, "dataset": {"source": "digits", "val_fraction": 0.2}}
    assert validate_config(with_val)["final"]["train_on"] == "train+val"


@pytest.mark.parametrize("selected_on", ["validation", "test"])
def test_the_final_number_is_the_number_to_report_only_when_selected_on_validation(selected_on):
    win = {"values": {"lr": 0.01}, "mean": 0.8, "low": 0.78, "high": 0.82, "seeds": 3}
    best = {
        "note": f"selected on the {selected_on} set",
        "metric": f"{selected_on[:4]}_acc",
        "epoch": "final",
        "selected_on": selected_on,
        "studies": {
            "lr": {"winner": win, "runner_up": None, "difference": None, "separable": None}
        },
    }
    final = pd.DataFrame([{"study": "lr", "winner": "lr=0.01", "train_on": "train", "epochs": 4,
                           "test_acc_mean": 0.8, "test_acc_low": 0.78, "test_acc_high": 0.82,
                           "seeds": 3}])  # fmt: skip
    section = " ".join(findings.selection_section(best, final))
    if selected_on == "validation":
        assert "the number to report." in section
    else:
        assert "not a number to report as it stands" in section
        assert "selected on the test set" in section and "that run itself" in section
