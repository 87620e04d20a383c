"""A search's space for Optuna: distributions, the encoding of choices, rounding to three
significant digits, the seeded sampler of a round, and an in-memory Optuna study rebuilt from
the results files of the rounds before (same seed, same proposals)."""

from __future__ import annotations

import math

import numpy as np

from hpstudy.core import schema
from hpstudy.core.formatting import format_value
from hpstudy.core.metrics import maximise
from hpstudy.tuning.search_spec import FAILED, metric_of

SIGNIFICANT_DIGITS = 3


# --- Optuna ----------------------------------------------------------------------------------
def distributions(space: dict) -> dict:
    """Optuna's distribution of each searched setting (choices that are not plain scalars,
    such as kernel widths, are offered as their text)."""
    import optuna

    out = {}
    for key, dimension in space.items():
        if "choices" in dimension:
            out[key] = optuna.distributions.CategoricalDistribution(
                [encode_choice(c) for c in dimension["choices"]]
            )
        elif schema.setting_spec(key).get("type") == "integer":
            out[key] = optuna.distributions.IntDistribution(
                int(dimension["low"]), int(dimension["high"]), log=dimension["log"]
            )
        else:
            out[key] = optuna.distributions.FloatDistribution(
                float(dimension["low"]), float(dimension["high"]), log=dimension["log"]
            )
    return out


def encode_choice(choice):
    """A choice as Optuna holds it (None, bool, int, float or str)."""
    return (
        choice
        if choice is None or isinstance(choice, bool | int | float | str)
        else (format_value(choice))
    )


def decode_params(space: dict, params: dict) -> dict:
    """Trial parameters as settings: choices back to their config form, floats rounded."""
    out = {}
    for key, value in params.items():
        dimension = space[key]
        if "choices" in dimension:
            by_text = {encode_choice(c): c for c in dimension["choices"]}
            out[key] = by_text[value]
        elif isinstance(value, float):
            out[key] = rounded(value, dimension["low"], dimension["high"])
        else:
            out[key] = value
    return out


def rounded(value: float, low: float, high: float) -> float:
    """``value`` to SIGNIFICANT_DIGITS significant digits, kept inside [low, high]."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value)))
    return float(min(max(round(value, digits), low), high))


def round_seed(seed: int, round_: int) -> int:
    """The sampler's seed in round ``round_``: from (seed, round), never the same twice."""
    return int(np.random.SeedSequence([int(seed), int(round_)]).generate_state(1)[0])


def make_sampler(spec: dict, round_: int):
    """A fresh sampler for one round (TPE: random for the first trials_per_round trials, the
    constant liar for trials asked together)."""
    import optuna

    seed = round_seed(spec["seed"], round_)
    if spec["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=spec["trials_per_round"], constant_liar=True
    )


def optuna_state(state: str):
    import optuna

    return optuna.trial.TrialState.COMPLETE if state != FAILED else optuna.trial.TrialState.FAIL


def rebuild(spec: dict, results: list[dict], sampler=None, storage=None, name: str = "search"):
    """An Optuna study holding every told trial, in (round, slot) order. With halving a trial
    is told once, with its value at the last rung it reached; the earlier rungs' values are
    its intermediate values (step = epochs)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if maximise(metric_of(spec)) else "minimize"
    study = optuna.create_study(
        direction=direction, sampler=sampler, storage=storage, study_name=name
    )
    dists = distributions(spec["space"])
    for trial in trial_history(results):
        state = optuna_state(trial["state"])
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=trial["value"] if state == optuna.trial.TrialState.COMPLETE else None,
                params=trial["optuna_params"],
                distributions=dists,
                intermediate_values={int(e): v for e, v in trial["intermediate"].items()},
                user_attrs={
                    "run_id": trial["run_id"],
                    "epochs": trial["epochs"],
                    "rung": trial["rung"],
                    "round": trial["round"],
                },  # fmt: skip
            )
        )
    return study


def trial_history(results: list[dict]) -> list[dict]:
    """One entry per trial (its last rung), in trial order, with its earlier rungs' values."""
    trials: dict[int, dict] = {}
    for result in results:
        for entry in result["trials"]:
            previous = trials.get(entry["trial"])
            intermediate = dict(previous["intermediate"]) if previous else {}
            if entry["value"] is not None:
                intermediate[entry["epochs"]] = entry["value"]
            trials[entry["trial"]] = {**entry, "intermediate": intermediate}
    return [trials[n] for n in sorted(trials)]


def encode_params(space: dict, params: dict) -> dict:
    """Settings as Optuna's parameters (the inverse of :func:`decode_params`)."""
    return {
        key: encode_choice(value) if "choices" in space[key] else value
        for key, value in params.items()
    }
