"""The side-by-side with the seed post's runs: matching by settings, the table, the figure."""

from __future__ import annotations

import pandas as pd
import pytest
from runfactory import write_run

from hpstudy import aggregate, compare
from hpstudy.cli import main as cli_main


def summary_of(run_dirs) -> pd.DataFrame:
    """The summary table of some run folders, as the results stage reads it back."""
    return aggregate.build_summary_table([aggregate.load_run(d) for d in run_dirs])


def test_reference_data_ships_with_the_package():
    runs, epochs = compare.seed_runs(), compare.seed_epochs()
    assert len(runs) == 10 and set(epochs["run"]) == set(runs["run"])
    assert epochs.groupby("run").size().eq(10).all()


def test_runs_match_the_seed_by_settings_not_study_name(tmp_path):
    runs = tmp_path / "runs"
    dirs = [
        # the seed's run1 setting, under a study of another name
        write_run(runs, experiment="my_lr", param="lr", value=1e-4, model="resnet18",
                  pretrained=True, batch_size=32, test_acc=[0.5] * 9 + [0.9]),
        # the seed's run10: weight decay recorded, must be equal
        write_run(runs, experiment="weight_decay", param="weight_decay", value=1.0,
                  batch_size=450, test_acc=[0.2] * 10),
        # wrong weight decay for run8/run10, but run5/run9 did not record one: they match
        write_run(runs, experiment="weight_decay", param="weight_decay", value=0.5,
                  batch_size=450),
        # same as run1 but 5 epochs: no match
        write_run(runs, experiment="short", param="lr", value=1e-4, model="resnet18",
                  pretrained=True, batch_size=32, epochs=5),
        # custom network with other kernel widths: not the seed's network
        write_run(runs, experiment="kernel_width", param="kernel_width", value=[3, 3, 3]),
    ]  # fmt: skip
    table = compare.compare_with_seed(summary_of(dirs))
    pairs = set(zip(table["run_id"], table["seed_run"], strict=True))
    assert pairs == {
        ("my_lr/lr-1e-04/seed-0", "run1"),
        ("weight_decay/weight_decay-1/seed-0", "run10"),
        ("weight_decay/weight_decay-1/seed-0", "run5"),
        ("weight_decay/weight_decay-1/seed-0", "run9"),
        ("weight_decay/weight_decay-0.5/seed-0", "run5"),
        ("weight_decay/weight_decay-0.5/seed-0", "run9"),
    }
    run1 = table[table["seed_run"] == "run1"].iloc[0]
    assert run1["seed_final_test_acc"] == pytest.approx(0.9243)
    assert run1["final_test_acc"] == pytest.approx(0.9)
    assert run1["final_test_acc_diff"] == pytest.approx(0.9 - 0.9243)
    assert run1["best_test_acc_diff"] == pytest.approx(0.9 - 0.93)
    assert list(table.columns) == compare.COMPARISON_COLUMNS


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"num_classes": 10}, "classes"), ({"image_size": 48}, "size"),
     ({"optimizer": "sgd"}, "optimizer"), ({"pretrained": False}, "pretrained"),
     ({"batch_size": 64}, "batch")],
)  # fmt: skip
def test_each_setting_of_the_rule_can_break_the_match(tmp_path, overrides, reason):
    settings = {"model": "resnet18", "pretrained": True, "batch_size": 32, **overrides}
    run = write_run(tmp_path / "runs", experiment="lr", param="lr", value=1e-4, **settings)
    assert compare.compare_with_seed(summary_of([run])).empty, reason


def test_digits_find_no_rows_and_the_csv_keeps_its_header(tmp_path, capsys):
    runs = tmp_path / "runs"
    run = write_run(runs, dataset="digits-48", image_size=48, num_classes=10, batch_size=450)
    out = tmp_path / "out"
    aggregate.write_results([run], out)
    assert cli_main(["compare", "--summary", str(out / "summary.csv"),
                     "--out", str(out / "comparison.csv")]) == 0  # fmt: skip
    assert "No run matches" in capsys.readouterr().out
    table = pd.read_csv(out / "comparison.csv")
    assert table.empty and list(table.columns) == compare.COMPARISON_COLUMNS


def test_seed_figure_draws_the_seed_dashed_in_our_colour(tmp_path):
    runs = tmp_path / "runs"
    dirs = [
        write_run(runs, experiment="learning_rate", param="lr", value=lr, model="resnet18",
                  pretrained=True, batch_size=32)
        for lr in (1e-7, 1e-4, 1e-2)
    ]  # fmt: skip
    metrics = aggregate.build_metrics_table([aggregate.load_run(d) for d in dirs])
    fig = compare.seed_comparison_figure(metrics, "learning_rate")
    lines = fig.axes[2].get_lines()
    assert len(lines) == 6  # ours and the seed's for each of three rates
    ours = {ln.get_label(): ln for ln in lines if ln.get_linestyle() == "-"}
    seeds = {ln.get_label(): ln for ln in lines if ln.get_linestyle() != "-"}
    assert set(ours) == {"1e-07 (ours)", "1e-04 (ours)", "0.01 (ours)"}
    assert set(seeds) == {"1e-07 (seed run3)", "1e-04 (seed run1)", "0.01 (seed run2)"}
    assert seeds["1e-04 (seed run1)"].get_color() == ours["1e-04 (ours)"].get_color()
    assert seeds["1e-04 (seed run1)"].get_ydata()[0] == pytest.approx(92.57)


def test_seed_figure_says_when_nothing_matches(tmp_path):
    run = write_run(tmp_path / "runs", num_classes=10, image_size=48)
    metrics = aggregate.build_metrics_table([aggregate.load_run(run)])
    fig = compare.seed_comparison_figure(metrics, "learning_rate")
    assert len(fig.axes[0].get_lines()) == 1
    assert "no seed run matches" in fig.legends[0].get_title().get_text()
