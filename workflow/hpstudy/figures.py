"""Every figure of a study, fit for a paper: PNG (200 dpi) plus SVG, drawn with matplotlib's
object API (``matplotlib.figure.Figure``; no pyplot state, no backend switching).

Kinds (which a study gets: :mod:`hpstudy.targets`):

- ``curves``: train loss, test loss and test accuracy against epoch, one colour per swept
  value kept across the panels; with several seeds the mean line and a band;
- ``accuracy``: final and best test accuracy against the swept value (log axis where the
  values span decades; points, never a connecting line, for categorical values);
- ``epoch_time``: mean epoch time against the value;
- ``cost``: parameters and peak memory against the value;
- ``post``: our curves beside the post's own runs with the same settings.

Each builder takes the tables and returns the Figure, so tests inspect its artists;
:func:`save_figure` writes the files.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from hpstudy import reference
from hpstudy.atomic import atomic_path
from hpstudy.errors import HpstudyError
from hpstudy.formatting import format_value, setting_label, sort_key
from hpstudy.tables import read_table, study_params
from hpstudy.targets import FIGURE_KINDS

DPI = 200
PANEL_SIZE_IN = (3.5, 2.8)  # one panel at single-column width
LOG_SPAN = 100  # values spanning this factor or more get a log axis
# settings named in a figure's title when the study holds them fixed
TITLE_SETTINGS = ["model", "pretrained", "optimizer", "lr", "batch_size", "weight_decay",
                  "kernel_width", "epochs", "dataset"]  # fmt: skip
CURVE_PANELS = [
    ("train_loss", "train loss (cross-entropy)", 1.0),
    ("test_loss", "test loss (cross-entropy)", 1.0),
    ("test_acc", "test accuracy (%)", 100.0),
]
POST_LINESTYLES = ["--", ":", "-.", (0, (5, 1, 1, 1))]


class StudyView:
    """One study's rows of the tables, and the label of each run's point in the study."""

    def __init__(self, summary: pd.DataFrame, study: str) -> None:
        rows = summary[summary["study"] == study]
        if rows.empty:
            known = ", ".join(dict.fromkeys(summary["study"].astype(str)))
            raise HpstudyError(
                f"The results tables hold no study named {study!r} (studies: {known}). Check "
                "the study name against `studies:` in the config, then rerun snakemake."
            )
        self.study, self.rows = study, rows
        self.params = study_params(rows.iloc[0])
        self.points = sorted(
            rows.drop_duplicates("name")[self.params].itertuples(index=False, name=None),
            key=lambda point: tuple(sort_key(v) for v in point),
        )
        self.labels = {point: self.label(point) for point in self.points}

    def label(self, point: tuple) -> str:
        """``1e-04`` for a one-key study, ``lr=1e-04, batch_size=32`` for a grid."""
        if len(self.params) == 1:
            return format_value(point[0])
        return ", ".join(f"{k}={format_value(v)}" for k, v in zip(self.params, point, strict=True))

    def runs_at(self, point: tuple) -> pd.DataFrame:
        """The summary rows (one per seed) of one point."""
        mask = np.logical_and.reduce(
            [self.rows[k] == v for k, v in zip(self.params, point, strict=True)]
        )
        return self.rows[mask]

    @property
    def axis_label(self) -> str:
        """The swept setting(s) for people."""
        return " x ".join(setting_label(k) for k in self.params)

    def numeric(self) -> bool:
        """Whether the points lie on a number line (one numeric key)."""
        return len(self.params) == 1 and all(
            isinstance(p[0], int | float | np.integer | np.floating) and not isinstance(p[0], bool)
            for p in self.points
        )

    def n_seeds(self) -> int:
        """The largest number of seeds behind one point."""
        return int(self.rows.groupby("name")["run_id"].nunique().max())

    def fixed_settings(self) -> str:
        """``model=custom, optimizer=adam, ...``: the title settings the study holds fixed."""
        parts = []
        for key in TITLE_SETTINGS:
            if (
                key in self.params
                or key not in self.rows
                or self.rows[key].nunique(dropna=False) != 1
            ):
                continue
            if key == "kernel_width" and (self.rows["model"] != "custom").any():
                continue  # the kernel widths only shape the custom network
            value = self.rows[key].iloc[0]
            if not pd.isna(value):
                parts.append(f"{key}={format_value(value)}")
        return ", ".join(parts)


def value_colors(view: StudyView) -> dict:
    """One colour per point: an ordered (viridis) ramp for numbers, tab10 otherwise."""
    if view.numeric() or len(view.params) > 1:
        cmap = colormaps["viridis"]
        spots = np.linspace(0.0, 0.85, len(view.points)) if len(view.points) > 1 else [0.4]
        return {p: cmap(s) for p, s in zip(view.points, spots, strict=True)}
    cmap = colormaps["tab10"]
    return {p: cmap(i % 10) for i, p in enumerate(view.points)}


def _new_figure(panels: int, extra_height: float = 0.6) -> tuple[Figure, list]:
    fig = Figure(
        figsize=(panels * PANEL_SIZE_IN[0], PANEL_SIZE_IN[1] + extra_height), layout="constrained"
    )
    axes = fig.subplots(1, panels, squeeze=False)[0]
    return fig, list(axes)


def _title(fig: Figure, view: StudyView, width: int) -> None:
    lines = [f"{view.study}: {view.axis_label} swept"]
    fixed = view.fixed_settings()
    if fixed:
        lines.append(f"fixed: {fixed}")
    text = "\n".join(textwrap.fill(line, width, break_on_hyphens=False) for line in lines)
    fig.suptitle(text, fontsize="medium" if width > 60 else "small")


def _legend(fig: Figure, ax, title: str, ncols: int = 6) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), ncols) or 1,
        title=textwrap.fill(title, 110),
        fontsize="small",
        title_fontsize="small",
    )


def curves_figure(metrics: pd.DataFrame, summary: pd.DataFrame, study: str) -> Figure:
    """Train loss, test loss and test accuracy against epoch for every point of ``study``."""
    view = StudyView(summary, study)
    colors = value_colors(view)
    n_seeds = view.n_seeds()
    fig, axes = _new_figure(3)
    for point in view.points:
        run_ids = view.runs_at(point)["run_id"]
        runs = metrics[metrics["run_id"].isin(run_ids)]
        diverged = not np.isfinite(runs["train_loss"].astype(float)).all()
        label = view.labels[point] + (" (diverged)" if diverged else "")
        by_epoch = runs.groupby("epoch")
        for ax, (column, _, scale) in zip(axes, CURVE_PANELS, strict=True):
            curve = by_epoch[column].agg(["mean", "min", "max"]) * scale
            ax.plot(curve.index, curve["mean"], color=colors[point], label=label, marker=".")
            if n_seeds > 1:
                ax.fill_between(
                    curve.index, curve["min"], curve["max"], color=colors[point], alpha=0.2
                )
    for ax, (_, ylabel, _) in zip(axes, CURVE_PANELS, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    band = f" (line: mean over {n_seeds} seeds; band: min-max)" if n_seeds > 1 else ""
    _legend(fig, axes[0], view.axis_label + band)
    _title(fig, view, width=110)
    return fig


def _x_positions(ax, view: StudyView) -> list[float]:
    """Place the points on ``ax``'s x axis (log where numbers span decades, positions for
    categories) and label the ticks; returns the x coordinates."""
    if view.numeric():
        xs = [float(p[0]) for p in view.points]
        positive = [x for x in xs if x > 0]
        if positive and max(positive) / min(positive) >= LOG_SPAN:
            ax.set_xscale("log" if len(positive) == len(xs) else "symlog", **(
                {} if len(positive) == len(xs) else {"linthresh": min(positive)}))  # fmt: skip
    else:
        xs = list(range(len(view.points)))
        ax.set_xlim(-0.5, len(view.points) - 0.5)
    ax.set_xticks(xs, [view.labels[p] for p in view.points], rotation=0 if view.numeric() else 20)
    ax.minorticks_off()
    ax.set_xlabel(view.axis_label)
    return xs


def _per_point(view: StudyView, column: str) -> tuple[np.ndarray, np.ndarray]:
    stats = [view.runs_at(p)[column].astype(float) for p in view.points]
    means = np.array([s.mean() for s in stats])
    stds = np.array([s.std() if len(s) > 1 else 0.0 for s in stats])
    return means, np.nan_to_num(stds)


def accuracy_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Final and best test accuracy against the swept value (mean and spread over seeds)."""
    view = StudyView(summary, study)
    fig, axes = _new_figure(1, extra_height=0.8)
    ax = axes[0]
    xs = _x_positions(ax, view)
    line = "-" if view.numeric() else "none"
    for column, name, marker in [("final_test_acc", "final", "o"), ("best_test_acc", "best", "s")]:
        mean, std = _per_point(view, column)
        ax.errorbar(
            xs, mean * 100, yerr=std * 100, marker=marker, linestyle=line, capsize=3, label=name
        )
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    n = view.n_seeds()
    note = f" (mean, bars: std over {n} seeds)" if n > 1 else ""
    ax.legend(title="test accuracy" + note, fontsize="small", title_fontsize="small")
    _title(fig, view, width=55)
    return fig


