"""``comparison.csv``: our runs beside the post's own runs with the same settings.

One row per pair of our run and a post run it matches (:mod:`hpstudy.reference` holds the
rule); a run that several studies share is compared once. Differences are ours minus the
post's; accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import argparse

import pandas as pd

from hpstudy import reference
from hpstudy.tables import read_table, settings_of, write_table

COMPARISON_COLUMNS = [
    "run_id", "name", "seed", "post_run", "post_experiment", "model", "pretrained", "lr",
    "batch_size", "weight_decay", "post_weight_decay", "epochs", "final_test_acc",
    "post_final_test_acc", "final_test_acc_diff", "best_test_acc", "post_best_test_acc",
    "best_test_acc_diff", "mean_epoch_time_s", "post_mean_epoch_time_s",
]  # fmt: skip


def compare_with_post(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (our run, matching post run); empty with the header when nothing matches."""
    rows = []
    for _, run in summary.drop_duplicates("run_id").iterrows():
        if not reference.is_post_data(run["dataset"], run["image_size"], run["num_classes"]):
            continue
        for post in reference.matching_post_runs(settings_of(run)):
            rows.append(
                {
                    **{k: run[k] for k in COMPARISON_COLUMNS if k in run},
                    "post_run": post["run"],
                    "post_experiment": post["experiment"],
                    "post_weight_decay": post["weight_decay"],
                    "post_final_test_acc": post["final_test_acc"],
                    "final_test_acc_diff": run["final_test_acc"] - post["final_test_acc"],
                    "post_best_test_acc": post["best_test_acc"],
                    "best_test_acc_diff": run["best_test_acc"] - post["best_test_acc"],
                    "post_mean_epoch_time_s": post["mean_epoch_time_s"],
                }
            )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def main(argv: list[str] | None = None) -> int:
    """``hpstudy compare``: write ``comparison.csv`` from ``summary.csv``."""
    parser = argparse.ArgumentParser(prog="hpstudy compare", description=__doc__.split("\n")[0])
    parser.add_argument("--summary", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    table = compare_with_post(read_table(args.summary))
    write_table(table, args.out)
    print(f"{table['run_id'].nunique()} of our runs match {table['post_run'].nunique()} post runs")
    return 0
