"""Figures built from synthetic runs: lines, bars, labels, colours and files."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pytest
from scipy import stats as scipy_stats
from support.runfactory import Sweep, approach

from hpstudy import rule_targets
from hpstudy.cli import main as cli_main
from hpstudy.core import formatting
from hpstudy.core.errors import HpstudyError
from hpstudy.report import figure_registry
from hpstudy.report import study_figures as figures


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Learning rate (2 seeds), kernel width, weight decay (with 0) and optimizer studies."""
    sweep = Sweep(tmp_path_factory.mktemp("figs"))
    sweep.study("learning_rate", "lr", [1e-2, 1e-7, 1e-4], seeds=(0, 1), epochs=4,
                model="resnet18", pretrained=True, batch_size=32,
                curves=lambda v, s: {"test_acc": approach(0.2, 0.4 + 0.1 * s, 4)})  # fmt: skip

    def costs(widths, seed):
        total = sum(widths)
        return {"param_count": 1000 * total, "conv_param_count": 100 * total,
                "peak_memory_mb": 10.0 * total, "epoch_time_s": float(total)}  # fmt: skip

    sweep.study("kernel_width", "kernel_width", [[7, 7, 9], [3, 3, 3], [5, 5, 7]], epochs=3,
                curves=costs)  # fmt: skip
    sweep.study("weight_decay", "weight_decay", [0.0, 0.01, 1.0], epochs=2)
    sweep.study("optimizers", "optimizer", ["sgd", "adam", "adamw"], epochs=5)
    sweep.aggregate()
    return sweep


@pytest.fixture(scope="module")
def tables(sweep):
    return sweep.tables("metrics.csv", "summary.csv")


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e-4, "1e-04"), (0.01, "0.01"), (1e-7, "1e-07"), (2.5e-5, "2.5e-05"), (1.0, "1"),
     (0.0, "0"), (0.5, "0.5"), (0.12345, "0.12345"), (256, "256"), ([5, 5, 7], "5-5-7"),
     (True, "true"), ("adam", "adam"), (1e6, "1e+06")],
)  # fmt: skip
def test_one_formatter_writes_values_exactly_and_as_people_write_them(value, text):
    assert formatting.format_value(value) == text


def test_curves_one_line_per_value_per_panel_with_consistent_colours(tables):
    metrics, summary = tables
    fig = figures.curves_figure(metrics, summary, "learning_rate")
    axes = fig.axes
    assert len(axes) == 3
    for ax in axes:
        assert [line.get_label() for line in ax.get_lines()] == ["1e-07", "1e-04", "0.01"]
        assert ax.get_xlabel() == "epoch"
        assert len(ax.collections) == 3  # two seeds: a band per value
    colours = [[mcolors.to_hex(line.get_color()) for line in ax.get_lines()] for ax in axes]
    assert colours[0] == colours[1] == colours[2] and len(set(colours[0])) == 3
    assert "accuracy (%)" in axes[2].get_ylabel() and "loss" in axes[0].get_ylabel()
    acc_line = axes[2].get_lines()[0]
    expected = metrics[(metrics["lr"] == 1e-7) & (metrics["epoch"] == 4)]["test_acc"].mean()
    assert acc_line.get_ydata()[-1] == pytest.approx(100 * expected)
    title = fig._suptitle.get_text()
    assert "learning_rate" in title and "model=resnet18" in title and "batch_size=32" in title
    assert "lr=" not in title  # the swept setting is not a fixed one
    assert "2 seeds" in fig.legends[0].get_title().get_text()


def test_the_band_is_the_95_percent_interval_of_the_mean_over_seeds(tables):
    metrics, summary = tables
    fig = figures.curves_figure(metrics, summary, "learning_rate")
    band = fig.axes[2].collections[0].get_paths()[0].vertices[:, 1]
    last = metrics[(metrics["lr"] == 1e-7) & (metrics["epoch"] == 4)]["test_acc"] * 100
    half = scipy_stats.t.ppf(0.975, 1) * last.std() / np.sqrt(2)
    assert band.max() == pytest.approx(last.mean() + half)
    assert band.min() <= last.mean() - half + 1e-9
    assert "95% interval" in fig.legends[0].get_title().get_text()


def test_accuracy_bars_are_intervals_over_seeds_or_binomial_with_one_seed(tables):
    _, summary = tables
    bars = figures.accuracy_figure(summary, "learning_rate").axes[0].containers[0]
    finals = summary[(summary["study"] == "learning_rate") & (summary["lr"] == 1e-7)][
        "final_test_acc"
    ]
    half = scipy_stats.t.ppf(0.975, 1) * finals.std() / np.sqrt(2) * 100
    segment = bars.lines[2][0].get_segments()[0]
    assert segment[1][1] - segment[0][1] == pytest.approx(2 * half)
    one = figures.accuracy_figure(summary, "kernel_width").axes[0].containers[0]
    acc = summary[(summary["study"] == "kernel_width")]["final_test_acc"].iloc[0]
    binomial = 1.959964 * np.sqrt(acc * (1 - acc) / 3000) * 100
    segment = one.lines[2][0].get_segments()[0]
    assert segment[1][1] - segment[0][1] == pytest.approx(2 * binomial, rel=1e-4)