def epoch_time_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Mean epoch time (training plus test inference) against the swept value."""
    view = StudyView(summary, study)
    fig, axes = _new_figure(1, extra_height=0.8)
    ax = axes[0]
    xs = _x_positions(ax, view)
    mean, std = _per_point(view, "mean_epoch_time_s")
    ax.errorbar(xs, mean, yerr=std, marker="o", linestyle="-" if view.numeric() else "none",
                capsize=3, color="tab:blue")  # fmt: skip
    ax.set_ylabel("mean epoch time (s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    _title(fig, view, width=55)
    return fig


def cost_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Parameters (convolutional and fully connected) and peak memory per swept value."""
    view = StudyView(summary, study)
    colors = value_colors(view)
    fig, axes = _new_figure(2)
    positions = list(range(len(view.points)))
    conv, _ = _per_point(view, "conv_param_count")
    fc, _ = _per_point(view, "fc_param_count")
    axes[0].bar(positions, fc / 1e6, color="tab:gray", label="fully connected")
    axes[0].bar(positions, conv / 1e6, bottom=fc / 1e6, color=[colors[p] for p in view.points],
                label="convolutional")  # fmt: skip
    axes[0].set_ylabel("parameters (millions)")
    axes[0].legend(fontsize="small")
    memory, _ = _per_point(view, "peak_memory_mb")
    axes[1].bar(positions, memory, color=[colors[p] for p in view.points])
    axes[1].set_ylabel("peak memory (MB)")
    for ax in axes:
        ax.set_xticks(positions, [view.labels[p] for p in view.points])
        ax.set_xlabel(view.axis_label)
        ax.grid(alpha=0.3, axis="y")
    _title(fig, view, width=90)
    return fig


