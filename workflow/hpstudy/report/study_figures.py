"""A study's figures, fit for a paper: each builder takes the tables and returns the Figure,
so tests inspect its artists (which builder draws which kind, and from which tables:
:mod:`hpstudy.report.figure_registry`).

- ``curves``: train loss, test loss and test accuracy against epoch, one colour per swept
  value kept across the panels; with several seeds the mean line and a band;
- ``accuracy``: final and best test accuracy against the swept value (log axis where the
  values span decades; points, never a connecting line, for categorical values);
- ``epoch_time``: mean epoch time against the value; ``cost``: parameters and peak memory;
- ``heatmap``: mean final accuracy over two swept settings; ``confusion``: the best setting's
  confusion matrix;
- ``post``: our curves beside the post's own runs with the same settings, and
  ``reproduction``: every post run beside ours.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from hpstudy.core.errors import HpstudyError
from hpstudy.core.formatting import format_value, pct, setting_label, sort_key
from hpstudy.core.paths import PREDICTIONS
from hpstudy.core.stats import binomial_se, spans_decades, t_quantile
from hpstudy.report import post_runs
from hpstudy.report.figure_base import figure_legend, new_figure
from hpstudy.report.tables import final_accuracies, study_params

# settings named in a figure's title when the study holds them fixed
TITLE_SETTINGS = ["model", "pretrained", "optimizer", "lr", "batch_size", "weight_decay",
                  "kernel_width", "epochs", "dataset"]  # fmt: skip
CURVE_PANELS = [
    ("train_loss", "train loss (cross-entropy)", 1.0),
    ("test_loss", "test loss (cross-entropy)", 1.0),
    ("test_acc", "test accuracy (%)", 100.0),
]
VAL_PANEL = ("val_acc", "validation accuracy (%)", 100.0)  # added where runs have a val split
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


def _title(fig: Figure, view: StudyView, width: int) -> None:
    lines = [f"{view.study}: {view.axis_label} swept"]
    fixed = view.fixed_settings()
    if fixed:
        lines.append(f"fixed: {fixed}")
    text = "\n".join(textwrap.fill(line, width, break_on_hyphens=False) for line in lines)
    fig.suptitle(text, fontsize="medium" if width > 60 else "small")


def curves_figure(metrics: pd.DataFrame, summary: pd.DataFrame, study: str) -> Figure:
    """Train loss, test loss, test accuracy (and validation accuracy where the runs have a
    validation split) against epoch for every point of ``study``."""
    view = StudyView(summary, study)
    colors = value_colors(view)
    n_seeds = view.n_seeds()
    study_metrics = metrics[metrics["run_id"].isin(view.rows["run_id"])]
    has_val = "val_acc" in study_metrics and study_metrics["val_acc"].notna().any()
    panels = CURVE_PANELS + [VAL_PANEL] * bool(has_val)
    fig, axes = new_figure(len(panels))
    for point in view.points:
        run_ids = view.runs_at(point)["run_id"]
        runs = metrics[metrics["run_id"].isin(run_ids)]
        diverged = view.runs_at(point)["diverged"].astype(bool).any()
        label = view.labels[point] + (" (diverged)" if diverged else "")
        by_epoch = runs.groupby("epoch")
        for ax, (column, _, scale) in zip(axes, panels, strict=True):
            curve = by_epoch[column].agg(["mean", "std", "count"])
            ax.plot(
                curve.index, curve["mean"] * scale, color=colors[point], label=label, marker="."
            )
            if n_seeds > 1:
                half = ci_half_width(curve["std"], curve["count"]) * scale
                low, high = (curve["mean"] * scale - half, curve["mean"] * scale + half)
                ax.fill_between(curve.index, low, high, color=colors[point], alpha=0.2)
    for ax, (_, ylabel, _) in zip(axes, panels, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    band = f" (line: mean over {n_seeds} seeds; band: its 95% interval)" if n_seeds > 1 else ""
    figure_legend(fig, axes[0], view.axis_label + band)
    _title(fig, view, width=110)
    return fig


def _x_positions(ax, view: StudyView) -> list[float]:
    """Place the points on ``ax``'s x axis (log where numbers span decades, positions for
    categories) and label the ticks; returns the x coordinates."""
    if view.numeric():
        xs = [float(p[0]) for p in view.points]
        positive = [x for x in xs if x > 0]
        if spans_decades(positive):
            ax.set_xscale("log" if len(positive) == len(xs) else "symlog", **(
                {} if len(positive) == len(xs) else {"linthresh": min(positive)}))  # fmt: skip
    else:
        xs = list(range(len(view.points)))
        ax.set_xlim(-0.5, len(view.points) - 0.5)
    ax.set_xticks(xs, [view.labels[p] for p in view.points], rotation=0 if view.numeric() else 20)
    ax.minorticks_off()
    ax.set_xlabel(view.axis_label)
    return xs


def ci_half_width(std, count):
    """Half the 95 % t interval of a mean over ``count`` seeds (0 with one seed)."""
    std, count = np.asarray(std, float), np.asarray(count, float)
    quantile = np.array([t_quantile(n - 1) if n > 1 else 0.0 for n in np.atleast_1d(count)])
    return np.nan_to_num(quantile.reshape(count.shape) * std / np.sqrt(count))


def _per_point(view: StudyView, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds per point and the half width of its 95 % interval: a t interval over
    seeds, or with one seed (accuracies only) the test set's binomial interval."""
    means, halves = [], []
    for point in view.points:
        rows = view.runs_at(point)
        values = rows[column].astype(float)
        means.append(values.mean())
        if len(values) > 1:
            halves.append(float(ci_half_width(values.std(), len(values))))
        elif (
            column.endswith("_acc")
            and "test_count" in rows
            and pd.notna(rows["test_count"].iloc[0])
        ):
            halves.append(
                t_quantile(float("inf"))
                * binomial_se(values.iloc[0], int(rows["test_count"].iloc[0]))
            )
        else:
            halves.append(0.0)
    return np.array(means), np.array(halves)


