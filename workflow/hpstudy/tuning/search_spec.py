"""A search's settings as its steps read them: the search's part of the config, its metric
and direction, the note every output carries (validation or test), the halving rungs and the
files a finished search writes. Light (no Optuna, torch or pandas): the workflow imports it
when it is parsed."""

from __future__ import annotations

import logging

from hpstudy.core.metrics import on_test
from hpstudy.training import identity

LOG = logging.getLogger("hpstudy.tuning.search")
ON_TEST = "searched on the test set"
ON_VAL = "searched on the validation split"
TOLD_KEYS = frozenset({"trial", "run_id", "value", "state", "epochs", "params"})  # per told trial
COMPLETE, DIVERGED, FAILED = "complete", "diverged", "failed"


# --- the search's settings -------------------------------------------------------------------
def search_config(config: dict, name: str) -> dict:
    """The part of a validated config that one search's steps read (and whose change reruns
    them): the shared training settings, the data, the paths and the search."""
    return {
        "train": config["train"], "dataset": config["dataset"], "paths": config["paths"],
        "studies": {}, "search": {name: config["search"][name]},
    }  # fmt: skip


def spec_of(config: dict, name: str) -> dict:
    """The search ``name`` with every default filled in."""
    return config["search"][name]


def metric_of(spec: dict) -> str:
    """The summary metric a search optimises (the test split's with ``on_test``)."""
    metric = spec["metric"]
    return on_test(metric) if spec["on_test"] else metric


def note(spec: dict) -> str:
    """What every output of the search says it was searched on."""
    return ON_TEST if spec["on_test"] else ON_VAL


def rung_epochs(spec: dict, rung: int) -> int:
    """Epochs of rung ``rung`` under successive halving: ``min_epochs x eta^rung``."""
    halving = spec["halving"]
    return int(halving["min_epochs"] * halving["eta"] ** rung)


def survivors_of(count: int, eta: int) -> int:
    """How many of ``count`` trials a rung keeps: the best 1/eta, at least one."""
    return max(1, count // eta)


def epoch_budget(spec: dict, base_epochs: int) -> str:
    """The search's training budget in epochs, for the log (extended runs count only the
    epochs they add)."""
    k, rounds = spec["trials_per_round"], spec["rounds"]
    if not spec.get("halving"):
        return f"{rounds} rounds x {k} trials x {base_epochs} epochs = {rounds * k * base_epochs}"
    alive, total, done, parts = k, 0, 0, []
    for rung in range(rounds):
        epochs = rung_epochs(spec, rung)
        total += alive * (epochs - done)
        parts.append(f"rung {rung}: {alive} trial(s) to {epochs} epochs")
        alive, done = survivors_of(alive, spec["halving"]["eta"]), epochs
    return "; ".join(parts) + f" ({total} epochs in all, survivors continuing)"


# --- one round -------------------------------------------------------------------------------
def trial_settings(config: dict, spec: dict, params: dict, epochs: int | None) -> dict:
    """A trial's settings: ``train``, the search's ``set``, its parameters (and its rung's
    epochs, keeping its checkpoint so that the next rung continues it)."""
    settings = {**config["train"], **spec.get("set", {}), **params}
    if epochs is not None:
        settings.update(epochs=epochs, keep_checkpoint=True)
    return identity.canonical_settings(settings)
