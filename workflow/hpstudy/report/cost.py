"""``cost.csv``: what a sweep cost, per study, per search, per claim of the findings, for the
final runs and for the whole sweep: its runs, device-hours and training images seen.

A run's device-seconds are what it recorded (training, evaluation and start-up:
``device_s`` in ``summary.json``); a run trained before they were recorded is priced from its
``metrics.csv`` (every epoch's training and evaluation time; start-up unknown) and marked
``derived``. Images seen are, per epoch, the training images per second times the training
time: the training split's size, so a run stopped early counts only the epochs it ran.
Each run is counted once in the sweep's row, however many studies share it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from hpstudy.core import schema
from hpstudy.core.atomic import atomic_path
from hpstudy.core.errors import HpstudyError
from hpstudy.report.tables import read_table

COST_COLUMNS = ["scope", "name", "study", "runs", "device_hours", "images_seen", "derived_runs"]


def run_costs(summary: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run: ``run_id``, ``device_s``, ``images_seen``, ``derived`` (True: priced
    from its epoch times, the run predates the recorded cost)."""
    runs = summary.drop_duplicates("run_id").set_index("run_id")
    epochs = metrics[metrics["run_id"].isin(runs.index)]
    train_s = epochs.groupby("run_id")["train_time_s"].sum()
    eval_s = epochs.groupby("run_id")["eval_time_s"].sum()
    images = (epochs["train_images_per_s"] * epochs["train_time_s"]).groupby(epochs["run_id"])
    images = images.sum().round()
    recorded = runs["device_s"] if "device_s" in runs else pd.Series(float("nan"), runs.index)
    derived = recorded.isna()
    from_epochs = train_s.add(eval_s, fill_value=0.0).reindex(runs.index)
    device_s = recorded.where(~derived, from_epochs.fillna(runs["total_time_s"]))
    return pd.DataFrame(
        {
            "run_id": runs.index,
            "device_s": device_s.astype(float).to_numpy(),
            "images_seen": images.reindex(runs.index).fillna(0).astype("int64").to_numpy(),
            "derived": derived.to_numpy(bool),
        }
    )


def group_cost(costs: pd.DataFrame, run_ids) -> dict:
    """The runs, device-hours and images seen of some runs (each once)."""
    rows = costs[costs["run_id"].isin(set(run_ids))]
    return {
        "runs": len(rows),
        "device_hours": float(rows["device_s"].sum()) / 3600,
        "images_seen": int(rows["images_seen"].sum()),
        "derived_runs": int(rows["derived"].sum()),
    }


def cost_text(cost: dict) -> str:
    """``9 runs, 0.052 device-hours, 1.2 M images seen`` (what a verdict cost)."""
    hours = cost["device_hours"]
    images = cost["images_seen"]
    seen = f"{images / 1e6:.1f} M" if images >= 1e5 else f"{images:,}"
    runs = cost["runs"]
    return f"{runs} run{'s' * (runs != 1)}, {hours:.3g} device-hours, {seen} images seen"


def verdict_cost(summary: pd.DataFrame, metrics: pd.DataFrame, study: str) -> str:
    """What a verdict on ``study`` cost: every run of the study stands behind it. The hook for
    the findings report (one call per verdict, beside its effect)."""
    costs = run_costs(summary, metrics)
    return cost_text(group_cost(costs, summary.loc[summary["study"] == study, "run_id"]))


def cost_table(grid, searches: dict, claims: list[tuple[str, str]], final=None) -> pd.DataFrame:
    """cost.csv's rows. ``grid``: the config's (summary, metrics) or None; ``searches``: name
    -> (summary, metrics); ``claims``: (claim label, study); ``final``: the final runs'
    (summary, metrics) or None."""
    rows, every = [], []
    if grid is not None:
        costs = run_costs(*grid)
        every.append(costs)
        summary = grid[0]
        for study in dict.fromkeys(summary["study"]):
            ids = summary.loc[summary["study"] == study, "run_id"]
            rows.append({"scope": "study", "name": study, "study": study,
                         **group_cost(costs, ids)})  # fmt: skip
        for label, study in claims:
            ids = summary.loc[summary["study"] == study, "run_id"]
            rows.append({"scope": "claim", "name": label, "study": study,
                         **group_cost(costs, ids)})  # fmt: skip
    for name, tables in searches.items():
        costs = run_costs(*tables)
        every.append(costs)
        rows.append({"scope": "search", "name": name, "study": name,
                     **group_cost(costs, costs["run_id"])})  # fmt: skip
    if final is not None:
        costs = run_costs(*final)
        every.append(costs)
        rows.append({"scope": "final", "name": "final runs", "study": "",
                     **group_cost(costs, costs["run_id"])})  # fmt: skip
    if every:
        costs = pd.concat(every).drop_duplicates("run_id")
        rows.append({"scope": "sweep", "name": "sweep", "study": "",
                     **group_cost(costs, costs["run_id"])})  # fmt: skip
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def run_folder_tables(summary_paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (summary, metrics) of some runs read from their folders (the final runs, which
    no results table holds): each ``summary.json`` with the ``metrics.csv`` beside it."""
    summaries, frames = [], []
    for path in dict.fromkeys(map(Path, summary_paths)):
        record = json.loads(path.read_text())
        record.pop("params", None)
        summaries.append(record)
        frames.append(pd.read_csv(path.with_name("metrics.csv")).assign(run_id=record["run_id"]))
    return pd.DataFrame(summaries), pd.concat(frames, ignore_index=True)


def claims_of(tables: Path, runs_dir, margin: float) -> list[tuple[str, str]]:
    """(claim label, study) of every verdict the findings give on these tables."""
    from hpstudy.report.findings import Context, compute_findings

    summary, metrics = (read_table(tables / n) for n in ("summary.csv", "metrics.csv"))
    ctx = Context(summary, metrics, Path(runs_dir) if runs_dir else None, margin)
    return [(f"{f.rule}: {f.claim}", f.study or "") for f in compute_findings(ctx)]


def main(argv: list[str] | None = None) -> int:
    """``hpstudy cost``: write cost.csv from the results tables."""
    parser = argparse.ArgumentParser(prog="hpstudy cost", description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="*", default=[], help="the config's results folder "
                        "(none for a config of searches alone)")  # fmt: skip
    parser.add_argument("--search-tables", nargs="*", default=[], help="each search's folder")
    parser.add_argument("--final-summaries", nargs="*", default=[],
                        help="the final runs' summary.json files")  # fmt: skip
    parser.add_argument("--runs-dir", help="the run folders (single-seed verdicts)")
    parser.add_argument(
        "--margin",
        type=float,
        default=schema.default("findings", "margin"),
        help="the findings' margin",
    )
    parser.add_argument("--out", required=True, help="cost.csv")
    args = parser.parse_args(argv)
    if len(args.tables) > 1:
        raise HpstudyError(f"--tables takes one results folder, not {len(args.tables)}.")
    grid = claims = None
    if args.tables:
        folder = Path(args.tables[0])
        grid = tuple(read_table(folder / n) for n in ("summary.csv", "metrics.csv"))
        claims = claims_of(folder, args.runs_dir, args.margin)
    searches = {
        Path(f).name: tuple(read_table(Path(f) / n) for n in ("summary.csv", "metrics.csv"))
        for f in args.search_tables
    }
    final = run_folder_tables(args.final_summaries) if args.final_summaries else None
    table = cost_table(grid, searches, claims or [], final)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    for row in table[table["scope"] != "claim"].itertuples():
        print(f"{row.scope} {row.name}: {cost_text(row._asdict())}")
    return 0
