"""Tidy tables from the finished runs: ``results/metrics.csv``, ``summary.csv|json`` and
``seed_summary.csv``.

Each run folder (``results/runs/<run_id>/``) holds ``params.json``, ``metrics.csv`` and
``summary.json`` (see the training step). This module reads them and writes

- ``metrics.csv``: one row per run x epoch, every setting of the run as a column next to every
  per-epoch metric, built by one :func:`pandas.concat`;
- ``summary.csv`` / ``summary.json``: one row per run (final and best accuracy, losses, timing,
  divergence, device, size);
- ``seed_summary.csv``: mean and standard deviation across seeds for each setting (always
  written; the standard deviation is NaN when a setting ran with one seed).

Two names are changed on the way because they would collide: the per-epoch learning rate column
of a run's ``metrics.csv`` becomes ``epoch_lr`` (``lr`` is the configured rate), and the
``device`` setting (what was asked for, e.g. ``auto``) becomes ``requested_device`` (``device``
is the device the run actually used, from ``summary.json``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.atomic import atomic_path, atomic_write_json
from hpstudy.config import train_settings_schema
from hpstudy.errors import HpstudyError
from hpstudy.run_files import METRIC_COLUMNS
from hpstudy.sweep import format_value

# settings in the order of the config schema (the one list of them); other params.json keys
# follow, sorted
SETTING_COLUMNS: list[str] = [
    "run_id",
    "experiment",
    "param",
    "value",
    "seed",
    *(
        "requested_device" if key == "device" else key
        for key in train_settings_schema()["properties"]
    ),
    "dataset",
    "image_size",
    "num_classes",
]
# run-file metric columns, in the order train writes them
EPOCH_COLUMNS: list[str] = list(METRIC_COLUMNS)
RENAMED_SETTINGS = {"device": "requested_device"}
RENAMED_EPOCH_COLUMNS = {"lr": "epoch_lr"}
# per-run numbers that seed_summary.csv averages across seeds
SEED_STAT_COLUMNS: list[str] = [
    "final_test_acc",
    "best_test_acc",
    "best_epoch",
    "final_train_loss",
    "final_test_loss",
    "min_test_loss",
    "min_test_loss_epoch",
    "mean_epoch_time_s",
    "peak_memory_mb",
]
# what summarize_run adds to a run's settings; every other summary column is a setting
RUN_STAT_COLUMNS: list[str] = [
    *SEED_STAT_COLUMNS,
    "epochs_completed",
    "total_time_s",
    "diverged",
    "diverged_epoch",
    "device",
    "device_name",
    "param_count",
    "torch_version",
    "git_revision",
]
RUN_FILES = ("params.json", "metrics.csv", "summary.json")


def find_run_dirs(runs_dir: str | Path, run_ids: Sequence[str] | None = None) -> list[Path]:
    """The run folders to aggregate: ``runs_dir/<id>`` for each id, or every folder below
    ``runs_dir`` holding a ``summary.json`` when ``run_ids`` is None (sorted by path)."""
    runs_dir = Path(runs_dir)
    if run_ids:
        return [runs_dir / run_id for run_id in run_ids]
    found = sorted(p.parent for p in runs_dir.rglob("summary.json"))
    if not found:
        raise HpstudyError(
            f"No finished run found under {runs_dir} (no summary.json below it). Run the "
            "training step first (`snakemake` trains every run of the config), or pass "
            "--runs-dir pointing at the folder that holds the run folders."
        )
    return found


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame, dict]:
    """Read one run folder: ``(params, per-epoch metrics, summary)``; errors name the file."""
    run_dir = Path(run_dir)
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise HpstudyError(
            f"Run folder {run_dir} lacks {', '.join(missing)}: the run has not finished. "
            "Train it first (`snakemake` reruns unfinished runs), or leave it out of --run-ids."
        )
    params = _read_json(run_dir / "params.json")
    summary = _read_json(run_dir / "summary.json")
    epochs = pd.read_csv(run_dir / "metrics.csv")
    absent = [c for c in ("epoch", "train_loss", "test_loss", "test_acc") if c not in epochs]
    if absent:
        raise HpstudyError(
            f"{run_dir / 'metrics.csv'} lacks the column(s) {', '.join(absent)}; it was not "
            "written by this version of the training step. Delete the run folder and retrain it."
        )
    return params, epochs, summary


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise HpstudyError(
            f"{path} is not valid JSON ({err}); the run was interrupted while writing it. "
            "Delete the run folder and train the run again."
        ) from err


def settings_columns(params: dict) -> dict:
    """A run's settings as flat table cells: contract order first, kernel width as ``5-5-7``,
    ``device`` renamed ``requested_device``, nested values as JSON text."""
    flat = {}
    for key, value in params.items():
        key = RENAMED_SETTINGS.get(key, key)
        if key == "kernel_width":
            value = format_value(value)
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        flat[key] = value
    ordered = {key: flat.pop(key) for key in SETTING_COLUMNS if key in flat}
    ordered.update(sorted(flat.items()))
    return ordered


def build_metrics_table(runs: Iterable[tuple[dict, pd.DataFrame, dict]]) -> pd.DataFrame:
    """One row per run x epoch: settings columns, then the run's per-epoch metrics.

    Built with a single :func:`pandas.concat` over the runs' frames."""
    frames = []
    for params, epochs, summary in runs:
        frame = epochs.rename(columns=RENAMED_EPOCH_COLUMNS)
        cells = settings_columns(params)
        cells.setdefault("run_id", summary.get("run_id"))
        cells.setdefault("experiment", summary.get("experiment"))
        # insert settings in front, keeping their order
        settings = pd.DataFrame({k: [v] * len(frame) for k, v in cells.items()}, index=frame.index)
        frames.append(pd.concat([settings, frame], axis=1))
    if not frames:
        raise HpstudyError("No runs were given to aggregate; pass --run-ids or --run-dirs.")
    return pd.concat(frames, ignore_index=True, sort=False)


