"""Pick each study's winner honestly, and measure it once on the test set.

The winner is the setting with the best mean over seeds of a *validation* metric
(``selection.metric``: ``val_acc`` highest or ``val_loss`` lowest, at the ``final`` epoch or the
``best`` one). ``best.yaml`` says, per study, the winner with its 95 % interval and seeds, the
runner-up, and whether the two are separable (the 95 % interval of the winner's lead lies
above twice the evaluation split's binomial error: ``separable_margin``, 0 for a loss). A winner
at or below chance (the largest class's share of the test split) says so
(``at_or_below_chance``), as do ``final.csv`` and the findings; ``collapsed_runs`` counts its
runs that predict one class only. Without validation numbers selection refuses, unless
``selection.on_test: true``: then it selects on the test split and every output says so.

A search (:mod:`hpstudy.tuning.search`) takes part as one more study: its trials are its points.

``final`` retrains each winner (``final.seeds``, on ``final.train_on``, for the selected number
of epochs, early stopping off) and evaluates it on the test split once: ``final.csv`` holds the
number a paper would report. Those runs did not exist when the workflow was planned: ``hpstudy
select`` writes them to an added-runs file (:mod:`hpstudy.sweep.added_runs`) and ``hpstudy
final`` tabulates them once trained.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hpstudy.core import run_record, stats
from hpstudy.core.atomic import atomic_write_text
from hpstudy.core.errors import HpstudyError
from hpstudy.core.formatting import format_value, pct, pct_interval, sort_key
from hpstudy.core.metrics import column as metric_column
from hpstudy.core.metrics import maximise, on_test
from hpstudy.report import looks
from hpstudy.report.aggregate import run_checks
from hpstudy.report.tables import read_tables, study_params, write_table
from hpstudy.sweep import added_runs
from hpstudy.tuning.class_score_runs import refuse_predating

ON_TEST = "selected on the test set"
ON_VAL = "selected on the validation split"
NO_VALIDATION = (
    "selection picks each study's winner on validation numbers, and {what} has none (the data "
    "has no validation split, or the runs train on train+val). Set `dataset.val_fraction` "
    "(e.g. 0.2) to hold out part of the training images, bring a val/ folder with the data, "
    "or, knowing that a winner chosen on the test set makes its test number optimistic, set "
    "`selection.on_test: true` (every output then says so)."
)


def selection_column(selection: dict, has_val: bool, what: str) -> tuple[str, bool, str]:
    """The summary column to select on, whether higher is better, and the metric's name."""
    metric, epoch = selection.get("metric", "val_acc"), selection.get("epoch", "final")
    if not has_val:
        if not selection.get("on_test"):
            raise HpstudyError(NO_VALIDATION.format(what=what))
        metric = on_test(metric)
    return metric_column(metric, epoch), maximise(metric), metric


def describe(values: tuple, keys: list[str], rows: pd.DataFrame, column: str) -> dict:
    """One candidate: its values, the mean of the metric over seeds and its 95 % interval."""
    scores = rows[column].astype(float).to_numpy()
    scores = scores[np.isfinite(scores)]
    mean = float(scores.mean()) if len(scores) else math.nan
    low = high = mean
    if len(scores) >= 2:
        interval = stats.one_sample(scores, 0.0)
        low, high = interval.low, interval.high
    return {
        "values": {k: _plain(v) for k, v in zip(keys, values, strict=True)},
        "run_name": str(rows["name"].iloc[0]),
        "mean": mean, "low": low, "high": high, "seeds": int(len(scores)),
        "scores": [float(s) for s in scores],
    }  # fmt: skip


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def selected_epochs(metrics: pd.DataFrame, rows: pd.DataFrame, metric: str, higher: bool) -> int:
    """The epoch at which the winner's mean curve (over seeds) of ``metric`` is best."""
    curves = metrics[metrics["run_id"].isin(rows["run_id"])].groupby("epoch")[metric].mean()
    curves = curves.dropna()
    if curves.empty:
        return int(rows["epochs"].iloc[0])
    return int(curves.idxmax() if higher else curves.idxmin())


