"""Adaptive search inside the DAG: Optuna proposes, the ordinary ``train`` rule trains.

A search (config ``search:``) is a fixed number of rounds, never an open-ended loop. Round
``r`` is a Snakemake checkpoint: :func:`propose` rebuilds the search from the files of rounds
``0 .. r-1`` and writes the round's trials, atomically, to a proposals file that is also an
added-runs file (:mod:`hpstudy.added`); the workflow reads it and trains each trial as an
ordinary run (named by its identity, so a trial equal to a grid run, or to another search's
trial, is that run). :func:`tell` then collects the round's metric into a results file, which
the next round reads. After the last round :func:`finish` writes ``trials.csv``, the tables of
the trials (as ``aggregate`` writes a config's), ``best.yaml`` (through
:mod:`hpstudy.selection`) and an Optuna journal for Optuna's own tools.

Same seed, same proposals. Optuna keeps no sampler state between processes, so each round
rebuilds an in-memory study from the results files in (round, slot) order, seeds its sampler
from (seed, round), and asks ``trials_per_round`` trials in a row (TPE's constant liar treats
the ones asked before as running). TPE's first ``trials_per_round`` trials are random. The
proposals repeat exactly when the metrics do: on CPUs, or on GPUs with ``deterministic: true``.
Sampled floats are rounded to three significant digits (kept inside the range), so run names
stay readable and the study is rebuilt from exactly what was trained.

Successive halving (``halving``): round ``r`` is rung ``r``. Rung 0 asks ``trials_per_round``
trials and trains them ``min_epochs`` epochs; rung ``r`` trains the best ``1/eta`` of rung
``r-1`` (at least one) to ``min_epochs x eta^r`` epochs. Trials keep their resume checkpoint
(checkpoints are keyed by the run's trajectory, its identity without ``epochs``), so a survivor
continues from where its shorter run ended; ``finish`` deletes the checkpoints of the trials
that did not reach the last rung.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy import added, aggregate, identity, schema, selection
from hpstudy.atomic import atomic_path, atomic_write_json
from hpstudy.checkpoint import remove_checkpoints
from hpstudy.data.variant import data_variant
from hpstudy.errors import HpstudyError
from hpstudy.formatting import format_value
from hpstudy.layout import Layout
from hpstudy.plan import make_run, run_spec
from hpstudy.tables import write_table
from hpstudy.tuning.class_score_runs import refuse_predating_summaries

LOG = logging.getLogger("hpstudy.search")
ON_TEST = "searched on the test set"
ON_VAL = "searched on the validation split"
SUMMARY_COLUMN = {  # the metric -> the summary.json number it reads (a trial's last epoch)
    "val_acc": "final_val_acc", "val_loss": "final_val_loss",
    "test_acc": "final_test_acc", "test_loss": "final_test_loss",
    **{f"{split}_{score}": f"final_{split}_{score}" for split in ("val", "test")
       for score in ("balanced_acc", "macro_f1")},
}  # fmt: skip
TOLD_KEYS = frozenset({"trial", "run_id", "value", "state", "epochs", "params"})  # per told trial
SIGNIFICANT_DIGITS = 3
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
    return metric.replace("val_", "test_") if spec["on_test"] else metric


def maximise(metric: str) -> bool:
    """Accuracy, balanced accuracy and macro-F1 are maximised, loss minimised."""
    return not metric.endswith("_loss")


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


# --- one round -------------------------------------------------------------------------------
def trial_settings(config: dict, spec: dict, params: dict, epochs: int | None) -> dict:
    """A trial's settings: ``train``, the search's ``set``, its parameters (and its rung's
    epochs, keeping its checkpoint so that the next rung continues it)."""
    settings = {**config["train"], **spec.get("set", {}), **params}
    if epochs is not None:
        settings.update(epochs=epochs, keep_checkpoint=True)
    return identity.canonical_settings(settings)


def propose(config: dict, name: str, round_: int, results: list[dict]) -> dict:
    """Round ``round_``'s proposals, from the results of the rounds before it."""
    spec = spec_of(config, name)
    if len(results) != round_:
        raise HpstudyError(
            f"search {name} round {round_} needs the results of rounds 0..{round_ - 1}, and "
            f"{len(results)} were given; run the round through snakemake."
        )
    if spec.get("halving") and round_ > 0:
        entries = survivors(spec, results[-1], round_)
    else:
        entries = ask(spec, results, round_)
    runs = []
    for entry in entries:
        epochs = rung_epochs(spec, round_) if spec.get("halving") else None
        settings = trial_settings(config, spec, entry["params"], epochs)
        runs.append({"study": name, "settings": settings, "seed": spec["seed"], **entry})
    return {"search": name, "round": round_, "note": note(spec), "runs": runs}


