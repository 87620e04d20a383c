"""The side-by-side with the post's own runs: matching by settings, the table, the figure."""

from __future__ import annotations

import pandas as pd
import pytest
from runfactory import Sweep

from hpstudy import compare, figures, reference, targets
from hpstudy.cli import main as cli_main
from hpstudy.config import validate_config
from hpstudy.plan import build_plan

RESNET = {"model": "resnet18", "pretrained": True, "batch_size": 32}


def test_reference_data_ships_with_the_package():
    runs, epochs = reference.post_runs(), pd.DataFrame(reference.post_epochs())
    assert len(runs) == 10 and set(epochs["run"]) == {r["run"] for r in runs}
    assert epochs.groupby("run").size().eq(10).all()


def test_runs_match_the_post_by_settings_not_study_name(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study(
        "my_lr", "lr", [1e-4], **RESNET, curves=lambda v, s: {"test_acc": [0.5] * 9 + [0.9]}
    )
    sweep.study("weight_decay", "weight_decay", [1.0, 0.5], batch_size=450)
    sweep.study("short", "lr", [1e-4], epochs=5, **RESNET)  # run1's settings, 5 epochs: no match
    sweep.study("kernel_width", "kernel_width", [[3, 3, 3]])  # not the post's network
    (summary,) = sweep.tables("summary.csv")
    table = compare.compare_with_post(summary)
    pairs = {
        (rid.split("/")[1], post)
        for rid, post in zip(table["run_id"], table["post_run"], strict=True)
    }
    assert pairs == {
        ("model-resnet18_pretrained-true_bs-32", "run1"),
        ("wd-1_bs-450", "run10"),
        ("wd-1_bs-450", "run5"),
        ("wd-1_bs-450", "run9"),
        ("wd-0.5_bs-450", "run5"),
        ("wd-0.5_bs-450", "run9"),
    }
    run1 = table[table["post_run"] == "run1"].iloc[0]
    assert run1["post_final_test_acc"] == pytest.approx(0.9243)
    assert run1["final_test_acc_diff"] == pytest.approx(0.9 - 0.9243)
    assert run1["best_test_acc_diff"] == pytest.approx(0.9 - 0.93)
    assert list(table.columns) == compare.COMPARISON_COLUMNS


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"data": {"num_classes": 10}}, "classes"), ({"data": {"image_size": 48}}, "size"),
     ({"optimizer": "sgd"}, "optimizer"), ({"pretrained": False}, "pretrained"),
     ({"batch_size": 64}, "batch")],
)  # fmt: skip
def test_each_setting_of_the_rule_can_break_the_match(tmp_path, overrides, reason):
    sweep = Sweep(tmp_path)
    sweep.study("lr", "lr", [1e-4], **{**RESNET, **overrides})
    (summary,) = sweep.tables("summary.csv")
    assert compare.compare_with_post(summary).empty, reason


def test_digits_find_no_rows_and_the_csv_keeps_its_header(tmp_path, capsys):
    sweep = Sweep(tmp_path, data={"name": "digits", "image_size": 48, "num_classes": 10})
    sweep.study("bs", "batch_size", [450])
    sweep.aggregate()
    out = sweep.out
    argv = ["compare", "--summary", str(out / "summary.csv"), "--out", str(out / "comparison.csv")]
    assert cli_main(argv) == 0
    assert "0 of our runs match" in capsys.readouterr().out
    table = pd.read_csv(out / "comparison.csv")
    assert table.empty and list(table.columns) == compare.COMPARISON_COLUMNS


def post_tables(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study("learning_rate", "lr", [1e-7, 1e-4, 1e-2], **RESNET)
    summary, metrics = sweep.tables()
    return metrics, summary, compare.compare_with_post(summary)


def test_post_figure_draws_the_post_dashed_in_our_colour(tmp_path):
    metrics, summary, comparison = post_tables(tmp_path)
    fig = figures.post_figure(metrics, summary, comparison, "learning_rate")
    lines = fig.axes[2].get_lines()
    assert len(lines) == 6  # ours and the post's for each of three rates
    ours = {ln.get_label(): ln for ln in lines if ln.get_linestyle() == "-"}
    post = {ln.get_label(): ln for ln in lines if ln.get_linestyle() != "-"}
    assert set(ours) == {"1e-07 (ours)", "1e-04 (ours)", "0.01 (ours)"}
    assert set(post) == {"1e-07 (post run3)", "1e-04 (post run1)", "0.01 (post run2)"}
    assert post["1e-04 (post run1)"].get_color() == ours["1e-04 (ours)"].get_color()
    assert post["1e-04 (post run1)"].get_ydata()[0] == pytest.approx(92.57)


def test_the_post_figure_is_only_planned_where_a_post_run_matches():
    def kinds(dataset, studies):
        config = validate_config({"dataset": dataset, "studies": studies})
        plan = build_plan(config)
        return {
            name: targets.figure_kinds(
                s.params, targets.study_is_compared(plan, s, config["dataset"])
            )
            for name, s in plan.studies.items()
        }

    studies = {
        "bs": {"param": "batch_size", "values": [256, 450]},
        "mine": {"param": "lr", "values": [0.5, 0.7]},
    }
    intel = kinds({"source": "kaggle"}, studies)
    assert "post" in intel["bs"] and "post" not in intel["mine"]
    digits = kinds({"source": "digits", "name": "digits", "image_size": 48}, studies)
    assert not any("post" in k for k in digits.values())
