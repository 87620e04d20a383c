"""Tidy tables from the finished runs of one config, and its DVC headline.

Each run folder holds ``summary.json`` (one record with every per-run number and the run's
params), ``metrics.csv`` and ``params.json``; the membership file (written where the sweep is
planned) says which studies hold which runs. This module only flattens them:

- ``metrics.csv``: one row per run x epoch: the run's settings beside its per-epoch metrics
  (the per-epoch learning rate is ``epoch_lr``: ``lr`` is the configured rate);
- ``summary.csv`` / ``summary.json``: one row per study x run (with each run's final test
  balanced accuracy and macro-F1, computed here from its ``predictions.npz``);
- ``seed_summary.csv``: per study and setting, the mean, standard deviation and count of the
  per-run numbers across seeds;
- ``headline.json``: the sweep at a glance for ``dvc metrics show`` / ``dvc exp show``: per
  study its best setting and that setting's mean final test accuracy, and the runs finished
  and diverged.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.core import schema
from hpstudy.core.atomic import atomic_write_json
from hpstudy.core.errors import HpstudyError
from hpstudy.core.paths import AGGREGATE_FILES, PREDICTIONS, RUN_OUTPUTS
from hpstudy.core.run_record import METRIC_COLUMNS, instability
from hpstudy.report.class_metrics import prediction_scores
from hpstudy.report.tables import (
    RUN_COLUMNS,
    setting_columns,
    settings_cells,
    write_records,
    write_table,
)

RENAMED_EPOCH_COLUMNS = {"lr": "epoch_lr"}
# per-run numbers that seed_summary.csv describes across seeds
SEED_STAT_COLUMNS = [
    "final_test_acc", "best_test_acc", "best_epoch", "final_train_loss", "final_test_loss",
    "min_test_loss", "min_test_loss_epoch", "mean_epoch_time_s", "peak_memory_mb",
    "param_count", "conv_param_count", "fc_param_count",
    "final_test_balanced_acc", "final_test_macro_f1",
]  # fmt: skip


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """Read one finished run folder: ``(summary record, per-epoch metrics)``."""
    run_dir = Path(run_dir)
    missing = [name for name in RUN_OUTPUTS if not (run_dir / name).is_file()]
    if missing:
        raise HpstudyError(
            f"Run folder {run_dir} lacks {', '.join(missing)}: the run has not finished. "
            "Train it first (`snakemake` reruns unfinished runs)."
        )
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise HpstudyError(
            f"{run_dir / 'summary.json'} is not valid JSON ({err}). Delete the run folder and "
            "run snakemake again to retrain it."
        ) from err
    if "params" not in summary:
        raise HpstudyError(
            f"{run_dir / 'summary.json'} was written by an older hpstudy (no `params`). "
            "Run snakemake again: it retrains the run."
        )
    # scores that weigh every class alike, from the saved test predictions: older runs too
    summary = {**summary, **prediction_scores(run_dir)}
    return summary, pd.read_csv(run_dir / "metrics.csv")


def run_cells(summary: dict) -> dict:
    """A run's identifying cells: id, variant, name, seed, settings, data."""
    params = summary["params"]
    data = params["data"]
    # a run trained before a setting existed ran at its default (class_weight, in_memory, ...)
    settings, defaults = params["settings"], schema.train_defaults()
    return {
        **{key: params[key] for key in RUN_COLUMNS},
        **settings_cells({k: settings.get(k, defaults[k]) for k in setting_columns()}),
        "dataset": data["name"], "image_size": data["image_size"],
        "num_classes": data["num_classes"], "test_count": data.get("test_count"),
    }  # fmt: skip


def run_checks(run_dir: str | Path, summary: dict, epochs: pd.DataFrame) -> dict:
    """What the tables derive from a finished run's files, so that runs trained before a check
    existed are judged alike: the validation split's size, chance (the largest class's share
    of the test split), how many classes the final predictions name, whether the run collapsed
    to one class, and why it is unstable (:func:`hpstudy.core.run_record.instability`; empty when
    it is not)."""
    data = summary["params"]["data"]
    chance, predicted = 1 / data["num_classes"], None
    path = Path(run_dir) / PREDICTIONS
    if path.is_file():
        with np.load(path) as saved:
            labels, preds = saved["label"], saved["pred"]
        if len(labels):
            chance = float(np.bincount(labels.astype(int)).max() / len(labels))
            predicted = int(len(np.unique(preds)))
    rows = epochs.sort_values("epoch").to_dict("records")
    reason = instability(rows, data["num_classes"], data.get("test_count"), predicted)
    return {
        "val_count": data.get("val_count"), "chance": chance, "predicted_classes": predicted,
        "collapsed": predicted == 1 and data["num_classes"] > 1, "unstable": reason or "",
    }  # fmt: skip


def summary_row(summary: dict) -> dict:
    """A run's numbers: every key of summary.json except its params."""
    return {key: value for key, value in summary.items() if key not in ("run_id", "params")}


def missing_columns(epochs: pd.DataFrame) -> list[str]:
    """The metrics.csv columns an older run's file lacks."""
    return [column for column in METRIC_COLUMNS if column not in epochs.columns]