def accuracy_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Final test accuracy against the swept value (mean and 95 % interval over seeds), beside
    the final validation accuracy where the runs have a validation split, or else the best
    epoch's test accuracy (the post's number, picked on the test set itself)."""
    view = StudyView(summary, study)
    fig, axes = new_figure(1, extra_height=0.8)
    ax = axes[0]
    xs = _x_positions(ax, view)
    line = "-" if view.numeric() else "none"
    has_val = "final_val_acc" in view.rows and view.rows["final_val_acc"].notna().any()
    series = [("final_test_acc", "final, test", "o")] + (
        [("final_val_acc", "final, validation", "^")]
        if has_val
        else [("best_test_acc", "best epoch, test (as the post; chosen on test)", "s")]
    )
    for column, name, marker in series:
        mean, std = _per_point(view, column)
        ax.errorbar(
            xs, mean * 100, yerr=std * 100, marker=marker, linestyle=line, capsize=3, label=name
        )
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    n = view.n_seeds()
    note = (
        f" (mean over {n} seeds, bars: 95% interval)"
        if n > 1
        else " (one seed, bars: the test set's 95% binomial interval)"
    )
    ax.legend(title="accuracy" + note, fontsize="small", title_fontsize="small")
    _title(fig, view, width=55)
    return fig


def epoch_time_figure(summary: pd.DataFrame, study: str) -> Figure:
    """Mean epoch time (training plus test inference) against the swept value."""
    view = StudyView(summary, study)
    fig, axes = new_figure(1, extra_height=0.8)
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
    fig, axes = new_figure(2)
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
    curves = pd.DataFrame(post_runs.post_epochs())
    fig, axes = new_figure(3)
    for point in view.points:
        rows = view.runs_at(point)
        ours = metrics[metrics["run_id"].isin(rows["run_id"])].groupby("epoch")
        matched = comparison[
            (comparison["kind"] == "labelled") & comparison["run_name"].isin(rows["name"])
        ]
        post_ids = sorted(set(matched["post_run"]), key=lambda run: int(run.removeprefix("run")))
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
    figure_legend(
        fig, axes[0], f"{view.axis_label}: solid, ours (mean over seeds); dashed, the post's run", 4
    )
    fig.suptitle(f"{study}: our runs beside the post's own runs", fontsize="medium")
    return fig


def heatmap_table(summary: pd.DataFrame, study: str, pair: tuple[str, str]):
    """Mean final test accuracy (diverged runs at chance) over two swept settings, averaged
    over seeds and over every other setting the study sweeps: (means, counts, rows, columns)."""
    rows = summary[summary["study"] == study]
    values = rows[list(pair)].copy()
    values["acc"] = final_accuracies(rows)
    grouped = values.groupby(list(pair), sort=False)["acc"]
    means, counts = grouped.mean(), grouped.size()
    ys = sorted(rows[pair[0]].drop_duplicates(), key=sort_key)
    xs = sorted(rows[pair[1]].drop_duplicates(), key=sort_key)
    table = np.full((len(ys), len(xs)), np.nan)
    seeds = np.zeros((len(ys), len(xs)), dtype=int)
    for (y, x), mean in means.items():
        table[ys.index(y), xs.index(x)] = mean
        seeds[ys.index(y), xs.index(x)] = counts[(y, x)]
    return table, seeds, ys, xs


def heatmap_figure(
    summary: pd.DataFrame, study: str, pair: tuple[str, str] | None = None
) -> Figure:
    """Mean final test accuracy over a study's two swept settings (``pair`` of a study of
    three or more, the others averaged over), each cell annotated with its value and the
    number of runs behind it."""
    view = StudyView(summary, study)
    pair = pair or tuple(view.params[:2])
    table, counts, ys, xs = heatmap_table(summary, study, pair)
    fig = Figure(figsize=(max(3.6, 1.0 * len(xs) + 2.2), max(3.0, 0.7 * len(ys) + 2.0)),
                 layout="constrained")  # fmt: skip
    ax = fig.subplots()
    image = ax.imshow(table * 100, cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(table):
        if np.isfinite(value):
            color = "white" if value < np.nanmean(table) else "black"
            ax.text(j, i, f"{pct(value)}\n(n={counts[i, j]})", ha="center", va="center",
                    fontsize="x-small", color=color)  # fmt: skip
    ax.set_xticks(range(len(xs)), [format_value(x) for x in xs], fontsize="small")
    ax.set_yticks(range(len(ys)), [format_value(y) for y in ys], fontsize="small")
    ax.set_xlabel(setting_label(pair[1]))
    ax.set_ylabel(setting_label(pair[0]))
    fig.colorbar(image, ax=ax, shrink=0.8, label="mean final test accuracy (%)")
    others = [k for k in view.params if k not in pair]
    note = f"; averaged over {', '.join(others)}" if others else ""
    title = f"{study}: mean final test accuracy (n: runs behind a cell{note})"
    fig.suptitle(textwrap.fill(title, 70), fontsize="small")
    return fig


def confusion_counts(runs_dir: Path, run_ids) -> tuple[np.ndarray, list[str]]:
    """The confusion counts (true class x predicted class) of some runs' final predictions,
    summed, and the class names."""
    total, classes = None, []
    for run_id in run_ids:
        with np.load(Path(runs_dir) / run_id / PREDICTIONS) as saved:
            labels, preds = saved["label"].astype(int), saved["pred"].astype(int)
        params = json.loads((Path(runs_dir) / run_id / "params.json").read_text())
        classes = params["data"]["classes"]
        counts = np.zeros((len(classes), len(classes)), dtype=int)
        valid = (preds >= 0) & (preds < len(classes))
        np.add.at(counts, (labels[valid], preds[valid]), 1)
        total = counts if total is None else total + counts
    return total, classes


def confusion_figure(summary: pd.DataFrame, study: str, runs_dir: str | Path) -> Figure:
    """The confusion matrix (rows: true class, normalised to 100 %) of the study's best
    setting (highest mean final test accuracy), summed over its seeds."""
    view = StudyView(summary, study)
    means, _ = _per_point(view, "final_test_acc")
    best = view.points[int(np.nanargmax(means))]
    rows = view.runs_at(best)
    counts, classes = confusion_counts(Path(runs_dir), rows["run_id"])
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) * 100
    side = max(3.2, 0.45 * len(classes) + 1.8)
    fig = Figure(figsize=(side + 0.8, side + 0.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
    for (i, j), value in np.ndenumerate(share):
        color = "white" if value > 60 else "black"
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize="x-small", color=color)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(len(classes)), classes, fontsize="small")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, shrink=0.8, label="% of the true class")
    seeds = len(rows)
    fig.suptitle(
        textwrap.fill(
            f"{study}: best setting {view.labels[best]} ({pct(float(np.nanmax(means)))} mean final "
            f"test accuracy), final predictions summed over {seeds} seed{'s' * (seeds > 1)}",
            60,
        ),
        fontsize="small",
    )
    return fig


def reproduction_figure(comparison: pd.DataFrame) -> Figure:
    """Reproduction at a glance: per post run, its final test accuracy beside our mean over
    seeds with the 95 % interval."""
    labelled = comparison[comparison["kind"] == "labelled"]
    fig, axes = new_figure(1, extra_height=0.8)
    ax = axes[0]
    ys = np.arange(len(labelled))[::-1]
    ours = labelled["final_test_acc_mean"].to_numpy(float) * 100
    low = labelled["final_test_acc_low"].to_numpy(float) * 100
    high = labelled["final_test_acc_high"].to_numpy(float) * 100
    err = np.nan_to_num(np.vstack([ours - low, high - ours]))
    ax.errorbar(ours, ys, xerr=err, fmt="o", color="tab:blue", capsize=3, label="ours (95% CI)")
    ax.plot(labelled["post_final_test_acc"] * 100, ys, "D", color="tab:orange", label="the post")
    labels = [f"{r.post_run} ({r.post_experiment})" for r in labelled.itertuples()]
    ax.set_yticks(ys, labels, fontsize="small")
    ax.set_xlabel("final test accuracy (%)")
    ax.grid(alpha=0.3, axis="x")
    reproduced = int(labelled["reproduced"].astype(bool).sum())
    title = f"{reproduced} of {len(labelled)} reproduced (within 3 points)"
    ax.legend(fontsize="small", title=title, title_fontsize="small")
    fig.suptitle("The post's runs beside ours", fontsize="medium")
    return fig
