"""What a sweep explored, for searches and grids alike: a table of trials (one row per
trial: its settings and its value of one metric) and each setting's importance for that
metric, by Optuna's evaluators (fANOVA by default).

A search's trials come from its ``trials.csv`` (with successive halving, rung 0: the only
rung where every trial was trained equally long); a grid study's from ``summary.csv``, one
trial per run (each seed a trial), scored on the validation split where the runs have one and
on the test split otherwise (said in the label: exploration, never selection).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hpstudy.core.metrics import column as metric_column
from hpstudy.core.metrics import describe, maximise
from hpstudy.core.stats import spans_decades
from hpstudy.report.tables import final_accuracies, study_params

VALUE = "value"


class Trials:
    """Trials of one search or study: ``frame`` holds the settings ``params`` and ``value``."""

    def __init__(self, frame: pd.DataFrame, params: list[str], metric: str, note: str,
                 maximise: bool = True) -> None:  # fmt: skip
        self.frame, self.params, self.metric = frame.reset_index(drop=True), params, metric
        self.note, self.maximise = note, maximise

    def numeric(self, key: str) -> bool:
        """Whether a setting's values are all numbers (else categories)."""
        column = self.frame[key]
        return bool(pd.to_numeric(column, errors="coerce").notna().all())


def search_trials(trials: pd.DataFrame, params: list[str]) -> Trials:
    """A search's trials from its ``trials.csv`` (rung 0 under successive halving)."""
    rows = trials[trials["rung"].isna() | (trials["rung"] == 0)] if "rung" in trials else trials
    metric = str(trials["metric"].iloc[0])
    note = str(trials["note"].iloc[0])
    if "rung" in trials and trials["rung"].notna().any():
        note += f"; rung 0 ({int(rows['epochs'].iloc[0])} epochs), where every trial ran"
    frame = rows[[*params, VALUE, "trial", "state"]]
    return Trials(frame, params, metric, note, maximise=maximise(metric))


def study_trials(summary: pd.DataFrame, study: str) -> Trials:
    """A grid study's runs as trials: final validation accuracy where the runs have it, else
    final test accuracy (diverged runs at chance, as everywhere)."""
    rows = summary[summary["study"] == study]
    params = study_params(rows.iloc[0])
    has_val = "final_val_acc" in rows and rows["final_val_acc"].notna().any()
    metric = "val_acc" if has_val else "test_acc"
    note = f"{describe(metric)} of each run"
    if not has_val:
        note += " (no validation split: exploration only)"
    frame = rows[params].copy()
    frame[VALUE] = final_accuracies(rows, metric_column(metric))
    return Trials(frame, params, metric, note)


def importances(trials: Trials, evaluator: str = "fanova", seed: int = 0) -> dict[str, float]:
    """Each setting's importance for the metric (normalised to sum to 1), largest first, by
    Optuna's evaluator; a setting that took a single value has importance 0."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    frame = trials.frame[np.isfinite(trials.frame[VALUE].astype(float))]
    varied = [k for k in trials.params if frame[k].astype(str).nunique() > 1]
    if len(frame) < 2 or not varied:
        return dict.fromkeys(trials.params, 0.0)
    dists = {}
    for key in varied:
        if trials.numeric(key):
            values = frame[key].astype(float)
            log = bool(values.min() > 0 and spans_decades(values.tolist()))
            dists[key] = FloatDistribution(float(values.min()), float(values.max()), log=log)
        else:
            dists[key] = CategoricalDistribution(sorted(frame[key].astype(str).unique()))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if trials.maximise else "minimize")
    for _, row in frame.iterrows():
        params = {
            k: float(row[k]) if isinstance(dists[k], FloatDistribution) else str(row[k])
            for k in varied
        }
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, value=float(row[VALUE]))
        )
    evaluators = {
        "fanova": optuna.importance.FanovaImportanceEvaluator,
        "mean_decrease_impurity": optuna.importance.MeanDecreaseImpurityImportanceEvaluator,
    }
    found = optuna.importance.get_param_importances(
        study, evaluator=evaluators[evaluator](seed=seed)
    )
    found = {k: float(v) if math.isfinite(v) else 0.0 for k, v in found.items()}
    return {**found, **{k: 0.0 for k in trials.params if k not in found}}
