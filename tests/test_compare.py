"""The post's own runs beside ours: the matching rule, one row per post run, the headline,
and the figures. The post's own curves, fed back as three identical seeds, must come out
reproduced, with the post's claims as the post states them."""

from __future__ import annotations

import pandas as pd
import pytest
from support.runfactory import Sweep

from hpstudy import rule_targets
from hpstudy.cli import main as cli_main
from hpstudy.core.config import validate_config
from hpstudy.core.stats import HOLDS
from hpstudy.report import comparison, findings, post_runs
from hpstudy.report.claims import POST
from hpstudy.report.study_figures import post_figure, reproduction_figure
from hpstudy.sweep.plan import build_plan

RESNET = {"model": "resnet18", "pretrained": True, "batch_size": 32}
EXPERIMENT_PARAM = {
    "learning_rate": "lr",
    "batch_size": "batch_size",
    "weight_decay": "weight_decay",
}


def post_sweep(root, seeds=(0, 1, 2)) -> Sweep:
    """Every labelled post run as a run of ours with the post's settings and curves."""
    sweep = Sweep(root)
    curves = pd.DataFrame(post_runs.post_epochs())
    for post in post_runs.post_runs():
        if post["experiment"] == post_runs.UNLABELLED:
            continue
        param = EXPERIMENT_PARAM[post["experiment"]]
        settings = post_runs.post_settings(post)
        run = curves[curves["run"] == post["run"]]

        def post_curves(value, seed, run=run, post=post):
            return {
                "train_loss": run["train_loss"].tolist(),
                "test_loss": run["test_loss"].tolist(),
                "test_acc": run["test_acc"].tolist(),
                "epoch_time_s": post["mean_epoch_time_s"],
            }

        fixed = {k: v for k, v in settings.items() if k != param}
        sweep.study(post["experiment"], param, [settings[param]], seeds, post_curves, **fixed)
    return sweep


@pytest.fixture(scope="module")
def post(tmp_path_factory):
    sweep = post_sweep(tmp_path_factory.mktemp("post"))
    summary, metrics = sweep.tables()
    return sweep, summary, metrics, comparison.compare_with_post(summary, metrics)


def test_reference_data_ships_with_the_package():
    runs, epochs = post_runs.post_runs(), pd.DataFrame(post_runs.post_epochs())
    assert len(runs) == 10 and set(epochs["run"]) == {r["run"] for r in runs}
    assert epochs.groupby("run").size().eq(10).all()


def test_the_posts_own_curves_are_reproduced_and_its_claims_hold(post):
    sweep, summary, metrics, table = post
    labelled = table[table["kind"] == "labelled"]
    assert sorted(labelled["post_run"], key=lambda r: int(r[3:])) == [
        "run1",
        "run2",
        "run3",
        "run4",
        "run5",
        "run6",
        "run8",
        "run10",
    ]
    assert labelled["reproduced"].all() and (labelled["seeds"] == 3).all()
    exact = labelled[labelled["post_run"] != "run5"]  # run5 and run8 are one setting of ours
    assert exact["final_test_acc_diff"].abs().max() < 1e-12
    assert exact["epoch_test_acc_mad"].max() < 1e-12 and exact["shared_epochs"].eq(10).all()
    assert comparison.headline(table) == {"post_runs_compared": 8, "post_runs_reproduced": 8}
    found = findings.compute_findings(findings.Context(summary, metrics, sweep.runs_dir))
    first = [f for f in found if f.table == POST]
    assert [f.key for f in first] == [
        "middle-beats-ends", "lowest-slow", "highest-loss", "highest-erratic",
        "smaller-higher", "smaller-faster", "extreme-underfits", "resnet-vs-cnn",
    ]  # fmt: skip
    assert [f.verdict for f in first] == [HOLDS] * len(first)
    assert all(f.says for f in first), "each claim stands beside the post's sentence"


def test_each_post_run_counts_once_and_unrecorded_weight_decay_is_the_assumed_one(post):
    _, _, _, table = post
    assert table.groupby(["post_run", "run_name"]).size().max() == 1
    by_run = table.set_index("post_run")
    assert by_run.loc["run10", "run_name"] == "wd-1_bs-450"
    assert by_run.loc["run10", "weight_decay_source"] == "recorded"
    # run5 recorded no weight decay: only our run at the assumed 0.01 matches it
    assert (
        by_run.loc["run5", "run_name"] == "bs-450"
        and by_run.loc["run5", "weight_decay_source"] == "assumed"
    )
    assert "wd-1_bs-450" not in set(table.loc[table["post_run"].isin(["run5", "run9"]), "run_name"])


