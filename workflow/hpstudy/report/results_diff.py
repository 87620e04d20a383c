"""``hpstudy diff A B``: two results folders joined on settings.

A and B are results folders (two configs' sweeps, or the same config at two commits after
``dvc pull``). Each run counts once per side, whatever studies hold it; runs are joined on the
data variant (dataset, image size, splits) and the run's name, which spells out every setting
that shapes its numbers. Per joined setting: the mean final test accuracy on each side
(diverged runs at chance, as everywhere) and the difference B - A with its 95 % interval:
paired by seed where both sides ran the same two or more seeds (the t interval of the per-seed
differences: a folder against itself gives 0 [+0.0, +0.0]), Welch's over seeds where both
sides have two or more otherwise, else the two test sets' binomial errors combined (labelled
single-seed). Settings only one side has are listed apart. A results folder's runs are those of
its grid (``summary.csv``) and of its searches (``search/<name>/summary.csv``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from hpstudy.core import stats
from hpstudy.core.errors import HpstudyError
from hpstudy.core.formatting import pct, points, signed_points
from hpstudy.report.tables import final_accuracies, read_table, write_table

KEYS = ["variant", "name"]


def summary_tables(folder: str | Path) -> list[Path]:
    """The summary tables of a results folder: its grid's and each search's."""
    folder = Path(folder)
    grid = [folder / "summary.csv"] if (folder / "summary.csv").is_file() else []
    return grid + sorted(folder.glob("search/*/summary.csv"))


def runs_of(folder: str | Path) -> pd.DataFrame:
    """A results folder's runs, one row each, with their final accuracy (``accuracy``)."""
    tables = summary_tables(folder)
    if not tables:
        raise HpstudyError(
            f"{folder} holds no summary.csv (neither a grid's nor a search's under "
            "search/<name>/), so it is no results folder. Give two results folders "
            "(paths.results of a config, e.g. results/demo), after `snakemake` or `dvc pull` "
            "has filled them."
        )
    rows = pd.concat([read_table(path) for path in tables], ignore_index=True)
    rows = rows.drop_duplicates("run_id").copy()
    rows["accuracy"] = final_accuracies(rows)
    return rows


def difference(ga: pd.DataFrame, gb: pd.DataFrame) -> stats.Interval:
    """B - A for one setting: paired by seed when both sides ran the same two or more seeds,
    else Welch's over seeds, else (one seed on a side) the test sets' binomial errors."""
    acc_a, acc_b = ga["accuracy"].to_numpy(float), gb["accuracy"].to_numpy(float)
    by_seed_a = dict(zip(ga["seed"], acc_a, strict=True))
    by_seed_b = dict(zip(gb["seed"], acc_b, strict=True))
    if len(by_seed_a) >= 2 and by_seed_a.keys() == by_seed_b.keys():
        seeds = sorted(by_seed_a)
        diffs = [by_seed_b[seed] - by_seed_a[seed] for seed in seeds]
        return replace(stats.one_sample(diffs, 0.0), method="paired by seed")
    if len(acc_a) >= 2 and len(acc_b) >= 2:
        return stats.welch(acc_b, acc_a)
    n = int(min(ga["test_count"].iloc[0], gb["test_count"].iloc[0]))
    return stats.single_run_difference(float(acc_b.mean()), float(acc_a.mean()), n)


def compare(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The joined settings (one row each: seeds, means, B - A and its interval) and the
    settings only one side has."""
    groups_a = {key: g for key, g in a.groupby(KEYS, sort=False)}
    groups_b = {key: g for key, g in b.groupby(KEYS, sort=False)}
    rows = []
    for key in [k for k in groups_a if k in groups_b]:
        ga, gb = groups_a[key], groups_b[key]
        acc_a, acc_b = ga["accuracy"].to_numpy(float), gb["accuracy"].to_numpy(float)
        interval = difference(ga, gb)
        rows.append({
            **dict(zip(KEYS, key, strict=True)),
            "seeds_a": len(acc_a), "seeds_b": len(acc_b),
            "acc_a": float(acc_a.mean()), "acc_b": float(acc_b.mean()),
            "diff": interval.effect, "diff_low": interval.low, "diff_high": interval.high,
            "method": interval.method, "excludes_zero": bool(interval.low > 0 or interval.high < 0),
        })  # fmt: skip
    only = [
        {**dict(zip(KEYS, key, strict=True)), "side": side, "seeds": len(groups[key])}
        for side, groups, other in (("A", groups_a, groups_b), ("B", groups_b, groups_a))
        for key in groups
        if key not in other
    ]
    return pd.DataFrame(rows), pd.DataFrame(only, columns=[*KEYS, "side", "seeds"])


def render(joined: pd.DataFrame, only: pd.DataFrame, a: str, b: str) -> str:
    """The comparison as Markdown, for people."""
    lines = [
        f"# {b} (B) against {a} (A)",
        "",
        "Mean final test accuracy per setting; B - A with its 95% interval (paired by seed "
        "where both sides ran the same seeds, else Welch over seeds where both sides have two "
        "or more, else the test sets' binomial errors: single-seed).",
        "",
        "| data | run | seeds A/B | A | B | B - A [95% interval] |",
        "|---|---|---|---|---|---|",
    ]
    for r in joined.itertuples():
        diff = f"{points(r.diff)} [{signed_points(r.diff_low)}, {signed_points(r.diff_high)}]"
        diff += " (single-seed)" if r.method == "binomial" else ""
        lines.append(
            f"| {r.variant} | `{r.name}` | {r.seeds_a}/{r.seeds_b} | "
            f"{pct(r.acc_a)} | {pct(r.acc_b)} | {diff} |"
        )
    if joined.empty:
        lines.append("| (no setting in both) | | | | | |")
    for side, folder in (("A", a), ("B", b)):
        names = only[only["side"] == side]
        if not names.empty:
            listed = ", ".join(
                f"`{r.name}` ({r.variant}, {r.seeds} seed(s))" for r in names.itertuples()
            )
            lines += ["", f"Only in {side} ({folder}): {listed}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``hpstudy diff A B``: final accuracy per setting in two results folders."""
    parser = argparse.ArgumentParser(prog="hpstudy diff", description=__doc__.split("\n")[0])
    parser.add_argument("a", help="a results folder (paths.results), e.g. results/demo")
    parser.add_argument("b", help="another results folder")
    parser.add_argument("--out", help="also write the joined table as CSV here")
    args = parser.parse_args(argv)
    joined, only = compare(runs_of(args.a), runs_of(args.b))
    if args.out:
        write_table(joined, args.out)
    sys.stdout.write(render(joined, only, args.a, args.b))
    return 0
