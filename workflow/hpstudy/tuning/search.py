"""Adaptive search inside the DAG: Optuna proposes, the ordinary ``train`` rule trains.

A search (config ``search:``) is a fixed number of rounds, never an open-ended loop. Round
``r`` is a Snakemake checkpoint: :func:`propose` rebuilds the search from the files of rounds
``0 .. r-1`` and writes the round's trials, atomically, to a proposals file that is also an
added-runs file (:mod:`hpstudy.sweep.added_runs`); the workflow reads it and trains each trial as an
ordinary run (named by its identity, so a trial equal to a grid run, or to another search's
trial, is that run). :func:`tell` then collects the round's metric into a results file, which
the next round reads. After the last round :func:`finish` writes ``trials.csv``, the tables of
the trials (as ``aggregate`` writes a config's), ``best.yaml`` (through
:mod:`hpstudy.tuning.selection`) and an Optuna journal for Optuna's own tools.

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
from pathlib import Path

import pandas as pd

from hpstudy.core.atomic import atomic_path, atomic_write_json
from hpstudy.core.errors import HpstudyError
from hpstudy.core.formatting import format_value
from hpstudy.core.paths import Layout
from hpstudy.data.variant import data_variant
from hpstudy.report import aggregate
from hpstudy.report.tables import write_table
from hpstudy.sweep import added_runs
from hpstudy.sweep.plan import make_run, run_spec
from hpstudy.tuning import selection
from hpstudy.tuning.search_rounds import (
    propose,
    read_results,
    read_step_file,
    tell,
)
from hpstudy.tuning.search_space import (
    rebuild,
)
from hpstudy.tuning.search_spec import (
    LOG,
    epoch_budget,
    note,
    spec_of,
    trial_settings,
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
    # imported here: the checkpoint module imports torch (1.4 s), which no other search step
    # needs (every round's proposing and telling, and finishing a search without halving)
    from hpstudy.training.checkpoint import remove_checkpoints

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


def main(argv: list[str] | None = None) -> int:
    """``hpstudy search propose|tell|finish``: one step of a search."""
    from hpstudy.core.config import load_config

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
        added_runs.write(args.out, f"search {args.search} round {args.round}", proposals["runs"],
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
