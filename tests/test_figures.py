"""Figures built from synthetic runs: lines, bars, labels, colours and files."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pytest
from runfactory import approach, write_study

from hpstudy import aggregate, figures
from hpstudy.cli import main as cli_main


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Learning rate (2 seeds), kernel width and weight decay (with 0) studies, aggregated."""
    root = tmp_path_factory.mktemp("figs")
    runs = root / "runs"
    write_study(runs, "learning_rate", "lr", [1e-2, 1e-7, 1e-4], seeds=(0, 1), epochs=4,
                model="resnet18", pretrained=True, batch_size=32,
                curves=lambda v, s: {"test_acc": approach(0.2, 0.4 + 0.1 * s, 4)})  # fmt: skip
    write_study(runs, "kernel_width", "kernel_width", [[7, 7, 9], [3, 3, 3], [5, 5, 7]],
                epochs=3, curves=lambda v, s: {"param_count": 1000 * sum(v),
                                               "peak_memory_mb": 10.0 * sum(v),
                                               "epoch_time_s": float(sum(v))})  # fmt: skip
    write_study(runs, "weight_decay", "weight_decay", [0.0, 0.01, 1.0], epochs=3)
    paths = aggregate.write_results(aggregate.find_run_dirs(runs), root / "out")
    return (
        aggregate.read_table(paths["metrics"]),
        aggregate.read_table(paths["summary"]),
        paths,
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e-4, "1e-04"), (0.01, "0.01"), (1e-7, "1e-07"), (2.5e-5, "2.5e-05"), (1.0, "1"),
     (0.0, "0"), (256, "256"), ([5, 5, 7], "5-5-7"), (True, "True"), ("adam", "adam")],
)  # fmt: skip
def test_values_are_labelled_as_people_write_them(value, text):
    assert figures.format_value(value) == text


def test_curves_one_line_per_value_per_panel_with_consistent_colours(tables):
    metrics, _, _ = tables
    fig = figures.curves_figure(metrics, "learning_rate")
    axes = fig.axes
    assert len(axes) == 3
    for ax in axes:
        assert [line.get_label() for line in ax.get_lines()] == ["1e-07", "1e-04", "0.01"]
        assert ax.get_xlabel() == "epoch"
        # two seeds: a shaded min-max band per value
        assert len(ax.collections) == 3
    colours = [[mcolors.to_hex(line.get_color()) for line in ax.get_lines()] for ax in axes]
    assert colours[0] == colours[1] == colours[2] and len(set(colours[0])) == 3
    assert "accuracy (%)" in axes[2].get_ylabel() and "loss" in axes[0].get_ylabel()
    # values plotted are the mean over seeds, as percentages on the accuracy panel
    acc_line = axes[2].get_lines()[0]
    expected = metrics[(metrics["lr"] == 1e-7) & (metrics["epoch"] == 4)]["test_acc"].mean()
    assert acc_line.get_ydata()[-1] == pytest.approx(100 * expected)
    title = fig._suptitle.get_text()
    assert "learning_rate" in title and "model=resnet18" in title and "batch_size=32" in title
    assert "lr=" not in title  # the swept setting is not a fixed one
    legend_title = fig.legends[0].get_title().get_text()
    assert "2 seeds" in legend_title and "min-max" in legend_title


def test_curves_with_one_seed_have_no_band(tables):
    metrics, _, _ = tables
    fig = figures.curves_figure(metrics, "kernel_width")
    assert all(len(ax.collections) == 0 for ax in fig.axes)
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["3-3-3", "5-5-7", "7-7-9"]


def test_accuracy_figure_log_axis_for_lr_and_symlog_with_zero_weight_decay(tables):
    _, summary, _ = tables
    fig = figures.accuracy_figure(summary, "learning_rate")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-07", "1e-04", "0.01"]
    assert len(ax.get_legend().get_texts()) == 2  # final and best
    assert ax.get_ylabel() == "test accuracy (%)"
    fig = figures.accuracy_figure(summary, "weight_decay")
    assert fig.axes[0].get_xscale() == "symlog"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "0.01", "1"]


def test_cost_and_time_figures_for_kernel_width(tables):
    _, summary, _ = tables
    assert figures.figure_kinds("kernel_width") == ["curves", "accuracy", "epoch_time", "cost"]
    assert figures.figure_kinds("lr") == ["curves", "accuracy"]
    fig = figures.cost_figure(summary, "kernel_width")
    params_ax, memory_ax = fig.axes
    heights = [bar.get_height() for bar in params_ax.patches]
    assert heights == pytest.approx([0.009, 0.017, 0.023])  # millions, ordered by width
    assert [bar.get_height() for bar in memory_ax.patches] == pytest.approx([90, 170, 230])
    assert [t.get_text() for t in params_ax.get_xticklabels()] == ["3-3-3", "5-5-7", "7-7-9"]
    assert params_ax.get_ylabel() == "parameters (millions)"
    fig = figures.epoch_time_figure(summary, "kernel_width")
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_ydata()) == pytest.approx([9.0, 17.0, 23.0])
    assert fig.axes[0].get_ylabel() == "mean epoch time (s)"


def test_unknown_study_is_a_clear_error(tables):
    metrics, _, _ = tables
    with pytest.raises(figures.HpstudyError, match="no study named 'nope'"):
        figures.curves_figure(metrics, "nope")


def test_cli_writes_png_and_svg(tables, tmp_path):
    _, _, paths = tables
    out = tmp_path / "fig" / "curves.png"
    rc = cli_main(["figures", "--kind", "curves", "--study", "weight_decay",
                   "--metrics", str(paths["metrics"]), "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in out.with_suffix(".svg").read_text()[:500]