def build_metrics_table(runs: dict[str, tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """One row per run x epoch, each run once; one :func:`pandas.concat`."""
    frames = []
    for summary, epochs in runs.values():
        cells = run_cells(summary)
        # a run trained before a column existed (e.g. balanced accuracy) has it empty
        frame = epochs.reindex(columns=[*epochs.columns, *missing_columns(epochs)])
        frame = frame.rename(columns=RENAMED_EPOCH_COLUMNS)
        front = pd.DataFrame({k: [v] * len(frame) for k, v in cells.items()}, index=frame.index)
        frames.append(pd.concat([front, frame], axis=1))
    return pd.concat(frames, ignore_index=True, sort=False)


def build_summary_table(runs: dict, membership: dict, checks: dict | None = None) -> pd.DataFrame:
    """One row per study x run, in config order (with each run's ``checks``, by run id)."""
    rows = []
    for study, spec in membership.items():
        for point in spec["points"]:
            summary, _ = runs[point["run_id"]]
            rows.append(
                {
                    "study": study,
                    "study_params": ",".join(spec["params"]),
                    **run_cells(summary),
                    **summary_row(summary),
                    **(checks or {}).get(point["run_id"], {}),
                }  # fmt: skip
            )
    table = pd.DataFrame(rows).drop_duplicates(["study", "run_id"])
    epochs = ["best_epoch", "min_test_loss_epoch", "diverged_epoch"]
    return table.astype({c: "Int64" for c in epochs if c in table})


def setting_keys(summary: pd.DataFrame) -> list[str]:
    """The columns that tell a study's settings apart (everything but the run and seed)."""
    return ["study", "study_params", "name", *(c for c in setting_columns() if c in summary)]


def build_seed_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per study and setting: seed count and list, diverged runs, and the mean and sample
    standard deviation (ddof 1; empty with one seed) of each per-run number."""
    keys = setting_keys(summary)
    grouped = summary.groupby(keys, dropna=False, sort=False)
    stats = [c for c in SEED_STAT_COLUMNS if c in summary]
    numbers = grouped[stats].agg(["mean", "std"])
    numbers.columns = [f"{name}_{stat}" for name, stat in numbers.columns]
    counts = grouped.agg(
        n_seeds=("run_id", "size"),
        seeds=("seed", lambda s: " ".join(str(v) for v in s)),
        n_diverged=("diverged", "sum"),
    )
    return pd.concat([counts, numbers], axis=1).reset_index()


def _scalar(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def headline(summary: pd.DataFrame, seed_summary: pd.DataFrame) -> dict:
    """The sweep at a glance: a handful of numbers for ``dvc exp show``."""
    runs = summary.drop_duplicates("run_id")
    out = {
        "runs": int(len(runs)),
        "runs_diverged": int(runs["diverged"].astype(bool).sum()),
        "studies": {},
    }
    for study, rows in seed_summary.groupby("study", sort=False):
        best = rows.loc[rows["final_test_acc_mean"].idxmax()]
        entry = {"best_final_test_acc": _scalar(best["final_test_acc_mean"])}
        for key in str(best["study_params"]).split(","):
            entry[f"best_{key}"] = _scalar(best[key])
        out["studies"][study] = entry
    return out


def write_results(runs_dir: str | Path, membership: dict, out_dir: str | Path) -> dict[str, Path]:
    """Aggregate the runs named in ``membership`` into ``out_dir``; returns the written paths."""
    run_ids = list(dict.fromkeys(p["run_id"] for s in membership.values() for p in s["points"]))
    if not run_ids:
        raise HpstudyError("No runs to aggregate: the config's studies name none.")
    runs = {rid: load_run(Path(runs_dir) / rid) for rid in run_ids}
    out_dir = Path(out_dir)
    checks = {rid: run_checks(Path(runs_dir) / rid, *runs[rid]) for rid in run_ids}
    summary = build_summary_table(runs, membership, checks)
    seed_summary = build_seed_summary(summary)
    paths = {name: out_dir / name for name in AGGREGATE_FILES}
    write_table(build_metrics_table(runs), paths["metrics.csv"])
    write_table(summary, paths["summary.csv"])
    write_records(summary, paths["summary.json"])
    write_table(seed_summary, paths["seed_summary.csv"])
    atomic_write_json(paths["headline.json"], headline(summary, seed_summary))
    return paths


def main(argv: list[str] | None = None) -> int:
    """``hpstudy aggregate``: write the results tables from finished run folders."""
    parser = argparse.ArgumentParser(prog="hpstudy aggregate", description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", required=True, help="the folder holding the run folders")
    parser.add_argument("--membership", required=True, help="which studies hold which runs")
    parser.add_argument("--out-dir", required=True, help="this config's results folder")
    args = parser.parse_args(argv)
    try:
        membership = json.loads(Path(args.membership).read_text())
    except (OSError, ValueError) as err:
        raise HpstudyError(
            f"Cannot read the study membership file {args.membership} ({err}); snakemake "
            "writes it when it plans the sweep: run the step through snakemake."
        ) from err
    paths = write_results(args.runs_dir, membership, args.out_dir)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