def split_margin(rows: pd.DataFrame, accuracy: float, metric: str) -> float:
    """Twice the binomial error of an accuracy measured on the evaluation split (the
    validation split, or the test split when selecting on it); 0 for a loss."""
    column = "test_count" if metric.startswith("test_") else "val_count"
    if not metric.endswith("_acc") or column not in rows:
        return 0.0
    n = pd.to_numeric(rows[column], errors="coerce").dropna()
    if n.empty or n.iloc[0] <= 0 or not math.isfinite(accuracy):
        return 0.0
    return 2 * stats.binomial_se(accuracy, int(n.iloc[0]))


def chance_flags(rows: pd.DataFrame, mean: float, metric: str) -> dict:
    """Chance (the largest class's share of the test split, the estimate for the validation
    split too), whether the winner is at or below it, and how many of its runs predict one
    class only."""
    share = float(rows["chance"].max()) if "chance" in rows else 1 / rows["num_classes"].iloc[0]
    collapsed = int(rows["collapsed"].astype(bool).sum()) if "collapsed" in rows else 0
    at_chance = bool(metric.endswith("_acc") and mean <= share)
    return {"chance": float(share), "at_or_below_chance": at_chance, "collapsed_runs": collapsed}


def select_study(
    rows, metrics, column, higher, metric, epoch_rule, level=stats.LEVEL
) -> tuple[dict, str]:
    """One study's winner, runner-up and whether they are separable; and a run of the
    winner (whose settings the final runs take)."""
    keys = study_params(rows.iloc[0])
    groups = sorted(
        rows.groupby(keys, sort=False, dropna=False), key=lambda g: [sort_key(v) for v in g[0]]
    )
    candidates = [(describe(v, keys, g, column), g) for v, g in groups]
    candidates = [c for c in candidates if math.isfinite(c[0]["mean"])]
    if not candidates:
        raise HpstudyError(
            f"No run of study {rows['study'].iloc[0]!r} has a finite {column} to select on: "
            "every run diverged or none was evaluated. Check the study's runs in summary.csv."
        )
    candidates.sort(key=lambda c: c[0]["mean"], reverse=higher)  # stable: config order on ties
    (winner, winner_rows), runner = candidates[0], candidates[1][0] if len(candidates) > 1 else None
    chosen = {"winner": winner, "runner_up": runner, "separable": None, "difference": None}
    margin = split_margin(winner_rows, winner["mean"], metric)
    chosen["separable_margin"] = margin
    if runner and winner["seeds"] >= 2 and runner["seeds"] >= 2:
        diff = stats.welch(winner["scores"], runner["scores"], level)
        gain = (diff.low, diff.high) if higher else (-diff.high, -diff.low)
        chosen["difference"] = {"effect": diff.effect, "low": diff.low, "high": diff.high}
        # the lead's interval clears twice the evaluation split's binomial error (zero for a
        # loss, which has none): a lead of two images on 49 is no lead
        chosen["separable"] = bool(gain[0] > margin)
    chosen.update(chance_flags(winner_rows, winner["mean"], metric))
    if epoch_rule == "best":
        chosen["epochs"] = selected_epochs(metrics, winner_rows, metric, higher)
    else:
        chosen["epochs"] = int(winner_rows["epochs"].iloc[0])
    return chosen, str(winner_rows["run_id"].iloc[0])


def select(
    summary: pd.DataFrame, metrics: pd.DataFrame, selection: dict, level: float = stats.LEVEL
) -> tuple[dict, dict]:
    """``best.yaml``'s content (per study: the winner, its interval, the runner-up), and per
    study the run id of one of the winner's runs (intervals of the lead at ``level``)."""
    has_val = "final_val_acc" in summary and bool(summary["final_val_acc"].notna().any())
    column, higher, metric = selection_column(selection, has_val, "this config's sweep")
    refuse_predating(summary, column, "selection.metric")
    on_test = metric.startswith("test_")
    best = {
        "note": ON_TEST if on_test else ON_VAL,
        "metric": metric, "epoch": selection.get("epoch", "final"), "column": column,
        "selected_on": "test" if on_test else "validation", "studies": {},
    }  # fmt: skip
    winners = {}
    for study, rows in summary.groupby("study", sort=False):
        if not on_test and not rows[column].notna().any():
            raise HpstudyError(NO_VALIDATION.format(what=f"study {study!r}"))
        best["studies"][study], winners[study] = select_study(
            rows, metrics, column, higher, metric, best["epoch"], level
        )
    return best, winners


