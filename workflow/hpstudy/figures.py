"""Figures of a study, fit for a paper: PNG (200 dpi) plus SVG, headless (matplotlib Agg).

Kinds of figure (see :func:`figure_kinds` for which a study gets):

- ``curves``: train loss, test loss and test accuracy against epoch, one line per value, one
  colour per value kept across the panels; with several seeds the mean line and a shaded
  min-max band across seeds;
- ``accuracy``: final and best test accuracy against the swept value (log axis for learning
  rate and weight decay);
- ``epoch_time``: mean epoch time against the value (batch size, kernel width);
- ``cost``: parameter count and peak memory against the value (kernel width).

Every function returns the :class:`~matplotlib.figure.Figure`, so tests inspect its lines and
labels; :func:`save_figure` writes the files. Values are labelled as people write them
(``1e-04``, ``0.01``, ``256``, ``5-5-7``) by :func:`format_value`.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hpstudy.aggregate import read_table  # noqa: E402
from hpstudy.atomic import atomic_path  # noqa: E402
from hpstudy.errors import HpstudyError  # noqa: E402

DPI = 200
PANEL_SIZE_IN = (3.5, 2.8)  # one panel at single-column width
LOG_PARAMS = frozenset({"lr", "weight_decay"})
TIME_PARAMS = frozenset({"batch_size", "kernel_width"})
COST_PARAMS = frozenset({"kernel_width"})
PARAM_LABELS = {
    "lr": "learning rate",
    "batch_size": "batch size (images)",
    "kernel_width": "kernel widths (conv1-conv2-conv3)",
    "weight_decay": "weight decay (L2 coefficient)",
    "momentum": "momentum",
    "epochs": "epochs",
}
# settings named in a figure's title when the study holds them fixed
TITLE_SETTINGS = [
    "model",
    "pretrained",
    "optimizer",
    "lr",
    "batch_size",
    "weight_decay",
    "kernel_width",
    "epochs",
    "dataset",
]
CURVE_PANELS = [
    ("train_loss", "train loss (cross-entropy)", 1.0),
    ("test_loss", "test loss (cross-entropy)", 1.0),
    ("test_acc", "test accuracy (%)", 100.0),
]
BAND_NOTE = "line: mean over {n} seeds; band: min-max across seeds"


def format_value(value: object) -> str:
    """A value as people write it: ``1e-04``, ``0.01``, ``1``, ``256``, ``5-5-7``, ``adam``."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, list | tuple):
        return "-".join(format_value(v) for v in value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if value == 0 or not math.isfinite(value):
            return f"{value:g}"
        if abs(value) < 1e-3 or abs(value) >= 1e5:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
        return f"{value:.4g}"
    return str(value)


def sort_key(value: object) -> tuple:
    """Order for swept values: numbers by size, kernel widths ``a-b-c`` by total then parts."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return (0, float(value))
    parts = str(value).split("-")
    if all(p.isdigit() for p in parts):
        ints = tuple(int(p) for p in parts)
        return (1, sum(ints), ints)
    return (2, str(value))


def figure_kinds(param: str) -> list[str]:
    """The figure kinds drawn for a study sweeping ``param``."""
    kinds = ["curves", "accuracy"]
    if param in TIME_PARAMS:
        kinds.append("epoch_time")
    if param in COST_PARAMS:
        kinds.append("cost")
    return kinds


def results_targets(results: str, runs: dict[str, dict], tensorboard: bool = False) -> list[str]:
    """Every final output of the results stage for a sweep (``runs``: run id -> settings with
    ``experiment`` and ``param``): tables, comparison, findings, each study's figures (PNG and
    SVG, kinds by :func:`figure_kinds`, plus the seed comparison) and, when ``tensorboard``, one
    event folder per run. Snakemake's ``rule all`` asks for these."""
    study_param = {run["experiment"]: run["param"] for run in runs.values()}
    tables = ["metrics.csv", "summary.csv", "summary.json", "seed_summary.csv"]
    others = ["comparison.csv", "findings.md", "dvc_metrics.json"]
    targets = [f"{results}/{name}" for name in [*tables, *others]]
    targets += [
        f"{results}/figures/{study}/{kind}.{ext}"
        for study, param in study_param.items()
        for kind in [*figure_kinds(param), "seed"]
        for ext in ("png", "svg")
    ]
    if tensorboard:
        targets += [f"{results}/tensorboard/{run_id}" for run_id in runs]
    return targets


