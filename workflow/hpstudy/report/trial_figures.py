"""What a search or a grid explored: its trials' history, every trial's settings (parallel
coordinates), each setting's fANOVA importance (:mod:`hpstudy.report.exploration`) and what its
budget bought (the expected best of k trials drawn at random, :mod:`hpstudy.report.budget`).
Each builder takes the trials and returns the Figure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from hpstudy.core.formatting import setting_label, sort_key
from hpstudy.core.stats import spans_decades
from hpstudy.report import exploration
from hpstudy.report.figure_base import new_figure
from hpstudy.report.tables import read_table, study_params


def history_figure(trials: exploration.Trials, name: str) -> Figure:
    """A search's trials in order: each trial's metric and the best so far."""
    fig, axes = new_figure(1, extra_height=0.8)
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


def exploration_trials(tables: Path, summary: pd.DataFrame, study: str) -> exploration.Trials:
    """A search's trials (its folder holds trials.csv) or a grid study's runs."""
    if (tables / "trials.csv").is_file():
        return exploration.search_trials(
            read_table(tables / "trials.csv"), study_params(summary.iloc[0])
        )
    return exploration.study_trials(summary, study)


def budget_figure(curve, name: str) -> Figure:
    """What the budget bought (:mod:`hpstudy.report.budget`): the expected best of k settings
    or trials drawn at random with its spread (one standard deviation), against k and
    against device-hours; a search's own best so far in trial order beside it."""
    from hpstudy.report.budget import ON_TEST

    fig, axes = new_figure(2, extra_height=0.9)
    if not len(curve.values):  # every trial failed: nothing was bought
        fig.suptitle(f"{name}: no trial finished with a value, so no budget curve",
                     fontsize="small")  # fmt: skip
        return fig
    scale = 100.0 if curve.metric.endswith("_acc") else 1.0
    words = {"val_acc": "validation accuracy", "test_acc": "test accuracy",
             "val_loss": "validation loss", "test_loss": "test loss"}  # fmt: skip
    metric = words.get(curve.metric, curve.metric)
    unit = " (%)" if scale == 100.0 else ""
    low, high = float(np.min(curve.values)) * scale, float(np.max(curve.values)) * scale
    for ax, xs, order_xs, xlabel in (
        (axes[0], curve.ks, curve.ks, f"{curve.unit} drawn (k)"),
        (axes[1], curve.k_hours, np.cumsum(curve.hours), "device-hours"),
    ):
        mean, spread = curve.mean * scale, curve.spread * scale
        ax.plot(xs, mean, marker=".", color="tab:blue", label=f"best of k random {curve.unit}")
        # the spread of the best of k, within the values the draws can take
        ax.fill_between(xs, np.clip(mean - spread, low, high), np.clip(mean + spread, low, high),
                        color="tab:blue", alpha=0.2)  # fmt: skip
        if curve.in_order is not None:
            ax.step(order_xs, curve.in_order * scale, where="post", color="tab:red",
                    label="the search, in trial order")  # fmt: skip
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {metric}{unit}")
        ax.grid(alpha=0.3)
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize="small", title="band: one standard deviation", title_fontsize="small")
    where = f" {ON_TEST}" if curve.on_test else ""
    title = (f"{name}: expected best {metric}{where} for a budget of k {curve.unit} "
             f"(of {len(curve.values)}; {curve.note})")  # fmt: skip
    fig.suptitle(textwrap.fill(title, 100), fontsize="small")
    return fig
