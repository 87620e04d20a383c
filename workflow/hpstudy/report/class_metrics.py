"""Scores that weigh every class alike, for the report: from each run's ``predictions.npz``
(the kept epoch's test predictions, saved by every run), so runs trained before these scores
existed get them too, without retraining.

- :func:`prediction_scores`: a run's final test balanced accuracy and macro-F1 (aggregate adds
  them to summary.csv);
- :func:`per_class_section`: findings' table of the best setting's per-class test accuracy,
  per study, mean over its seeds;
- :func:`chance_accuracy`: chance on imbalanced data, the largest class's share.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.core.class_scores import chance_level, class_scores, per_class_accuracy
from hpstudy.core.formatting import format_value, pct
from hpstudy.core.paths import PREDICTIONS

FINAL_COLUMNS = ("final_test_balanced_acc", "final_test_macro_f1")


def read_predictions(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(true class, predicted class) per test image of a run; None when the file is absent or
    unreadable."""
    try:
        with np.load(Path(run_dir) / PREDICTIONS) as saved:
            return saved["label"].astype(np.int64), saved["pred"].astype(np.int64)
    except (OSError, KeyError, ValueError):
        return None


def prediction_scores(run_dir: str | Path) -> dict[str, float | None]:
    """``final_test_balanced_acc`` and ``final_test_macro_f1`` of a run (None without
    predictions)."""
    found = read_predictions(run_dir)
    if found is None or len(found[0]) == 0:
        return dict.fromkeys(FINAL_COLUMNS)
    scores = class_scores(*found)
    return {
        "final_test_balanced_acc": scores["balanced_acc"],
        "final_test_macro_f1": scores["macro_f1"],
    }


def chance_accuracy(counts) -> float:
    """Chance on imbalanced data: the largest class's share of the images. ``counts`` is the
    per-class image counts: a list, or a mapping such as a manifest split's ``per_class``."""
    return chance_level(counts)


def chance_from_labels(labels) -> float:
    """Chance for a split given its true labels (e.g. a run's saved predictions)."""
    return chance_level(np.bincount(np.asarray(labels, dtype=np.int64)))


def best_setting(rows: pd.DataFrame) -> pd.DataFrame:
    """The summary rows (one per seed) of a study's setting with the best mean final test
    accuracy (a diverged run counted at chance, as every verdict reads it)."""
    from hpstudy.report.tables import final_accuracies

    scored = rows.assign(_acc=final_accuracies(rows))
    means = scored.groupby("name", sort=False)["_acc"].mean()
    return rows[rows["name"] == means.idxmax()]


def per_class_table(run_dirs: list[Path], classes: list[str]) -> pd.DataFrame:
    """Per class: test images, and the mean, lowest and highest accuracy over the runs."""
    accuracies, support = [], None
    for run_dir in run_dirs:
        found = read_predictions(run_dir)
        if found is not None:
            accuracies.append(per_class_accuracy(*found, len(classes)))
            support = np.bincount(found[0], minlength=len(classes))[: len(classes)]
    if not accuracies:
        return pd.DataFrame(columns=["class", "images", "mean", "low", "high"])
    stack = np.vstack(accuracies)
    with np.errstate(all="ignore"):
        return pd.DataFrame({
            "class": classes, "images": support, "mean": np.nanmean(stack, axis=0),
            "low": np.nanmin(stack, axis=0), "high": np.nanmax(stack, axis=0),
        })  # fmt: skip


def _pct(value: float) -> str:
    return "–" if not math.isfinite(value) else pct(value, sep=" ")


def per_class_section(summary: pd.DataFrame, runs_dir: str | Path) -> list[str]:
    """findings.md's per-class section: per study, the best setting's test accuracy per class
    (mean over seeds, with the range), its balanced accuracy, and chance (the largest test
    class's share). Empty when no run has saved predictions."""
    runs_dir, lines = Path(runs_dir), []
    for study, rows in summary.groupby("study", sort=False):
        best = best_setting(rows)
        dirs = [runs_dir / rid for rid in best["run_id"]]
        params = _params(dirs[0])
        classes = params.get("data", {}).get("classes") or []
        table = per_class_table(dirs, classes) if classes else pd.DataFrame()
        if table.empty:
            continue
        values = ", ".join(
            f"{key}={format_value(best[key].iloc[0])}"
            for key in str(best["study_params"].iloc[0]).split(",")
            if key in best
        )
        scores = [prediction_scores(d)["final_test_balanced_acc"] for d in dirs]
        balanced = float(np.mean([s for s in scores if s is not None] or [math.nan]))
        chance = chance_level(table["images"].to_numpy())
        lines += [
            f"### Per-class test accuracy: {study} ({values}, {len(dirs)} seed(s))",
            "",
            f"Balanced accuracy {_pct(balanced)}; chance (the largest class's share) "
            f"{_pct(chance)}.",
            "",
            "| class | test images | accuracy | lowest | highest |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {r['class']} | {int(r['images'])} | {_pct(r['mean'])} | {_pct(r['low'])} "
                f"| {_pct(r['high'])} |"
                for _, r in table.iterrows()
            ),
            "",
        ]
    return ["## Per-class accuracy of the best setting", "", *lines] if lines else []


def _params(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "params.json").read_text())
    except (OSError, ValueError):
        return {}