def study_rows(table: pd.DataFrame, study: str) -> tuple[pd.DataFrame, str]:
    """The rows of ``study`` and its swept parameter; a missing study is a clear error."""
    rows = table[table["experiment"] == study]
    if rows.empty:
        known = ", ".join(sorted(table["experiment"].astype(str).unique()))
        raise HpstudyError(
            f"The results tables hold no study named {study!r} (studies: {known}). Check the "
            "study name against `studies:` in the config, then rerun `hpstudy aggregate`."
        )
    return rows, str(rows["param"].iloc[0])


def swept_values(rows: pd.DataFrame, param: str) -> list:
    """The study's distinct swept values, in :func:`sort_key` order."""
    return sorted(rows[param].drop_duplicates().tolist(), key=sort_key)


def value_colors(values: Sequence) -> dict:
    """One colour per value: an ordered (viridis) ramp for numbers, tab10 otherwise."""
    numeric = all(sort_key(v)[0] in (0, 1) for v in values)
    if numeric:
        cmap = plt.get_cmap("viridis")
        spots = np.linspace(0.0, 0.85, len(values)) if len(values) > 1 else [0.4]
        return {v: cmap(s) for v, s in zip(values, spots, strict=True)}
    cmap = plt.get_cmap("tab10")
    return {v: cmap(i % 10) for i, v in enumerate(values)}


def fixed_settings(rows: pd.DataFrame, param: str) -> str:
    """``model=custom, optimizer=adam, ...``: the title settings the study holds fixed."""
    parts = []
    for key in TITLE_SETTINGS:
        if key == param or key not in rows or rows[key].nunique(dropna=False) != 1:
            continue
        value = rows[key].iloc[0]
        if key == "kernel_width" and "model" in rows and rows["model"].iloc[0] != "custom":
            continue  # the kernel widths only shape the custom network
        if pd.isna(value):
            continue
        parts.append(f"{key}={format_value(value)}")
    return ", ".join(parts)


def _title(fig: Figure, study: str, param: str, rows: pd.DataFrame, width: int) -> None:
    heading = f"{study}: {PARAM_LABELS.get(param, param)} swept"
    fixed = fixed_settings(rows, param)
    lines = [heading] + ([f"fixed: {fixed}"] if fixed else [])
    text = "\n".join(textwrap.fill(line, width, break_on_hyphens=False) for line in lines)
    fig.suptitle(text, fontsize="medium" if width > 60 else "small")


def _seed_count(rows: pd.DataFrame, param: str) -> int:
    return int(rows.groupby(param, dropna=False)["run_id"].nunique().max())


def curves_figure(metrics: pd.DataFrame, study: str) -> Figure:
    """Train loss, test loss and test accuracy against epoch for every value of ``study``."""
    rows, param = study_rows(metrics, study)
    values = swept_values(rows, param)
    colors = value_colors(values)
    n_seeds = _seed_count(rows, param)
    fig, axes = plt.subplots(
        1, 3, figsize=(3 * PANEL_SIZE_IN[0], PANEL_SIZE_IN[1] + 0.6), layout="constrained"
    )
    for value in values:
        runs = rows[rows[param] == value]
        by_epoch = runs.groupby("epoch")
        diverged = not np.isfinite(runs["train_loss"].astype(float)).all()
        label = format_value(value) + (" (diverged)" if diverged else "")
        for ax, (column, _, scale) in zip(axes, CURVE_PANELS, strict=True):
            curve = by_epoch[column].agg(["mean", "min", "max"]) * scale
            ax.plot(curve.index, curve["mean"], color=colors[value], label=label, marker=".")
            if n_seeds > 1:
                ax.fill_between(
                    curve.index, curve["min"], curve["max"], color=colors[value], alpha=0.2
                )
    for ax, (_, ylabel, _) in zip(axes, CURVE_PANELS, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    title = PARAM_LABELS.get(param, param)
    if n_seeds > 1:
        title += " (" + BAND_NOTE.format(n=n_seeds) + ")"
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 6),
        title=title,
        fontsize="small",
        title_fontsize="small",
    )
    _title(fig, study, param, rows, width=110)
    return fig


def _x_axis(ax, values: list, param: str) -> list[float]:
    """Place ``values`` on ``ax``'s x axis (log for LOG_PARAMS, positions for categories) and
    label the ticks with :func:`format_value`; returns the x coordinates."""
    numeric = all(sort_key(v)[0] == 0 for v in values)
    if numeric:
        xs = [float(v) for v in values]
        if param in LOG_PARAMS:
            positive = [x for x in xs if x > 0]
            if len(positive) == len(xs):
                ax.set_xscale("log")
            elif positive:  # weight decay 0 has no place on a log axis: linear near zero
                ax.set_xscale("symlog", linthresh=min(positive))
    else:
        xs = list(range(len(values)))
        ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xticks(xs, [format_value(v) for v in values])
    ax.minorticks_off()
    ax.set_xlabel(PARAM_LABELS.get(param, param))
    return xs


