"""``comparison.csv``: each of the post's own runs beside ours with the same settings.

Each post run counts once. It is matched (:mod:`hpstudy.report.post_runs` holds the rule) by the
settings of one of our runs, whatever the study; its row holds our mean final test accuracy
over seeds with its 95 % interval beside the post's value, ``reproduced`` when the post's
value lies within ``reproduced_within`` (3 points) of our mean, and the per-epoch agreement
(mean absolute difference of test accuracy and test loss over the shared epochs). A post run
whose weight decay was not recorded matches only our runs at the weight decay the config
declares as the post's assumed one, and says "assumed". The post's two unlabelled runs, whose
kernel widths nobody knows, are listed apart and never counted.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from hpstudy.core import schema, stats
from hpstudy.core.atomic import atomic_write_json
from hpstudy.report import post_runs
from hpstudy.report.tables import read_tables, settings_of, write_table

REPRODUCED_WITHIN = schema.default("comparison", "reproduced_within")
COMPARISON_COLUMNS = [
    "post_run", "post_experiment", "kind", "run_name", "weight_decay_source", "seeds",
    "final_test_acc_mean", "final_test_acc_low", "final_test_acc_high", "post_final_test_acc",
    "final_test_acc_diff", "reproduced", "epoch_test_acc_mad", "epoch_test_loss_mad",
    "shared_epochs", "model", "lr", "batch_size", "weight_decay", "kernel_width",
]  # fmt: skip


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval over seeds (the mean itself with one seed)."""
    if len(values) < 2:
        return values[0], math.nan, math.nan
    interval = stats.one_sample(values, 0.0)
    return interval.effect, interval.low, interval.high


def epoch_agreement(metrics: pd.DataFrame, run_ids, post_run: str) -> tuple[float, float, int]:
    """Mean absolute difference of our mean test accuracy and loss per epoch from the post's."""
    ours = (
        metrics[metrics["run_id"].isin(run_ids)].groupby("epoch")[["test_acc", "test_loss"]].mean()
    )
    theirs = pd.DataFrame([e for e in post_runs.post_epochs() if e["run"] == post_run])
    joined = ours.merge(
        theirs.set_index("epoch")[["test_acc", "test_loss"]],
        left_index=True,
        right_index=True,
        suffixes=("", "_post"),
    )
    if joined.empty:
        return math.nan, math.nan, 0
    acc = float(np.mean(np.abs(joined["test_acc"] - joined["test_acc_post"])))
    loss = float(np.mean(np.abs(joined["test_loss"] - joined["test_loss_post"])))
    return acc, loss, len(joined)


def compare_with_post(
    summary: pd.DataFrame,
    metrics: pd.DataFrame,
    assumed_weight_decay: float = post_runs.ASSUMED_WEIGHT_DECAY,
    within: float = REPRODUCED_WITHIN,
) -> pd.DataFrame:
    """One row per post run that some setting of ours matches (labelled runs first, then the
    unlabelled ones with every candidate); empty with the header when nothing matches."""
    runs = summary.drop_duplicates("run_id")
    runs = runs[
        [post_runs.is_post_data(r.dataset, r.image_size, r.num_classes) for r in runs.itertuples()]
    ]
    settings = {name: settings_of(rows.iloc[0]) for name, rows in runs.groupby("name", sort=False)}
    rows = []
    for post in post_runs.post_runs():
        unlabelled = post["experiment"] == post_runs.UNLABELLED
        for name, ours in settings.items():
            if not post_runs.matches(
                ours, post, assumed_weight_decay, ignore_kernel_width=unlabelled
            ):
                continue
            seeds = runs[runs["name"] == name]
            finals = seeds["final_test_acc"].astype(float).tolist()
            mean, low, high = mean_interval(finals)
            mad_acc, mad_loss, shared = epoch_agreement(metrics, seeds["run_id"], post["run"])
            diff = mean - post["final_test_acc"]
            rows.append({
                "post_run": post["run"], "post_experiment": post["experiment"],
                "kind": "unlabelled" if unlabelled else "labelled", "run_name": name,
                "weight_decay_source": "assumed" if post["weight_decay"] is None else "recorded",
                "seeds": len(finals), "final_test_acc_mean": mean, "final_test_acc_low": low,
                "final_test_acc_high": high, "post_final_test_acc": post["final_test_acc"],
                "final_test_acc_diff": diff, "reproduced": abs(diff) <= within,
                "epoch_test_acc_mad": mad_acc, "epoch_test_loss_mad": mad_loss,
                "shared_epochs": shared, **{k: seeds.iloc[0][k] for k in COMPARISON_COLUMNS[-5:]},
            })  # fmt: skip
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    return table.sort_values(["kind", "post_run"], key=lambda c: c.map(_order), kind="stable")


def _order(value):
    if isinstance(value, str) and value.startswith("run"):
        return int(value[3:])
    return 0 if value == "labelled" else 1 if value == "unlabelled" else value


def headline(table: pd.DataFrame) -> dict:
    """How many of the post's (labelled) runs this sweep compares, and reproduces."""
    labelled = table[table["kind"] == "labelled"]
    return {
        "post_runs_compared": int(labelled["post_run"].nunique()),
        "post_runs_reproduced": int(
            labelled.loc[labelled["reproduced"].astype(bool), "post_run"].nunique()
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """``hpstudy compare``: write ``comparison.csv`` (and its counts) from the tables."""
    parser = argparse.ArgumentParser(prog="hpstudy compare", description=__doc__.split("\n")[0])
    parser.add_argument("--tables", required=True, help="the config's results folder")
    parser.add_argument(
        "--assumed-weight-decay", type=float, default=post_runs.ASSUMED_WEIGHT_DECAY
    )
    parser.add_argument("--reproduced-within", type=float, default=REPRODUCED_WITHIN)
    args = parser.parse_args(argv)
    summary, metrics = read_tables(args.tables, "summary.csv", "metrics.csv")
    table = compare_with_post(summary, metrics, args.assumed_weight_decay, args.reproduced_within)
    write_table(table, f"{args.tables}/comparison.csv")
    counts = headline(table)
    atomic_write_json(f"{args.tables}/comparison.json", counts)
    print(
        f"{counts['post_runs_reproduced']} of {counts['post_runs_compared']} post runs reproduced"
    )
    return 0