def summarize_run(params: dict, epochs: pd.DataFrame, summary: dict) -> dict:
    """One summary row: the settings plus numbers computed from the run's metrics.csv
    (final/best accuracy, min test loss and its epoch, mean epoch time) and the run-level facts
    of summary.json (divergence, device, parameter count, peak memory)."""
    row = settings_columns(params)
    row.setdefault("run_id", summary.get("run_id"))
    row.setdefault("experiment", summary.get("experiment"))
    acc = epochs["test_acc"].astype(float)
    test_loss = epochs["test_loss"].astype(float)
    train_loss = epochs["train_loss"].astype(float)
    last = epochs.iloc[-1] if len(epochs) else None
    best_idx = acc.idxmax() if acc.notna().any() else None
    min_idx = test_loss.idxmin() if test_loss.notna().any() else None
    diverged = bool(summary.get("diverged", False)) or not np.isfinite(train_loss).all()
    diverged_epoch = summary.get("diverged_epoch")
    if diverged and diverged_epoch is None:
        bad = epochs.loc[~np.isfinite(train_loss), "epoch"]
        diverged_epoch = int(bad.iloc[0]) if len(bad) else None
    peak = epochs["peak_memory_mb"].max() if "peak_memory_mb" in epochs else math.nan
    row.update(
        epochs_completed=int(len(epochs)),
        final_test_acc=float(last["test_acc"]) if last is not None else math.nan,
        best_test_acc=float(acc.max()) if best_idx is not None else math.nan,
        best_epoch=int(epochs.loc[best_idx, "epoch"]) if best_idx is not None else None,
        final_train_loss=float(last["train_loss"]) if last is not None else math.nan,
        final_test_loss=float(last["test_loss"]) if last is not None else math.nan,
        min_test_loss=float(test_loss.min()) if min_idx is not None else math.nan,
        min_test_loss_epoch=int(epochs.loc[min_idx, "epoch"]) if min_idx is not None else None,
        mean_epoch_time_s=_mean_or(epochs, "epoch_time_s", summary.get("mean_epoch_time_s")),
        total_time_s=summary.get("total_time_s", math.nan),
        diverged=diverged,
        diverged_epoch=diverged_epoch,
        device=summary.get("device"),
        device_name=summary.get("device_name"),
        param_count=summary.get("param_count"),
        peak_memory_mb=summary.get("peak_memory_mb", peak),
        torch_version=summary.get("torch_version"),
        git_revision=summary.get("git_revision"),
    )
    return row


