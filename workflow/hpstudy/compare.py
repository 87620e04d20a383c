"""Our runs beside the seed post's own runs (``hpstudy/reference/seed_*.csv``).

The matching rule (one row of ``comparison.csv`` per pair of our run and a seed run it
matches; the study names play no part, so a run of any study can match):

- the data must be the Intel images as the seed used them: ``num_classes == 6`` and
  ``image_size == 150`` (the digits demo, 10 classes at 8 px, never matches);
- ``model``, ``pretrained``, ``batch_size`` and ``epochs`` are equal, and ``lr`` equal up to
  floating-point noise (relative 1e-6);
- ``weight_decay`` is equal where the seed recorded it; where it did not, any value matches;
- ``optimizer`` is ``adam`` (the seed trained with ``torch.optim.Adam``);
- for the custom network, ``kernel_width`` is ``5-5-7``, the network the seed's code defines
  (the widths of its kernel-width runs were never recorded).

Differences are ours minus the seed's. Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import argparse
import math
import textwrap
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hpstudy.aggregate import read_table  # noqa: E402
from hpstudy.atomic import atomic_path  # noqa: E402
from hpstudy.figures import (  # noqa: E402
    CURVE_PANELS,
    PANEL_SIZE_IN,
    PARAM_LABELS,
    format_value,
    study_rows,
    swept_values,
    value_colors,
)

SEED_NUM_CLASSES = 6
SEED_IMAGE_SIZE = 150
SEED_OPTIMIZER = "adam"
SEED_CUSTOM_KERNEL_WIDTH = "5-5-7"
LR_REL_TOL = 1e-6
# two seed runs with the same settings (run4/run7) stay apart by their dash pattern
SEED_LINESTYLES = ["--", ":", "-.", (0, (5, 1, 1, 1))]
COMPARISON_COLUMNS = [
    "run_id",
    "experiment",
    "value",
    "seed",
    "seed_run",
    "seed_experiment",
    "model",
    "pretrained",
    "lr",
    "batch_size",
    "weight_decay",
    "seed_weight_decay",
    "epochs",
    "final_test_acc",
    "seed_final_test_acc",
    "final_test_acc_diff",
    "best_test_acc",
    "seed_best_test_acc",
    "best_test_acc_diff",
    "mean_epoch_time_s",
    "seed_mean_epoch_time_s",
]
MATCH_RULE = (
    "same model, pretrained, batch_size, epochs and lr; weight_decay where the seed recorded "
    f"it; optimizer {SEED_OPTIMIZER}; kernel widths {SEED_CUSTOM_KERNEL_WIDTH} for the custom "
    f"network; data with {SEED_NUM_CLASSES} classes at {SEED_IMAGE_SIZE} px"
)


def seed_runs() -> pd.DataFrame:
    """The seed's runs, one row each (shipped in ``hpstudy/reference/seed_runs.csv``)."""
    with resources.files("hpstudy").joinpath("reference/seed_runs.csv").open("rb") as fh:
        return pd.read_csv(fh)


def seed_epochs() -> pd.DataFrame:
    """The seed's per-epoch curves (``hpstudy/reference/seed_epochs.csv``)."""
    with resources.files("hpstudy").joinpath("reference/seed_epochs.csv").open("rb") as fh:
        return pd.read_csv(fh)


def matches_seed(run: pd.Series, seed: pd.Series) -> bool:
    """Whether our run (a summary row) matches a seed run under the module's rule."""
    if run.get("num_classes") != SEED_NUM_CLASSES or run.get("image_size") != SEED_IMAGE_SIZE:
        return False
    if run.get("optimizer") != SEED_OPTIMIZER or run.get("model") != seed["model"]:
        return False
    if bool(run.get("pretrained")) != bool(seed["pretrained"]):
        return False
    if run["model"] == "custom" and str(run.get("kernel_width")) != SEED_CUSTOM_KERNEL_WIDTH:
        return False
    if int(run["batch_size"]) != int(seed["batch_size"]) or int(run["epochs"]) != int(
        seed["epochs"]
    ):
        return False
    if not math.isclose(float(run["lr"]), float(seed["lr"]), rel_tol=LR_REL_TOL):
        return False
    if pd.notna(seed["weight_decay"]):
        return math.isclose(float(run["weight_decay"]), float(seed["weight_decay"]), abs_tol=1e-12)
    return True


