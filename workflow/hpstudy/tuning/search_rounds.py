"""A search's rounds: propose a round's trials (an added-runs file), tell their metric from
each trial's summary.json, and read the round files back, checked against the summaries."""

from __future__ import annotations

import json
from pathlib import Path

from hpstudy.core.errors import HpstudyError
from hpstudy.core.metrics import column as metric_column
from hpstudy.core.metrics import maximise
from hpstudy.core.run_record import at_chance
from hpstudy.tuning.class_score_runs import refuse_predating_summaries
from hpstudy.tuning.search_space import (
    decode_params,
    distributions,
    encode_params,
    make_sampler,
    rebuild,
    trial_history,
)
from hpstudy.tuning.search_spec import (
    COMPLETE,
    DIVERGED,
    FAILED,
    TOLD_KEYS,
    metric_of,
    note,
    rung_epochs,
    spec_of,
    survivors_of,
    trial_settings,
)


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
    column = metric_column(metric)
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
    value = summary.get(metric_column(metric))
    if summary["diverged"] or value is None:
        if not maximise(metric):
            return None, FAILED
        return at_chance(value, True, summary["params"]["data"]["num_classes"]), DIVERGED
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