def final_runs(best: dict, winner_settings: dict[str, dict], final: dict) -> list[dict]:
    """The final runs: each winner retrained on ``final.train_on`` for the selected number of
    epochs, early stopping off, keeping no checkpoint, once per final seed."""
    runs = []
    for study, chosen in best["studies"].items():
        settings = {
            **winner_settings[study],
            "epochs": chosen["epochs"],
            "train_on": final.get("train_on", "train+val"),
            "early_stopping": None,
            "keep_checkpoint": False,  # a halving search's winner kept its; a final run needs none
        }
        runs += [
            {"study": study, "settings": settings, "seed": seed}
            for seed in final.get("seeds", [0, 1, 2])
        ]
    return runs


def write_best(best: dict, path: str | Path) -> None:
    """``best.yaml``, for people: what it was selected on first, then each study's choice."""
    readable = json.loads(json.dumps(best))
    for chosen in readable["studies"].values():
        for key in ("winner", "runner_up"):
            if chosen.get(key):
                chosen[key].pop("scores", None)
    header = (
        f"# {best['note']}: per study, the setting with the best mean {best['metric']} "
        f"({best['epoch']} epoch) over seeds, with its 95 % interval\n"
    )
    for study, chosen in best["studies"].items():
        if chosen.get("at_or_below_chance"):
            header += (
                f"# WARNING: the winner of {study} is at or below chance "
                f"({pct(chosen['chance'])}, the largest class's share): it learned nothing\n"
            )
    atomic_write_text(path, header + yaml.safe_dump(readable, sort_keys=False))