def ask(spec: dict, results: list[dict], round_: int) -> list[dict]:
    """``trials_per_round`` new trials from the sampler, asked one after another."""
    study = rebuild(spec, results, sampler=make_sampler(spec, round_))
    dists = distributions(spec["space"])
    first = len(trial_history(results))
    out = []
    for slot in range(spec["trials_per_round"]):
        trial = study.ask(fixed_distributions=dists)
        params = decode_params(spec["space"], trial.params)
        out.append(
            {"trial": first + slot, "slot": slot, "rung": 0 if spec.get("halving") else None,
             "params": params, "optuna_params": encode_params(spec["space"], params)}
        )  # fmt: skip
    return out


def encode_params(space: dict, params: dict) -> dict:
    """Settings as Optuna's parameters (the inverse of :func:`decode_params`)."""
    return {
        key: encode_choice(value) if "choices" in space[key] else value
        for key, value in params.items()
    }


def survivors(spec: dict, previous: dict, round_: int) -> list[dict]:
    """The best 1/eta of the previous rung's trials (at least one); ties go to the earlier
    trial, and a diverged or failed trial survives only when nothing else is left."""
    ranked = sorted(previous["trials"], key=lambda t: rank_key(spec, t))
    keep = ranked[: survivors_of(len(ranked), spec["halving"]["eta"])]
    return [
        {"trial": t["trial"], "slot": slot, "rung": round_, "params": t["params"],
         "optuna_params": t["optuna_params"]}
        for slot, t in enumerate(sorted(keep, key=lambda t: t["trial"]))
    ]  # fmt: skip


def rank_key(spec: dict, told: dict) -> tuple:
    """Best first: completed trials by value, then diverged, then failed; then trial order."""
    usable = told["state"] != FAILED and told["value"] is not None
    value = told["value"] if usable else 0.0
    sign = -1.0 if maximise(metric_of(spec)) else 1.0
    return (not usable, told["state"] == DIVERGED, sign * value, told["trial"])


def tell(spec: dict, proposals: dict, summaries: list[dict]) -> dict:
    """The round's results: each trial's metric at its last epoch, in slot order. A diverged
    trial counts at chance for an accuracy metric and fails for a loss."""
    metric = metric_of(spec)
    column = SUMMARY_COLUMN[metric]
    refuse_predating_summaries(summaries, column, f"search metric {spec['metric']}")
    told = []
    for entry, summary in zip(proposals["runs"], summaries, strict=True):
        value, state = told_value(metric, summary)
        told.append(
            {"trial": entry["trial"], "slot": entry["slot"], "round": proposals["round"],
             "rung": entry["rung"], "params": entry["params"],
             "optuna_params": entry["optuna_params"], "epochs": summary["epochs_completed"],
             "run_id": summary["run_id"], "settings": entry["settings"], "seed": entry["seed"],
             "value": value, "state": state}
        )  # fmt: skip
    return {"search": proposals["search"], "round": proposals["round"], "metric": metric,
            "note": proposals["note"], "trials": told}  # fmt: skip


def told_value(metric: str, summary: dict) -> tuple[float | None, str]:
    """A trial's value and state from its summary.json: its metric at its last epoch; a
    diverged trial counts at chance for an accuracy metric and fails for a loss."""
    value = summary.get(SUMMARY_COLUMN[metric])
    if summary["diverged"] or value is None:
        chance = 1 / summary["params"]["data"]["num_classes"]
        return (chance, DIVERGED) if maximise(metric) else (None, FAILED)
    return value, COMPLETE