def post_figure(
    metrics: pd.DataFrame, summary: pd.DataFrame, comparison: pd.DataFrame, study: str
) -> Figure:
    """Our curves (solid, mean over seeds) beside the post's runs that match them (dashed, same
    colour per value)."""
    view = StudyView(summary, study)
    colors = value_colors(view)
    curves = pd.DataFrame(reference.post_epochs())
    fig, axes = _new_figure(3)
    for point in view.points:
        run_ids = view.runs_at(point)["run_id"]
        ours = metrics[metrics["run_id"].isin(run_ids)].groupby("epoch")
        post_ids = sorted(set(comparison.loc[comparison["run_id"].isin(run_ids), "post_run"]))
        for ax, (column, _, scale) in zip(axes, CURVE_PANELS, strict=True):
            mean = ours[column].mean() * scale
            ax.plot(mean.index, mean, color=colors[point], label=f"{view.labels[point]} (ours)")
            for i, post_id in enumerate(post_ids):
                theirs = curves[curves["run"] == post_id]
                ax.plot(theirs["epoch"], theirs[column] * scale, color=colors[point],
                        linestyle=POST_LINESTYLES[i % len(POST_LINESTYLES)],
                        label=f"{view.labels[point]} (post {post_id})")  # fmt: skip
    for ax, (_, ylabel, _) in zip(axes, CURVE_PANELS, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    _legend(
        fig, axes[0], f"{view.axis_label}: solid, ours (mean over seeds); dashed, the post's run", 4
    )
    fig.suptitle(f"{study}: our runs beside the post's own runs", fontsize="medium")
    return fig


def build_figure(kind: str, tables: str | Path, study: str) -> Figure:
    """The ``kind`` figure of ``study`` from the tables in the results folder ``tables``."""
    tables = Path(tables)
    summary = read_table(tables / "summary.csv")
    if kind == "curves":
        return curves_figure(read_table(tables / "metrics.csv"), summary, study)
    if kind == "post":
        metrics, comparison = (
            read_table(tables / "metrics.csv"),
            read_table(tables / "comparison.csv"),
        )
        return post_figure(metrics, summary, comparison, study)
    builders = {"accuracy": accuracy_figure, "epoch_time": epoch_time_figure, "cost": cost_figure}
    return builders[kind](summary, study)


def save_figure(fig: Figure, png_path: str | Path) -> list[Path]:
    """Write ``fig`` as PNG (``DPI``) at ``png_path`` and as SVG beside it."""
    png_path = Path(png_path)
    paths = [png_path, png_path.with_suffix(".svg")]
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format=path.suffix[1:])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``hpstudy figures``: draw one kind of figure for one study."""
    parser = argparse.ArgumentParser(prog="hpstudy figures", description=__doc__.split("\n")[0])
    parser.add_argument("--kind", required=True, choices=FIGURE_KINDS)
    parser.add_argument("--study", required=True, help="study name, as in the config")
    parser.add_argument("--tables", required=True, help="the config's results folder")
    parser.add_argument("--out", required=True, help="PNG path; the SVG goes beside it")
    args = parser.parse_args(argv)
    paths = save_figure(build_figure(args.kind, args.tables, args.study), args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