def _mean_or(epochs: pd.DataFrame, column: str, fallback: object) -> float:
    if column in epochs and epochs[column].notna().any():
        return float(epochs[column].mean())
    return math.nan if fallback is None else float(fallback)


def build_summary_table(runs: Iterable[tuple[dict, pd.DataFrame, dict]]) -> pd.DataFrame:
    """One row per run (see :func:`summarize_run`); epoch numbers stay integers (nullable)."""
    table = pd.DataFrame([summarize_run(*run) for run in runs])
    epoch_columns = ["best_epoch", "min_test_loss_epoch", "diverged_epoch"]
    return table.astype({c: "Int64" for c in epoch_columns if c in table})


def build_seed_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1) across seeds for every setting.

    A setting is every settings column except ``run_id`` and ``seed``; with one seed the
    standard deviation is NaN. Adds ``n_seeds``, ``seeds`` and ``n_diverged``."""
    keys = [c for c in summary if c not in RUN_STAT_COLUMNS and c not in ("run_id", "seed")]
    stats = [c for c in SEED_STAT_COLUMNS if c in summary]
    grouped = summary.groupby(keys, dropna=False, sort=False)
    numbers = grouped[stats].agg(["mean", "std"])
    numbers.columns = [f"{name}_{stat}" for name, stat in numbers.columns]
    counts = grouped.agg(
        n_seeds=("run_id", "size"),
        seeds=("seed", lambda s: " ".join(str(v) for v in s)),
        n_diverged=("diverged", "sum"),
    )
    return pd.concat([counts, numbers], axis=1).reset_index()


def write_results(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Aggregate ``run_dirs`` into ``out_dir``; returns the written paths by name."""
    runs = [load_run(d) for d in run_dirs]
    out_dir = Path(out_dir)
    metrics = build_metrics_table(runs)
    summary = build_summary_table(runs)
    seed_summary = build_seed_summary(summary)
    paths = {
        "metrics": out_dir / "metrics.csv",
        "summary": out_dir / "summary.csv",
        "summary_json": out_dir / "summary.json",
        "seed_summary": out_dir / "seed_summary.csv",
    }
    for name in ("metrics", "summary", "seed_summary"):
        table = {"metrics": metrics, "summary": summary, "seed_summary": seed_summary}[name]
        with atomic_path(paths[name]) as tmp:
            table.to_csv(tmp, index=False)
    records = json.loads(summary.to_json(orient="records"))
    atomic_write_json(paths["summary_json"], records)
    return paths


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by this module (``metrics.csv``, ``summary.csv``, ...) with the
    kernel width kept as text; a missing file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise HpstudyError(
            f"{path} does not exist. Run `hpstudy aggregate` (or `snakemake`) first; it writes "
            "the results tables from the finished runs."
        )
    return pd.read_csv(path, dtype={"kernel_width": str, "value": str})


def main(argv: list[str] | None = None) -> int:
    """``hpstudy aggregate``: write the results tables from finished run folders."""
    parser = argparse.ArgumentParser(prog="hpstudy aggregate", description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", default="results/runs", help="folder holding run folders")
    parser.add_argument("--run-ids", nargs="*", help="run ids below --runs-dir (default: all)")
    parser.add_argument("--run-dirs", nargs="*", help="run folders, instead of --run-ids")
    parser.add_argument("--out-dir", default="results", help="where the tables go")
    args = parser.parse_args(argv)
    run_dirs = args.run_dirs or find_run_dirs(args.runs_dir, args.run_ids)
    paths = write_results(run_dirs, args.out_dir)
    print(f"aggregated {len(run_dirs)} runs into " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