def compare_with_seed(summary: pd.DataFrame, seeds: pd.DataFrame | None = None) -> pd.DataFrame:
    """``comparison.csv``'s table: one row per (our run, matching seed run); empty with the
    header when nothing matches."""
    seeds = seed_runs() if seeds is None else seeds
    rows = []
    for _, run in summary.iterrows():
        for _, seed in seeds.iterrows():
            if not matches_seed(run, seed):
                continue
            rows.append(
                {
                    **{k: run.get(k) for k in COMPARISON_COLUMNS if k in run},
                    "seed_run": seed["run"],
                    "seed_experiment": seed["experiment"],
                    "seed_weight_decay": seed["weight_decay"],
                    "seed_final_test_acc": seed["final_test_acc"],
                    "final_test_acc_diff": run["final_test_acc"] - seed["final_test_acc"],
                    "seed_best_test_acc": seed["best_test_acc"],
                    "best_test_acc_diff": run["best_test_acc"] - seed["best_test_acc"],
                    "seed_mean_epoch_time_s": seed["mean_epoch_time_s"],
                }
            )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def seed_comparison_figure(metrics: pd.DataFrame, study: str) -> Figure:
    """Our curves (solid, mean over seeds) beside the matching seed runs' curves (dashed, same
    colour per value) for every value of ``study``; says so when no seed run matches."""
    rows, param = study_rows(metrics, study)
    values = swept_values(rows, param)
    colors = value_colors(values)
    seeds, curves = seed_runs(), seed_epochs()
    runs = rows.drop_duplicates("run_id").set_index("run_id")
    fig, axes = plt.subplots(
        1, 3, figsize=(3 * PANEL_SIZE_IN[0], PANEL_SIZE_IN[1] + 0.6), layout="constrained"
    )
    matched = 0
    for value in values:
        ours = rows[rows[param] == value]
        seed_ids = sorted(
            {s["run"] for _, r in runs[runs[param] == value].iterrows() for _, s in seeds.iterrows()
             if matches_seed(r, s)}
        )  # fmt: skip
        matched += len(seed_ids)
        by_epoch = ours.groupby("epoch")
        for ax, (column, _, scale) in zip(axes, CURVE_PANELS, strict=True):
            mean = by_epoch[column].mean() * scale
            ax.plot(mean.index, mean, color=colors[value], label=f"{format_value(value)} (ours)")
            for i, seed_id in enumerate(seed_ids):
                theirs = curves[curves["run"] == seed_id]
                ax.plot(
                    theirs["epoch"],
                    theirs[column] * scale,
                    color=colors[value],
                    linestyle=SEED_LINESTYLES[i % len(SEED_LINESTYLES)],
                    label=f"{format_value(value)} (seed {seed_id})",
                )
    for ax, (_, ylabel, _) in zip(axes, CURVE_PANELS, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    note = "solid: ours (mean over seeds); dashed: the seed post's run"
    if not matched:
        note = f"no seed run matches these settings ({MATCH_RULE}); ours only"
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 4),
        title=textwrap.fill(f"{PARAM_LABELS.get(param, param)}: {note}", 110),
        fontsize="small",
        title_fontsize="small",
    )
    fig.suptitle(f"{study}: our runs beside the seed post's runs", fontsize="medium")
    return fig


def write_comparison(summary_path: str | Path, out_path: str | Path) -> pd.DataFrame:
    """Compare ``summary.csv`` with the seed's runs and write ``comparison.csv``."""
    table = compare_with_seed(read_table(summary_path))
    with atomic_path(out_path) as tmp:
        table.to_csv(tmp, index=False)
    return table


def describe_comparison(table: pd.DataFrame) -> str:
    """A sentence or two on the comparison, for findings and the console."""
    if table.empty:
        return (
            "No run matches one of the seed's runs, so nothing is compared (rule: "
            f"{MATCH_RULE}). This is expected on any data other than the Intel images at "
            f"{SEED_IMAGE_SIZE} px."
        )
    diff = table["final_test_acc_diff"].astype(float)
    return (
        f"{table['run_id'].nunique()} of our runs match {table['seed_run'].nunique()} of the "
        f"seed's runs ({len(table)} pairs; rule: {MATCH_RULE}). Final test accuracy, ours minus "
        f"the seed's: mean {np.mean(diff) * 100:+.1f} points, from {diff.min() * 100:+.1f} to "
        f"{diff.max() * 100:+.1f}."
    )


def main(argv: list[str] | None = None) -> int:
    """``hpstudy compare``: write ``comparison.csv`` from ``summary.csv``."""
    parser = argparse.ArgumentParser(prog="hpstudy compare", description=__doc__.split("\n")[0])
    parser.add_argument("--summary", default="results/summary.csv")
    parser.add_argument("--out", default="results/comparison.csv")
    args = parser.parse_args(argv)
    table = write_comparison(args.summary, args.out)
    print(describe_comparison(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