def final_table(best: dict, finals: list[tuple[str, dict]]) -> pd.DataFrame:
    """``final.csv``: per study, the winner's test accuracy over the final runs' seeds, with
    its 95 % interval. ``finals`` holds (study, summary.json) of each final run."""
    rows = []
    for study, chosen in best["studies"].items():
        done = [summary for name, summary in finals if name == study]
        accs = np.array([_accuracy(s) for s in done], dtype=float)
        mean = float(accs.mean()) if len(accs) else math.nan
        low = high = mean
        if len(accs) >= 2:
            interval = stats.one_sample(accs, 0.0)
            low, high = interval.low, interval.high
        settings = done[0]["params"]["settings"] if done else {}
        checks = [s.get("checks", {}) for s in done]
        share = max((c["chance"] for c in checks if "chance" in c), default=math.nan)
        rows.append({
            "study": study,
            "winner": ", ".join(
                f"{k}={format_value(v)}" for k, v in chosen["winner"]["values"].items()
            ),
            "selected_on": best["selected_on"], "note": best["note"], "metric": best["metric"],
            "selection_mean": chosen["winner"]["mean"], "separable": chosen["separable"],
            "epochs": chosen["epochs"], "train_on": settings.get("train_on"),
            "seeds": len(accs), "test_acc_mean": mean, "test_acc_low": low,
            "test_acc_high": high, "diverged": sum(bool(s["diverged"]) for s in done),
            "run_name": done[0]["params"]["name"] if done else None,
            "chance": share, "at_or_below_chance": bool(mean <= share),
            "collapsed": sum(bool(c.get("collapsed")) for c in checks),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _accuracy(summary: dict) -> float:
    """A final run's test accuracy; a diverged run counts at chance, as everywhere."""
    classes = summary["params"]["data"]["num_classes"]
    return run_record.at_chance(summary["final_test_acc"], summary["diverged"], classes)


def with_checks(path: Path) -> dict:
    """A final run's summary.json, with what the tables derive from its files (chance, a
    collapse to one class) under ``checks``."""
    summary = json.loads(path.read_text())
    summary["checks"] = run_checks(path.parent, summary, pd.read_csv(path.parent / "metrics.csv"))
    return summary


def main(argv: list[str] | None = None) -> int:
    """``hpstudy select``: each study's winner (best.yaml) and, with ``--final``, the runs
    that retrain it (an added-runs file)."""
    parser = argparse.ArgumentParser(prog="hpstudy select", description=main.__doc__)
    parser.add_argument("--tables", help="the config's results folder (its grid's tables)")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--selection", default="{}", help="the config's selection block (JSON)")
    parser.add_argument("--final", help="the config's final block (JSON)")
    parser.add_argument("--added-out", help="the added-runs file for the final runs")
    parser.add_argument(
        "--search-tables",
        nargs="*",
        action="extend",
        default=[],
        help="each search's folder: its trials compete as one more study",
    )
    parser.add_argument("--looks", nargs="*", default=[], help="selection.sequential's looks")
    parser.add_argument("--membership", help="the config's study membership (with --looks)")
    parser.add_argument("--out", required=True, help="best.yaml")
    args = parser.parse_args(argv)
    folders = [args.tables] * bool(args.tables) + args.search_tables
    if not folders:
        parser.error("give the grid results (--tables), a search's (--search-tables) or both")
    frames = [read_tables(Path(f), "summary.csv", "metrics.csv") for f in folders]
    summary = pd.concat([f[0] for f in frames], ignore_index=True)
    metrics = pd.concat([f[1] for f in frames], ignore_index=True)
    claims = {}
    if args.looks:  # selection.sequential: each study on the seeds its looks stopped at
        summary, metrics, claims = looks.settled_tables(args.runs_dir, args.membership, args.looks)
    best, winners = select(summary, metrics, json.loads(args.selection))
    for study, chosen in best["studies"].items():
        state = claims.get(f"{study}/{looks.SEPARABLE}")
        if state:  # decided at the look's own level: the sequential verdict is the one
            chosen["separable"] = state["verdict"] == stats.HOLDS
            chosen["sequential"] = state["looks"]
    if args.final is not None:
        if not args.added_out:
            parser.error("--final needs --added-out")
        settings = {
            study: json.loads((Path(args.runs_dir) / rid / "params.json").read_text())["settings"]
            for study, rid in winners.items()
        }
        added_runs.write(
            args.added_out, "final", final_runs(best, settings, json.loads(args.final))
        )
    write_best(best, args.out)
    for study, chosen in best["studies"].items():
        values = ", ".join(f"{k}={format_value(v)}" for k, v in chosen["winner"]["values"].items())
        print(f"{study}: {values} ({best['note']})")
    return 0


def final_main(argv: list[str] | None = None) -> int:
    """``hpstudy final``: final.csv from the final runs' summaries."""
    parser = argparse.ArgumentParser(prog="hpstudy final", description=final_main.__doc__)
    parser.add_argument("--best", required=True, help="best.yaml")
    parser.add_argument("--added", required=True, help="the final runs' added-runs file")
    parser.add_argument(
        "--summaries", nargs="*", required=True, help="their summary.json, in the file's order"
    )
    parser.add_argument("--out", required=True, help="final.csv")
    args = parser.parse_args(argv)
    best = yaml.safe_load(Path(args.best).read_text())
    entries = json.loads(Path(args.added).read_text())["runs"]
    if len(entries) != len(args.summaries):
        raise HpstudyError(
            f"{args.added} names {len(entries)} final runs but {len(args.summaries)} summaries "
            "were given; rerun `snakemake`, which passes one per run."
        )
    finals = [
        (entry["study"], with_checks(Path(path)))
        for entry, path in zip(entries, args.summaries, strict=True)
    ]
    table = final_table(best, finals)
    write_table(table, args.out)
    for row in table.itertuples():
        accuracy = pct_interval(row.test_acc_mean, row.test_acc_low, row.test_acc_high, row.seeds)
        flag = f", AT OR BELOW CHANCE ({pct(row.chance)})" if row.at_or_below_chance else ""
        flag += f", {row.collapsed} run(s) predict one class" if row.collapsed else ""
        print(f"{row.study}: {row.winner}: test accuracy {accuracy} ({row.note}){flag}")
    return 0