def test_the_confusion_matrix_sums_the_best_settings_predictions(sweep, tables):
    _, summary = tables
    fig = figures.confusion_figure(summary, "learning_rate", sweep.runs_dir)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (6, 6)
    best = (
        summary[summary["study"] == "learning_rate"].groupby("lr")["final_test_acc"].mean().idxmax()
    )
    runs = summary[(summary["study"] == "learning_rate") & (summary["lr"] == best)]["run_id"]
    counts, _ = figures.confusion_counts(sweep.runs_dir, runs)
    assert counts.sum() == 2 * 3000
    assert np.allclose(image, counts / counts.sum(axis=1, keepdims=True) * 100)
    assert "summed over 2 seeds" in fig._suptitle.get_text()


def test_curves_with_one_seed_have_no_band(tables):
    metrics, summary = tables
    fig = figures.curves_figure(metrics, summary, "kernel_width")
    assert all(len(ax.collections) == 0 for ax in fig.axes)
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["3-3-3", "5-5-7", "7-7-9"]


def test_accuracy_figure_log_axis_for_lr_and_symlog_with_zero_weight_decay(tables):
    _, summary = tables
    fig = figures.accuracy_figure(summary, "learning_rate")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-07", "1e-04", "0.01"]
    assert len(ax.get_legend().get_texts()) == 2  # final and best
    fig = figures.accuracy_figure(summary, "weight_decay")
    assert fig.axes[0].get_xscale() == "symlog"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "0.01", "1"]


def test_a_categorical_axis_gets_points_never_a_connecting_line(tables):
    _, summary = tables
    fig = figures.accuracy_figure(summary, "optimizers")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam", "adamw", "sgd"]
    data_lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3]
    assert data_lines and all(ln.get_linestyle() == "None" for ln in data_lines)
    assert all(ln.get_marker() not in (None, "None", "") for ln in data_lines)


def test_cost_and_time_figures_for_kernel_width(tables):
    _, summary = tables
    assert rule_targets.figure_kinds(["kernel_width"], False) == [
        "curves",
        "accuracy",
        "confusion",
        "epoch_time",
        "cost",
    ]
    assert rule_targets.figure_kinds(["lr"], True) == ["curves", "accuracy", "confusion", "post"]
    fig = figures.cost_figure(summary, "kernel_width")
    params_ax, memory_ax = fig.axes
    fc_bars, conv_bars = params_ax.containers
    widths = (9, 17, 23)  # ordered by total width
    assert [b.get_height() for b in fc_bars] == pytest.approx([900 * w / 1e6 for w in widths])
    assert [b.get_height() for b in conv_bars] == pytest.approx([100 * w / 1e6 for w in widths])
    assert [bar.get_height() for bar in memory_ax.patches] == pytest.approx([90, 170, 230])
    assert [t.get_text() for t in params_ax.get_xticklabels()] == ["3-3-3", "5-5-7", "7-7-9"]
    fig = figures.epoch_time_figure(summary, "kernel_width")
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_ydata()) == pytest.approx([9.0, 17.0, 23.0])


def test_unknown_study_is_a_clear_error(tables):
    metrics, summary = tables
    with pytest.raises(HpstudyError, match="no study named 'nope'"):
        figures.curves_figure(metrics, summary, "nope")


