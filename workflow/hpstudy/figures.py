"""Every figure of a study, fit for a paper: PNG (200 dpi) plus SVG, drawn with matplotlib's
object API (``matplotlib.figure.Figure``; no pyplot state, no backend switching).

Kinds (which a study gets: :mod:`hpstudy.targets`):

- ``curves``: train loss, test loss and test accuracy against epoch, one colour per swept
  value kept across the panels; with several seeds the mean line and a band;
- ``accuracy``: final and best test accuracy against the swept value (log axis where the
  values span decades; points, never a connecting line, for categorical values);
- ``epoch_time``: mean epoch time against the value;
- ``cost``: parameters and peak memory against the value;
- ``post``: our curves beside the post's own runs with the same settings;
- ``parallel_coordinates``, ``importance`` (grids of two settings or more, and searches): every
  run's settings as a line coloured by its metric, and each setting's fANOVA importance
  (:mod:`hpstudy.exploration`); ``history`` (searches): each trial's metric and the best so far.

Each builder takes the tables and returns the Figure, so tests inspect its artists;
:func:`save_figure` writes the files.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from hpstudy import exploration, reference
from hpstudy.atomic import atomic_path
from hpstudy.errors import HpstudyError
from hpstudy.formatting import format_value, pct, setting_label, sort_key
from hpstudy.layout import PREDICTIONS
from hpstudy.stats import binomial_se, spans_decades, t_quantile
from hpstudy.tables import final_accuracies, read_table, study_params
from hpstudy.targets import FIGURE_KINDS, OVERVIEW_KINDS, heatmap_pair

DPI = 200
PANEL_SIZE_IN = (3.5, 2.8)  # one panel at single-column width
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
    """Train loss, test loss, test accuracy (and validation accuracy where the runs have a
    validation split) against epoch for every point of ``study``."""
    view = StudyView(summary, study)
    colors = value_colors(view)
    n_seeds = view.n_seeds()
    study_metrics = metrics[metrics["run_id"].isin(view.rows["run_id"])]
    has_val = "val_acc" in study_metrics and study_metrics["val_acc"].notna().any()
    panels = CURVE_PANELS + [VAL_PANEL] * bool(has_val)
    fig, axes = _new_figure(len(panels))
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
    _legend(fig, axes[0], view.axis_label + band)
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
    fig, axes = _new_figure(1, extra_height=0.8)
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
    _legend(
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
            ax.text(j, i, f"{value * 100:.1f}%\n(n={counts[i, j]})", ha="center", va="center",
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
    fig, axes = _new_figure(1, extra_height=0.8)
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


def history_figure(trials: exploration.Trials, name: str) -> Figure:
    """A search's trials in order: each trial's metric and the best so far."""
    fig, axes = _new_figure(1, extra_height=0.8)
    ax = axes[0]
    frame = trials.frame.sort_values("trial")
    values = frame[exploration.VALUE].astype(float)
    ok = frame["state"] == "complete"
    ax.plot(frame["trial"][ok], values[ok], "o", color="tab:blue", label="trial")
    if (~ok).any():
        ax.plot(frame["trial"][~ok], values[~ok], "x", color="tab:gray",
                label="diverged (at chance) or failed")  # fmt: skip
    best = values.cummax() if trials.maximise else values.cummin()
    ax.step(frame["trial"], best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(trials.metric)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.suptitle(textwrap.fill(f"{name}: optimisation history ({trials.note})", 70),
                 fontsize="small")  # fmt: skip
    return fig


def parallel_coordinates_figure(trials: exploration.Trials, name: str) -> Figure:
    """One vertical axis per setting and one for the metric; each trial a line across them,
    coloured by its metric (numbers on a log scale where they span decades)."""
    keys = [*trials.params, exploration.VALUE]
    frame = trials.frame
    fig = Figure(figsize=(max(4.0, 1.6 * len(keys)), 3.6), layout="constrained")
    ax = fig.add_subplot()
    positions, ticks = {}, {}
    for key in keys:
        if key == exploration.VALUE or trials.numeric(key):
            values = frame[key].astype(float)
            log = bool(values.min() > 0 and spans_decades(values.tolist()))
            scaled = np.log10(values) if log else values
            low, high = float(scaled.min()), float(scaled.max())
            span = (high - low) or 1.0
            positions[key] = ((scaled - low) / span).to_numpy()
            ticks[key] = [(0.0, f"{values.min():.3g}"), (1.0, f"{values.max():.3g}")]
        else:
            labels = sorted(frame[key].astype(str).unique(), key=sort_key)
            spot = {v: i / max(len(labels) - 1, 1) for i, v in enumerate(labels)}
            positions[key] = frame[key].astype(str).map(spot).to_numpy()
            ticks[key] = list(zip(spot.values(), spot.keys(), strict=True))
    values = frame[exploration.VALUE].astype(float).to_numpy()
    cmap = colormaps["viridis"]
    low, high = np.nanmin(values), np.nanmax(values)
    shade = (values - low) / ((high - low) or 1.0)
    xs = np.arange(len(keys))
    for i in np.argsort(shade if trials.maximise else -shade):  # the best drawn last, on top
        ys = [positions[key][i] for key in keys]
        ax.plot(xs, ys, color=cmap(shade[i] if trials.maximise else 1 - shade[i]),
                alpha=0.8, linewidth=1.2)  # fmt: skip
    for x, key in zip(xs, keys, strict=True):
        ax.axvline(x, color="black", linewidth=0.8)
        for y, text in ticks[key]:
            ax.annotate(text, (x, y), xytext=(3, 0), textcoords="offset points",
                        fontsize="x-small", va="center")  # fmt: skip
    names = [setting_label(k) if k != exploration.VALUE else trials.metric for k in keys]
    ax.set_xticks(xs, [textwrap.fill(n, 14) for n in names], fontsize="small")
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(keys) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    mappable = ScalarMappable(Normalize(low, high), cmap if trials.maximise else cmap.reversed())
    fig.colorbar(mappable, ax=ax, label=trials.metric)
    fig.suptitle(textwrap.fill(f"{name}: every run's settings ({trials.note})", 90),
                 fontsize="small")  # fmt: skip
    return fig


def importance_figure(trials: exploration.Trials, name: str) -> Figure:
    """Each setting's fANOVA importance for the metric (Optuna's evaluator), largest on top."""
    found = exploration.importances(trials)
    fig = Figure(figsize=(5.5, 1.6 + 0.45 * len(found)), layout="constrained")
    ax = fig.add_subplot()
    keys = sorted(found, key=lambda k: found[k])
    ax.barh([setting_label(k) for k in keys], [found[k] for k in keys], color="tab:blue")
    for y, key in enumerate(keys):
        ax.annotate(f"{found[key]:.2f}", (found[key], y), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize="small")  # fmt: skip
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"importance for {trials.metric} (fANOVA, sums to 1)")
    n = len(trials.frame)
    fig.suptitle(textwrap.fill(f"{name}: setting importance from {n} runs ({trials.note})", 80),
                 fontsize="small")  # fmt: skip
    return fig


EXPLORATION = {
    "history": history_figure,
    "parallel_coordinates": parallel_coordinates_figure,
    "importance": importance_figure,
}


def exploration_trials(tables: Path, summary: pd.DataFrame, study: str) -> exploration.Trials:
    """A search's trials (its folder holds trials.csv) or a grid study's runs."""
    if (tables / "trials.csv").is_file():
        return exploration.search_trials(
            read_table(tables / "trials.csv"), study_params(summary.iloc[0])
        )
    return exploration.study_trials(summary, study)


def build_figure(
    kind: str, tables: str | Path, study: str, runs_dir: str | Path | None = None
) -> Figure:
    """The ``kind`` figure of ``study`` from the tables in the results folder ``tables``."""
    tables = Path(tables)
    if kind == "reproduction":
        return reproduction_figure(read_table(tables / "comparison.csv"))
    summary = read_table(tables / "summary.csv")
    if kind == "confusion":
        return confusion_figure(summary, study, runs_dir)
    if kind.startswith("heatmap"):
        return heatmap_figure(summary, study, heatmap_pair(kind))
    if kind == "curves":
        return curves_figure(read_table(tables / "metrics.csv"), summary, study)
    if kind in EXPLORATION:
        return EXPLORATION[kind](exploration_trials(tables, summary, study), study)
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
    parser.add_argument("--kind", required=True, help=f"one of {FIGURE_KINDS + OVERVIEW_KINDS}, "
                        "or heatmap-<setting>-<setting>")  # fmt: skip
    parser.add_argument("--study", default="", help="study name, as in the config")
    parser.add_argument("--tables", required=True, help="the config's results folder")
    parser.add_argument("--runs-dir", help="the run folders (confusion matrices)")
    parser.add_argument("--out", required=True, help="PNG path; the SVG goes beside it")
    args = parser.parse_args(argv)
    figure = build_figure(args.kind, args.tables, args.study, args.runs_dir)
    paths = save_figure(figure, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
