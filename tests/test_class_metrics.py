"""Balanced accuracy and macro-F1 in the report: from saved predictions for every run (older
ones too), per epoch for newer runs, selected and searched on (older runs refused by name), and
the best setting's per-class accuracy for findings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score
from support.runfactory import Sweep, approach

from hpstudy.core.config import validate_config
from hpstudy.core.errors import HpstudyError
from hpstudy.core.metrics import maximise
from hpstudy.report.class_metrics import (
    chance_accuracy,
    chance_from_labels,
    per_class_section,
    prediction_scores,
)
from hpstudy.tuning import search_rounds, selection

DATA = {"name": "mine", "image_size": 48, "num_classes": 3, "val_count": 60, "test_count": 40}
LRS = (0.1, 0.01)


def sweep_of(root, new: bool, seeds=(0, 1)) -> Sweep:
    """An lr study; ``new``: its runs carry per-epoch balanced accuracy (best at lr 0.1)."""
    sweep = Sweep(root, data=DATA)

    def curves(lr, seed):
        out = {"val_acc": approach(0.4, 0.8 if lr == 0.01 else 0.7, 4)}
        if new:
            out["val_balanced_acc"] = approach(0.4, 0.6 if lr == 0.01 else 0.75, 4)
        return out

    sweep.study("lr", "lr", list(LRS), seeds=seeds, epochs=4, curves=curves)
    return sweep


def test_every_run_gets_final_test_scores_from_its_predictions(tmp_path):
    summary, metrics = sweep_of(tmp_path, new=False).tables()
    run_dir = tmp_path / "runs" / summary["run_id"].iloc[0]
    with np.load(run_dir / "predictions.npz") as saved:
        labels, preds = saved["label"], saved["pred"]
    expected = balanced_accuracy_score(labels, preds)
    assert summary["final_test_balanced_acc"].iloc[0] == pytest.approx(expected)
    assert summary["final_test_macro_f1"].iloc[0] == pytest.approx(
        f1_score(labels, preds, average="macro")
    )
    assert prediction_scores(run_dir)["final_test_balanced_acc"] == pytest.approx(expected)
    assert metrics["val_balanced_acc"].isna().all()  # older metrics.csv files lack it: empty
    seeds = pd.read_csv(tmp_path / "results" / "seed_summary.csv")
    assert "final_test_balanced_acc_mean" in seeds


def test_older_and_newer_metrics_files_aggregate_together(tmp_path):
    sweep = sweep_of(tmp_path, new=True)
    (old,) = sweep.study("wd", "weight_decay", [0.0], seeds=(0,), epochs=4)  # an older run
    for name in ("params.json", "summary.json"):  # written before the new settings existed
        path = tmp_path / "runs" / old / name
        content = json.loads(path.read_text())
        params = content.get("params", content)
        for key in ("class_weight", "in_memory"):
            del params["settings"][key]
        path.write_text(json.dumps(content))
    summary, metrics = sweep.tables()
    assert summary.loc[summary["run_id"] == old, "class_weight"].tolist() == ["none"]
    older = metrics[metrics["weight_decay"] == 0.0]
    assert older["val_balanced_acc"].isna().all() and older["test_acc"].notna().all()
    newer = metrics[metrics["weight_decay"] != 0.0]
    assert newer["val_balanced_acc"].notna().all() and newer["val_macro_f1"].notna().all()


@pytest.mark.parametrize("metric", ["val_balanced_acc", "val_macro_f1"])
def test_selection_on_a_class_score_picks_its_own_winner(tmp_path, metric):
    summary, metrics = sweep_of(tmp_path, new=True).tables()
    best, _ = selection.select(summary, metrics, {"metric": metric, "epoch": "best"})
    assert best["studies"]["lr"]["winner"]["values"] == {"lr": 0.1}  # val_acc would pick 0.01
    by_acc, _ = selection.select(summary, metrics, {"metric": "val_acc"})
    assert by_acc["studies"]["lr"]["winner"]["values"] == {"lr": 0.01}
    assert best["studies"]["lr"]["epochs"] == 4


def test_selecting_on_a_class_score_over_older_runs_names_them_and_forcerun(tmp_path):
    summary, metrics = sweep_of(tmp_path, new=False).tables()
    with pytest.raises(HpstudyError) as err:
        selection.select(summary, metrics, {"metric": "val_balanced_acc"})
    message = str(err.value)
    assert summary["run_id"].iloc[0] in message and "--forcerun" in message
    assert "4 run(s)" in message


def test_the_config_accepts_class_scores_for_selection_and_search():
    config = validate_config({
        "dataset": {"source": "digits", "name": "digits", "image_size": 40, "val_fraction": 0.2},
        "studies": {"lr": {"param": "lr", "values": [1e-3]}},
        "selection": {"metric": "val_macro_f1"},
        "search": {"s": {"space": {"lr": {"low": 1e-4, "high": 1e-2}},
                         "metric": "val_balanced_acc"}},
        "train": {"class_weight": "balanced", "in_memory": False},
    })  # fmt: skip
    assert config["search"]["s"]["metric"] == "val_balanced_acc"
    assert maximise("val_macro_f1") and not maximise("val_loss")


def test_a_search_on_a_class_score_tells_it_and_refuses_older_trials():
    spec = {"metric": "val_macro_f1", "on_test": False}
    proposals = {"search": "s", "round": 0, "note": "n", "runs": [
        {"trial": 0, "slot": 0, "rung": 0, "params": {}, "optuna_params": {},
         "settings": {}, "seed": 0}]}  # fmt: skip
    summary = {"final_val_acc": 0.8, "final_val_macro_f1": 0.7, "diverged": False,
               "epochs_completed": 2, "run_id": "v/x/seed-0",
               "params": {"data": {"num_classes": 3}}}  # fmt: skip
    assert search_rounds.tell(spec, proposals, [summary])["trials"][0]["value"] == 0.7
    del summary["final_val_macro_f1"]
    with pytest.raises(HpstudyError, match="v/x/seed-0.*--forcerun"):
        search_rounds.tell(spec, proposals, [summary])


def test_the_best_settings_per_class_accuracy_and_chance(tmp_path):
    sweep = sweep_of(tmp_path, new=False)
    summary, _ = sweep.tables()
    lines = per_class_section(summary, tmp_path / "runs")
    text = "\n".join(lines)
    assert lines[0] == "## Per-class accuracy of the best setting"
    assert "| c0 |" in text and "| c2 |" in text and "chance" in text
    # every setting ends at the same test accuracy here: the first one is the best
    assert lines[2] == "### Per-class test accuracy: lr (lr=0.1, 2 seed(s))"
    assert chance_accuracy({"a": 6, "b": 2}) == 0.75
    assert chance_from_labels(np.array([0, 0, 0, 2])) == 0.75
    params = json.loads((tmp_path / "runs" / summary["run_id"].iloc[0] / "params.json").read_text())
    assert params["data"]["classes"] == ["c0", "c1", "c2"]