def verify_results(spec: dict, paths: list[str], results: list[dict], runs_dir: Path) -> None:
    """Refuse a results file whose told metric is not what its trial's summary.json says
    (a hand-edited value would steer the later rounds and contradict best.yaml)."""
    metric = metric_of(spec)
    for path, result in zip(paths, results, strict=True):
        for told in result["trials"]:
            summary_path = runs_dir / told["run_id"] / "summary.json"
            try:
                summary = json.loads(summary_path.read_text())
                actual = (*told_value(metric, summary), summary["epochs_completed"])
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise HpstudyError(
                    f"{path} tells trial {told['trial']} of run {told['run_id']}, whose "
                    f"summary {summary_path} cannot be read ({err}). Run `snakemake` again: it "
                    "retrains the run and then writes the round's results again."
                ) from err
            if actual != (told["value"], told["state"], told["epochs"]):
                raise HpstudyError(
                    f"{path} says trial {told['trial']} ({told['run_id']}) scored "
                    f"{told['value']} ({told['state']}, {told['epochs']} epochs), but its "
                    f"summary {summary_path} says {actual[0]} ({actual[1]}, {actual[2]} "
                    "epochs): the results file was edited or copied from other runs. A search "
                    "believes only its trials' summaries: delete the results file and rerun "
                    "`snakemake`, which writes it again from them."
                )


# --- after the last round --------------------------------------------------------------------
def trials_table(spec: dict, results: list[dict]) -> pd.DataFrame:
    """``trials.csv``: one row per trial and rung: its settings, epochs, metric and state
    (with halving, ``survived`` says whether it went on to the next rung)."""
    rows = []
    last_round = len(results) - 1
    next_trials = [{t["trial"] for t in r["trials"]} for r in results[1:]] + [set()]
    for result, promoted in zip(results, next_trials, strict=True):
        for t in result["trials"]:
            row = {
                "trial": t["trial"], "round": t["round"], "rung": t["rung"], "epochs": t["epochs"],
                **{k: format_value(v) if isinstance(v, list | dict) else v
                   for k, v in t["params"].items()},
                "metric": result["metric"], "value": t["value"], "state": t["state"],
                "run_id": t["run_id"], "note": result["note"],
            }  # fmt: skip
            if spec.get("halving"):
                row["survived"] = t["trial"] in promoted if t["round"] < last_round else None
            rows.append(row)
    return pd.DataFrame(rows)


def final_membership(spec: dict, name: str, results: list[dict]) -> dict:
    """The trials of the last round as one study (``aggregate``'s membership format): with
    halving the survivors at the longest rung, without it every trial."""
    told = results[-1]["trials"] if spec.get("halving") else [
        t for r in results for t in r["trials"]
    ]  # fmt: skip
    return {
        name: {
            "params": list(spec["space"]),
            "mode": "search",
            "points": [{"run_id": t["run_id"], "values": t["params"]} for t in told],
        }
    }