def test_unlabelled_runs_are_listed_apart_and_never_counted(post):
    _, _, _, table = post
    unlabelled = table[table["kind"] == "unlabelled"]
    assert set(unlabelled["post_run"]) == {"run7", "run9"}
    assert "run7" not in set(table.loc[table["kind"] == "labelled", "post_run"])
    assert comparison.headline(table)["post_runs_compared"] == 8


def test_another_assumed_weight_decay_moves_the_unrecorded_matches(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study("wd", "weight_decay", [0.01, 0.0], batch_size=450)
    summary, metrics = sweep.tables()
    default = comparison.compare_with_post(summary, metrics)
    assert set(default.loc[default["post_run"] == "run5", "run_name"]) == {"bs-450"}
    zero = comparison.compare_with_post(summary, metrics, assumed_weight_decay=0.0)
    assert set(zero.loc[zero["post_run"] == "run5", "run_name"]) == {"wd-0_bs-450"}
    assert set(zero.loc[zero["post_run"] == "run8", "run_name"]) == {"bs-450"}  # recorded 0.01


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"data": {"num_classes": 10}}, "classes"),
        ({"data": {"image_size": 48}}, "size"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"pretrained": False}, "pretrained"),
        ({"batch_size": 64}, "batch"),
        ({"flip": True}, "augmentation"),
    ],
)
def test_each_setting_of_the_rule_can_break_the_match(tmp_path, overrides, reason):
    sweep = Sweep(tmp_path)
    sweep.study("lr", "lr", [1e-4], **{**RESNET, **overrides})
    summary, metrics = sweep.tables()
    assert comparison.compare_with_post(summary, metrics).empty, reason


def test_cli_writes_the_table_and_its_counts_and_keeps_the_header_when_nothing_matches(
    tmp_path, capsys
):
    sweep = Sweep(tmp_path, data={"name": "digits", "image_size": 48, "num_classes": 10})
    sweep.study("bs", "batch_size", [450])
    sweep.aggregate()
    assert cli_main(["compare", "--tables", str(sweep.out)]) == 0
    assert "0 of 0 post runs reproduced" in capsys.readouterr().out
    table = pd.read_csv(sweep.out / "comparison.csv")
    assert table.empty and list(table.columns) == comparison.COMPARISON_COLUMNS
    assert (sweep.out / "comparison.json").read_text().count('"post_runs_compared": 0') == 1


def test_post_figure_draws_the_post_dashed_in_our_colour(post):
    _, summary, metrics, table = post
    fig = post_figure(metrics, summary, table, "learning_rate")
    lines = fig.axes[2].get_lines()
    ours = {ln.get_label(): ln for ln in lines if ln.get_linestyle() == "-"}
    theirs = {ln.get_label(): ln for ln in lines if ln.get_linestyle() != "-"}
    assert set(ours) == {"1e-07 (ours)", "1e-04 (ours)", "0.01 (ours)"}
    assert set(theirs) == {"1e-07 (post run3)", "1e-04 (post run1)", "0.01 (post run2)"}
    assert theirs["1e-04 (post run1)"].get_color() == ours["1e-04 (ours)"].get_color()
    assert theirs["1e-04 (post run1)"].get_ydata()[0] == pytest.approx(92.57)


def test_reproduction_at_a_glance_shows_each_post_run_beside_our_interval(post):
    _, _, _, table = post
    fig = reproduction_figure(table)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 8 and all("run7" not in label for label in labels)
    post_marks = ax.get_lines()[-1]
    labelled = table[table["kind"] == "labelled"]
    assert list(post_marks.get_xdata()) == pytest.approx(
        list(labelled["post_final_test_acc"] * 100)
    )
    assert "8 of 8 reproduced" in ax.get_legend().get_title().get_text()


def test_the_post_figures_are_only_planned_where_a_post_run_matches():
    def kinds(dataset, studies):
        config = validate_config({"dataset": dataset, "studies": studies})
        plan = build_plan(config)
        return {
            name: rule_targets.figure_kinds(
                s.params, rule_targets.study_is_compared(plan, s, config["dataset"])
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