def _per_value(summary_rows: pd.DataFrame, param: str, column: str, values: list) -> tuple:
    stats = summary_rows.groupby(param)[column].agg(["mean", "std"])
    means = [float(stats.loc[v, "mean"]) for v in values]
    stds = [float(stats.loc[v, "std"]) if not pd.isna(stats.loc[v, "std"]) else 0 for v in values]
    return np.array(means), np.array(stds)


def accuracy_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Final and best test accuracy against the swept value (mean +- std over seeds)."""
    rows, param = study_rows(summary, study)
    values = swept_values(rows, param)
    fig, ax = plt.subplots(figsize=(PANEL_SIZE_IN[0], PANEL_SIZE_IN[1] + 0.8), layout="constrained")
    xs = _x_axis(ax, values, param)
    for column, name, style in [
        ("final_test_acc", "final", "o-"),
        ("best_test_acc", "best", "s--"),
    ]:
        mean, std = _per_value(rows, param, column, values)
        ax.errorbar(xs, mean * 100, yerr=std * 100, fmt=style, capsize=3, label=name)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    n_seeds = _seed_count(rows, param)
    note = f" (mean, bars: std over {n_seeds} seeds)" if n_seeds > 1 else ""
    ax.legend(title="test accuracy" + note, fontsize="small", title_fontsize="small")
    _title(fig, study, param, rows, width=55)
    return fig


def epoch_time_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Mean epoch time (training plus test inference) against the swept value."""
    rows, param = study_rows(summary, study)
    values = swept_values(rows, param)
    fig, ax = plt.subplots(figsize=(PANEL_SIZE_IN[0], PANEL_SIZE_IN[1] + 0.8), layout="constrained")
    xs = _x_axis(ax, values, param)
    mean, std = _per_value(rows, param, "mean_epoch_time_s", values)
    ax.errorbar(xs, mean, yerr=std, fmt="o-", capsize=3, color="tab:blue")
    ax.set_ylabel("mean epoch time (s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    _title(fig, study, param, rows, width=55)
    return fig


def cost_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Parameter count and peak memory against the swept value, one bar per value."""
    rows, param = study_rows(summary, study)
    values = swept_values(rows, param)
    colors = value_colors(values)
    fig, axes = plt.subplots(
        1, 2, figsize=(2 * PANEL_SIZE_IN[0], PANEL_SIZE_IN[1] + 0.6), layout="constrained"
    )
    panels = [
        ("param_count", "parameters (millions)", 1e-6),
        ("peak_memory_mb", "peak memory (MB)", 1.0),
    ]
    for ax, (column, ylabel, scale) in zip(axes, panels, strict=True):
        mean, _ = _per_value(rows, param, column, values)
        positions = range(len(values))
        ax.bar(positions, mean * scale, color=[colors[v] for v in values])
        ax.set_xticks(list(positions), [format_value(v) for v in values])
        ax.set_xlabel(PARAM_LABELS.get(param, param))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
    _title(fig, study, param, rows, width=90)
    return fig


FIGURE_BUILDERS = {
    "curves": ("metrics", curves_figure),
    "accuracy": ("summary", accuracy_figure),
    "epoch_time": ("summary", epoch_time_figure),
    "cost": ("summary", cost_figure),
}


def save_figure(fig: Figure, png_path: str | Path) -> list[Path]:
    """Write ``fig`` as PNG (``DPI``) at ``png_path`` and as SVG beside it; closes it."""
    png_path = Path(png_path)
    paths = [png_path, png_path.with_suffix(".svg")]
    try:
        for path in paths:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=DPI, format=path.suffix[1:])
    finally:
        plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``hpstudy figures``: draw one kind of figure for one study."""
    parser = argparse.ArgumentParser(prog="hpstudy figures", description=__doc__.split("\n")[0])
    parser.add_argument("--kind", required=True, choices=[*FIGURE_BUILDERS, "seed"])
    parser.add_argument("--study", required=True, help="study name, as in the config")
    parser.add_argument("--metrics", default="results/metrics.csv")
    parser.add_argument("--summary", default="results/summary.csv")
    parser.add_argument("--out", required=True, help="PNG path; the SVG goes beside it")
    args = parser.parse_args(argv)
    if args.kind == "seed":
        from hpstudy.compare import seed_comparison_figure

        fig = seed_comparison_figure(read_table(args.metrics), args.study)
    else:
        table_name, build = FIGURE_BUILDERS[args.kind]
        fig = build(read_table(getattr(args, table_name)), args.study)
    paths = save_figure(fig, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
