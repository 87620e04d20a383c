"""What a tuning budget buys: the expected best validation accuracy when k of a study's
settings (or a search's trials) are drawn at random, k = 1 ... n, with its spread, against k
and against device-hours ("expected validation performance", Dodge et al., "Show your work",
EMNLP 2019), by the unbiased estimator for draws without replacement (Tang et al. 2020).

With the n values sorted, v_(1) <= ... <= v_(n), the best of k drawn without replacement is
v_(i) with probability C(i-1, k-1) / C(n, k); the expected best is that weighted sum, its
spread the standard deviation under the same weights. A study's unit is a setting (its mean
over seeds, diverged runs at chance; a draw costs all its seeds); a search's is a trial (rung
0 under successive halving), and its curve sits beside the search's own best-so-far in trial
order, so a user sees whether the sampler beat random draws from the same trials. Without a
validation split the values are test accuracies, and every output says "on the test set".
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.core.atomic import atomic_path
from hpstudy.core.metrics import maximise as maximised
from hpstudy.report import exploration
from hpstudy.report.cost import run_costs
from hpstudy.report.tables import read_table

ON_TEST = "on the test set"
BUDGET_COLUMNS = ["name", "unit", "k", "device_hours", "expected_best", "spread",
                  "in_order_best", "in_order_hours", "metric", "note"]  # fmt: skip


def expected_best(values, maximise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """For k = 1 ... n: the expected best of k values drawn without replacement from
    ``values``, and its standard deviation (exact: no sampling)."""
    v = np.sort(np.asarray(values, float))
    if not maximise:
        v = np.sort(-v)
    n = len(v)
    means, spreads = np.empty(n), np.empty(n)
    for k in range(1, n + 1):
        total = math.comb(n, k)
        weights = np.array([math.comb(i - 1, k - 1) / total for i in range(1, n + 1)])
        mean = float(weights @ v)
        means[k - 1] = mean
        spreads[k - 1] = math.sqrt(max(0.0, float(weights @ (v - mean) ** 2)))
    return (means, spreads) if maximise else (-means, spreads)


@dataclass
class BudgetCurve:
    """A study's or search's curve: per k, the expected best, its spread and the expected
    device-hours of k draws; a search adds its own best-so-far in trial order."""

    name: str
    unit: str  # "settings" or "trials"
    metric: str
    note: str
    maximise: bool
    values: np.ndarray  # one per setting or trial
    hours: np.ndarray  # device-hours of each
    in_order: np.ndarray | None = None  # the search's best so far, trial by trial

    def __post_init__(self) -> None:
        self.mean, self.spread = expected_best(self.values, self.maximise)
        self.ks = np.arange(1, len(self.values) + 1)
        self.k_hours = self.ks * float(np.mean(self.hours)) if len(self.hours) else self.ks * 0.0

    @property
    def on_test(self) -> bool:
        """Whether the values are test-set numbers (no validation split)."""
        return self.metric.startswith("test")

    def table(self) -> pd.DataFrame:
        """The curve as rows of ``budget.csv``."""
        ordered = self.in_order if self.in_order is not None else [np.nan] * len(self.ks)
        order_hours = np.cumsum(self.hours) if self.in_order is not None else ordered
        return pd.DataFrame({
            "name": self.name, "unit": self.unit, "k": self.ks, "device_hours": self.k_hours,
            "expected_best": self.mean, "spread": self.spread, "in_order_best": ordered,
            "in_order_hours": order_hours, "metric": self.metric,
            "note": self.note + (f" ({ON_TEST})" if self.on_test else ""),
        }, columns=BUDGET_COLUMNS)  # fmt: skip


def study_curve(summary: pd.DataFrame, metrics: pd.DataFrame, study: str) -> BudgetCurve:
    """A grid study's curve over its settings (each setting's mean over seeds)."""
    trials = exploration.study_trials(summary, study)  # validation where there is one
    rows = summary[summary["study"] == study].reset_index(drop=True)
    costs = run_costs(summary, metrics).set_index("run_id")["device_s"] / 3600
    frame = trials.frame.assign(run_hours=rows["run_id"].map(costs).to_numpy())
    keys = [frame[k].astype(str) for k in trials.params]
    grouped = frame.groupby(keys, sort=False)
    return BudgetCurve(study, "settings", trials.metric, trials.note, trials.maximise,
                       grouped[exploration.VALUE].mean().to_numpy(float),
                       grouped["run_hours"].sum().to_numpy(float))  # fmt: skip


def search_curve(trials: pd.DataFrame, summary, metrics, name: str) -> BudgetCurve:
    """A search's curve over its trials (rung 0 under halving, where every trial ran equally
    long) beside its best so far in trial order; a trial without a recorded cost is priced
    at the average trial's."""
    rows = trials[trials["rung"].isna() | (trials["rung"] == 0)] if "rung" in trials else trials
    metric, note = str(trials["metric"].iloc[0]), str(trials["note"].iloc[0])
    rows = rows[np.isfinite(rows["value"].astype(float))].sort_values("trial")
    higher = maximised(metric)
    costs = run_costs(summary, metrics).set_index("run_id")["device_s"] / 3600
    hours = rows["run_id"].map(costs).astype(float)
    hours = hours.fillna(hours.mean() if hours.notna().any() else 0.0).to_numpy()
    values = rows["value"].astype(float)
    best = values.cummax() if higher else values.cummin()
    return BudgetCurve(name, "trials", metric, note, higher,
                       values.to_numpy(), hours, best.to_numpy())  # fmt: skip


def curve_for(tables: Path, summary: pd.DataFrame, study: str) -> BudgetCurve:
    """The curve of a search (its folder holds trials.csv) or of a grid study."""
    metrics = read_table(Path(tables) / "metrics.csv")
    if (Path(tables) / "trials.csv").is_file():
        return search_curve(read_table(Path(tables) / "trials.csv"), summary, metrics, study)
    return study_curve(summary, metrics, study)


def budget_table(grid, searches: dict) -> pd.DataFrame:
    """budget.csv: the curve of every study of two settings or more (``grid``: the config's
    (summary, metrics), or None) and of every search (name -> (trials, summary, metrics))."""
    curves = []
    if grid is not None:
        summary, metrics = grid
        for study in dict.fromkeys(summary["study"]):
            curve = study_curve(summary, metrics, study)
            if len(curve.values) >= 2:
                curves.append(curve)
    curves += [search_curve(*tables, name) for name, tables in searches.items()]
    frames = [curve.table() for curve in curves]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BUDGET_COLUMNS)


def main(argv: list[str] | None = None) -> int:
    """``hpstudy budget``: write budget.csv from the results tables."""
    parser = argparse.ArgumentParser(prog="hpstudy budget", description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="*", default=[], help="the config's results folder")
    parser.add_argument("--search-tables", nargs="*", default=[], help="each search's folder")
    parser.add_argument("--out", required=True, help="budget.csv")
    args = parser.parse_args(argv)
    grid = None
    if args.tables:
        grid = tuple(read_table(Path(args.tables[0]) / n) for n in ("summary.csv", "metrics.csv"))
    searches = {
        Path(f).name: tuple(read_table(Path(f) / n)
                            for n in ("trials.csv", "summary.csv", "metrics.csv"))
        for f in args.search_tables
    }  # fmt: skip
    table = budget_table(grid, searches)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(f"wrote {args.out}: {table['name'].nunique() if len(table) else 0} curves")
    return 0