def write_journal(spec: dict, name: str, results: list[dict], path: str | Path) -> None:
    """Every trial as an Optuna journal (JournalStorage + JournalFileBackend), written whole
    and then renamed into place, for Optuna's dashboard and visualisation."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(path)
    with atomic_path(path) as tmp:
        storage = JournalStorage(JournalFileBackend(str(tmp)))
        rebuild(spec, results, storage=storage, name=name)
    for leftover in path.parent.glob(f".{path.name}.tmp-*.lock"):
        leftover.unlink(missing_ok=True)


def remove_pruned_checkpoints(spec: dict, results: list[dict], variant: str, layout: Layout) -> int:
    """Delete the resume checkpoints of trials that did not reach the last rung; returns how
    many trajectories were cleared (the last rung's survivors keep theirs)."""
    if not spec.get("halving"):
        return 0

    def folder(told: dict) -> Path:
        run = make_run(told["settings"], told["seed"], variant)  # the folder ignores channels
        return Path(run_spec(run, layout)["checkpoint_dir"])

    kept = {folder(t) for t in results[-1]["trials"]}
    cleared = set()
    for told in (t for r in results[:-1] for t in r["trials"]):
        path = folder(told)
        if path not in kept and path not in cleared and path.is_dir():
            remove_checkpoints(path, layout.checkpoints)
            cleared.add(path)
    return len(cleared)


def finish(config: dict, name: str, results: list[dict], out_dir: Path, runs_dir: Path) -> dict:
    """Write the search's tables, best.yaml, trials.csv and journal into ``out_dir``."""
    spec = spec_of(config, name)
    aggregate.write_results(runs_dir, final_membership(spec, name, results), out_dir)
    write_table(trials_table(spec, results), out_dir / "trials.csv")
    summary, metrics = (pd.read_csv(out_dir / n) for n in ("summary.csv", "metrics.csv"))
    rules = {"metric": spec["metric"], "epoch": "final", "on_test": spec["on_test"]}
    best, _ = selection.select(summary, metrics, rules)
    best["note"] = f"{note(spec)}; {best['note']}"
    selection.write_best(best, out_dir / "best.yaml")
    write_journal(spec, name, results, out_dir / "journal.log")
    return best


def read_step_file(path: str | Path, what: str) -> dict:
    """A proposals or results file of a search, or one paragraph saying it does not read."""
    try:
        content = json.loads(Path(path).read_text())
        if not isinstance(content, dict) or not isinstance(content["round"], int):
            raise ValueError("no round")
        needed = TOLD_KEYS if what == "results" else {"settings", "seed"}
        entries = content["trials" if what == "results" else "runs"]
        if not all(isinstance(t, dict) and needed <= t.keys() for t in entries):
            raise ValueError(f"a trial lacks one of {', '.join(sorted(needed))}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HpstudyError(
            f"{path} is not a readable search {what} file ({err}): it was cut short or edited. "
            "The search's steps write it; delete it and rerun `snakemake`, which writes it "
            "again from the trials' summaries (training nothing that is done)."
        ) from err
    return content


def read_results(paths: list[str], spec: dict | None = None, runs_dir: Path | None = None):
    """Results files, in round order (each says its round); with ``spec`` and ``runs_dir``,
    each told value checked against its trial's summary.json."""
    results = [read_step_file(p, "results") for p in paths]
    if spec is not None and runs_dir is not None:
        verify_results(spec, paths, results, runs_dir)
    order = sorted(range(len(results)), key=lambda i: results[i]["round"])
    return [results[i] for i in order]


def main(argv: list[str] | None = None) -> int:
    """``hpstudy search propose|tell|finish``: one step of a search."""
    from hpstudy.config import load_config

    parser = argparse.ArgumentParser(prog="hpstudy search", description=main.__doc__)
    parser.add_argument("step", choices=["propose", "tell", "finish"])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--configfile", help="the config file")
    source.add_argument("--config", help="the search's part of a validated config (JSON)")
    parser.add_argument("--search", required=True, help="the search's name")
    parser.add_argument("--round", type=int, help="propose/tell: the round")
    parser.add_argument("--results", nargs="*", default=[], help="earlier rounds' results files")
    parser.add_argument("--proposals", help="tell: the round's proposals file")
    parser.add_argument("--summaries", nargs="*", default=[], help="tell: the trials' summaries")
    parser.add_argument("--out", required=True, help="the file (propose, tell) or folder written")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config(args.configfile) if args.configfile else json.loads(args.config)
    if args.search not in config.get("search", {}):
        raise HpstudyError(
            f"{args.configfile or 'the config'} has no search {args.search!r}; its searches are "
            f"{', '.join(config.get('search', {})) or 'none'}."
        )
    spec = spec_of(config, args.search)
    runs_dir = Path(Layout.from_config(config).runs)
    if args.step == "propose":
        if args.round == 0:
            epochs = trial_settings(config, spec, {}, None)["epochs"]
            LOG.info("search %s: budget %s", args.search, epoch_budget(spec, epochs))
        results = read_results(args.results, spec, runs_dir)
        proposals = propose(config, args.search, args.round, results)
        added.write(args.out, f"search {args.search} round {args.round}", proposals["runs"],
                    search=args.search, round=args.round, note=proposals["note"])  # fmt: skip
        for run in proposals["runs"]:
            print(f"trial {run['trial']}: {run['params']} ({run['settings']['epochs']} epochs)")
    elif args.step == "tell":
        proposals = read_step_file(args.proposals, "proposals")
        summaries = [json.loads(Path(p).read_text()) for p in args.summaries]
        atomic_write_json(args.out, tell(spec, proposals, summaries))
    else:
        results = read_results(args.results, spec, runs_dir)
        out = Path(args.out)
        layout = Layout.from_config(config)
        best = finish(config, args.search, results, out, runs_dir)
        variant = data_variant(config["dataset"])
        cleared = remove_pruned_checkpoints(spec, results, variant, layout)
        chosen = best["studies"][args.search]["winner"]
        print(f"search {args.search}: best {chosen['values']} ({best['note']}); "
              f"checkpoints cleared for {cleared} pruned trial(s)")  # fmt: skip
    return 0