def test_cli_writes_png_and_svg_from_the_tables_folder(sweep, tmp_path, capsys):
    import pandas as pd

    from hpstudy.report.comparison import COMPARISON_COLUMNS

    pd.DataFrame(columns=COMPARISON_COLUMNS).to_csv(sweep.out / "comparison.csv", index=False)
    out = tmp_path / "fig" / "curves.png"
    argv = ["figures", "--kind", "curves", "--study", "weight_decay", "--tables", str(sweep.out)]
    assert cli_main([*argv, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in out.with_suffix(".svg").read_text()[:500]
    # several kinds in one call (a study's figure job): each into the folder, as one kind alone
    folder = tmp_path / "study"
    argv[1:3] = ["--kinds", "accuracy", "curves"]
    assert cli_main([*argv, "--out-dir", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "accuracy.png", "accuracy.svg", "curves.png", "curves.svg"]  # fmt: skip
    assert (folder / "curves.png").read_bytes() == out.read_bytes()
    # an unknown kind among them: a clear error before any figure is drawn
    other = tmp_path / "other"
    argv[1:4] = ["--kinds", "accuracy", "nope"]
    capsys.readouterr()
    assert cli_main([*argv, "--out-dir", str(other)]) == 1
    assert "No figure kind 'nope'" in capsys.readouterr().err and not other.exists()


def test_a_grid_gets_a_heatmap_whose_cells_are_the_tables_means(tmp_path):
    sweep = Sweep(tmp_path)
    grid = [(lr, bs) for lr in (1e-4, 1e-3) for bs in (32, 128, 512)]
    finals = {point: 0.5 + 0.1 * i for i, point in enumerate(grid)}
    sweep.study("lr_x_bs", ("lr", "batch_size"), grid, seeds=(0, 1), epochs=3,
                curves=lambda p, s: {"test_acc": [0.2, 0.3, finals[p] + 0.01 * s]})  # fmt: skip
    sweep.study("three", ("lr", "batch_size", "optimizer"),
                [(1e-3, 32, "sgd"), (1e-3, 32, "adamw"), (3e-3, 64, "sgd")], epochs=3)  # fmt: skip
    summary, seeds = sweep.tables("summary.csv", "seed_summary.csv")
    assert rule_targets.figure_kinds(["lr", "batch_size"], False)[3] == "heatmap"
    fig = figures.heatmap_figure(summary, "lr_x_bs")
    ax = fig.axes[0]
    cells = ax.images[0].get_array()
    assert cells.shape == (2, 3)
    table = seeds[seeds["study"] == "lr_x_bs"].set_index(["lr", "batch_size"])[
        "final_test_acc_mean"
    ]
    for i, lr in enumerate((1e-4, 1e-3)):
        for j, bs in enumerate((32, 128, 512)):
            assert cells[i, j] == pytest.approx(table[(lr, bs)] * 100)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 6 and all("(n=2)" in t for t in texts)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1e-04", "0.001"]
    assert ax.get_xlabel() == "batch size (images)" and ax.get_ylabel() == "learning rate"
    # three settings: one heatmap per pair, the third averaged over
    assert figure_registry.heatmap_kinds(["lr", "batch_size", "optimizer"]) == [
        "heatmap-lr-batch_size",
        "heatmap-lr-optimizer",
        "heatmap-batch_size-optimizer",
    ]
    pair = figures.heatmap_figure(
        summary, "three", figure_registry.heatmap_pair("heatmap-lr-batch_size")
    )
    cells = np.ma.filled(pair.axes[0].images[0].get_array().astype(float), np.nan)
    assert cells.shape == (2, 2) and np.isnan(cells[0, 1]) and np.isnan(cells[1, 0])
    assert (
        "(n=2)" in pair.axes[0].texts[0].get_text()
        and "averaged over\noptimizer" in pair._suptitle.get_text()
    )


def test_runs_with_a_validation_split_show_validation_not_the_test_sets_best_epoch(tmp_path):
    sweep = Sweep(tmp_path, data={"val_count": 100})
    sweep.study(
        "lr", "lr", [0.1, 0.01], seeds=(0, 1), epochs=3,
        curves=lambda lr, seed: {"val_acc": [0.5, 0.6, 0.7 if lr == 0.1 else 0.8]},
    )  # fmt: skip
    summary, metrics = sweep.tables()
    legend = figures.accuracy_figure(summary, "lr").axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["final, test", "final, validation"]
    val_line = figures.accuracy_figure(summary, "lr").axes[0].get_lines()[-1]
    assert list(val_line.get_ydata()) == pytest.approx([80.0, 70.0])  # lr 0.01, then 0.1
    fig = figures.curves_figure(metrics, summary, "lr")
    assert [ax.get_ylabel() for ax in fig.axes][-1] == "validation accuracy (%)"
    assert len(fig.axes) == 4


def test_every_figure_kind_has_a_builder_a_caption_and_a_line_in_the_docs():
    from conftest import REPO

    from hpstudy.report import figure_registry as registry
    from hpstudy.report import figures as dispatch

    for kind in registry.KINDS:
        assert callable(dispatch.builder(kind)), kind.name
        assert kind.caption.strip() and kind.summary.strip(), kind.name
        assert set(kind.inputs) <= {*registry.ARGUMENTS, *kind.tables}, kind.name
    # the report's caption templates are the registry's, one per kind of a study's or a
    # search's figure, each beginning with the study's (search's) name
    captions = registry.caption_files()
    for name, text in captions.items():
        assert (REPO / "workflow/report" / name).read_text() == text, name
    for scope, head in ((registry.STUDY, "Study"), (registry.SEARCH, "Search")):
        for kind in registry.names(scope):
            text = captions[registry.caption_file(scope, kind)]
            assert text.startswith(f"{head} **{{{{ snakemake.") and registry.BY_NAME[kind].caption[
                :40] in " ".join(text.split()), kind  # fmt: skip
    assert registry.caption_file(registry.STUDY, "heatmap-lr-batch_size") == "figures/heatmap.rst"
    assert registry.markdown_list() in (REPO / "docs/figures.md").read_text()


def test_a_search_gets_the_registrys_search_figures():
    from hpstudy.report import figure_registry as registry

    assert registry.lookup("heatmap-lr-batch_size").name == "heatmap"
    assert set(rule_targets.SEARCH_FIGURES) == {
        "history",
        "parallel_coordinates",
        "importance",
        "budget",
    }


def test_an_unknown_kind_is_a_clear_error(sweep):
    from hpstudy.report import figures as dispatch

    with pytest.raises(HpstudyError, match="No figure kind 'nope'"):
        dispatch.build_figure("nope", sweep.out, "learning_rate")
