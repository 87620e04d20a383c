"""Adaptive search: proposals that repeat exactly from the files, halving that extends its
survivors, the exploration figures, and a small search run through snakemake."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from conftest import copy_repo, snakemake

from hpstudy import cli as hpstudy_cli
from hpstudy.core.config import validate_config
from hpstudy.core.errors import HpstudyError
from hpstudy.report import exploration
from hpstudy.report import trial_figures as figures
from hpstudy.report.tables import read_table
from hpstudy.sweep import plan
from hpstudy.tuning import search, search_rounds, search_space, search_spec

DATA = {"source": "digits", "name": "digits", "image_size": 40, "val_fraction": 0.2}
SPACE = {
    "lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "batch_size": {"choices": [32, 64, 128]},
    "kernel_width": {"choices": [3, [5, 5, 7]]},
}


def config_with(search_spec: dict, **extra) -> dict:
    return validate_config({
        "dataset": DATA, "studies": {"lr": {"param": "lr", "values": [1e-3]}},
        "search": {"s": {"space": SPACE, **search_spec}}, **extra,
    })  # fmt: skip


def score(entry) -> float:
    """A made-up validation accuracy, best at lr 1e-2 and with small batches."""
    lr, bs = entry["params"]["lr"], entry["params"]["batch_size"]
    return 0.95 - 0.1 * abs(math.log10(lr) + 2) - 0.0005 * bs


def summary_of(entry, value=None, diverged=False) -> dict:
    return {"final_val_acc": score(entry) if value is None else value, "final_val_loss": 0.5,
            "diverged": diverged, "epochs_completed": entry["settings"]["epochs"],
            "run_id": f"digits-40-val0.2/x{entry['trial']}/seed-0",
            "params": {"data": {"num_classes": 10}}}  # fmt: skip


def run_search(config, rounds=None, summaries=summary_of) -> list[dict]:
    """Every round's results, each round rebuilt from JSON files' contents as in the DAG."""
    spec = config["search"]["s"]
    results = []
    for r in range(rounds or spec["rounds"]):
        proposals = json.loads(json.dumps(search_rounds.propose(config, "s", r, results)))
        told = search_rounds.tell(spec, proposals, [summaries(e) for e in proposals["runs"]])
        results.append(json.loads(json.dumps(told)))
    return results


def written_round_zero(tmp_path, config) -> tuple[Path, list[str]]:
    """Round 0 told as the DAG tells it, with its trials' summaries in the runs folder; returns
    the results file and the arguments proposing round 1 from it."""
    spec = config["search"]["s"]
    proposals = json.loads(json.dumps(search_rounds.propose(config, "s", 0, [])))
    summaries = [summary_of(e) for e in proposals["runs"]]
    for summary in summaries:
        path = tmp_path / config["paths"]["runs"] / summary["run_id"] / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary))
    results = tmp_path / "round-0.json"
    results.write_text(json.dumps(search_rounds.tell(spec, proposals, summaries)))
    argv = ["search", "propose", "--config", json.dumps(config), "--search", "s", "--round", "1"]
    return results, [*argv, "--results", str(results), "--out", str(tmp_path / "round-1.json")]


def test_a_hand_edited_told_value_is_refused_naming_the_file_and_the_fix(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    results, argv = written_round_zero(tmp_path, config_with({"rounds": 2}))
    assert hpstudy_cli.main(argv) == 0  # as told: believed
    told = json.loads(results.read_text())
    told["trials"][1]["value"] = 0.999
    results.write_text(json.dumps(told))
    capsys.readouterr()
    assert hpstudy_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("hpstudy: error: ") and "Traceback" not in err
    assert str(results) in err and "summary.json" in err and "0.999" in err
    assert "delete the results file and rerun `snakemake`" in err


@pytest.mark.parametrize(
    "text", ['{"search": "s", "round": 0, "tri', "[]", "", '{"round": 0, "trials": [{}]}']
)
def test_a_truncated_results_file_is_one_paragraph(tmp_path, monkeypatch, capsys, text):
    monkeypatch.chdir(tmp_path)
    results, argv = written_round_zero(tmp_path, config_with({"rounds": 2}))
    results.write_text(text)
    assert hpstudy_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("hpstudy: error: ") and "Traceback" not in err
    assert f"{results} is not a readable search results file" in err and "rerun" in err


def test_same_seed_same_proposals_another_seed_others():
    config = config_with({"rounds": 3, "trials_per_round": 3})
    first, again = run_search(config), run_search(config)
    assert first == again
    params = [[t["params"] for t in r["trials"]] for r in first]
    other = run_search(config_with({"rounds": 3, "trials_per_round": 3, "seed": 1}))
    assert [[t["params"] for t in r["trials"]] for r in other] != params
    # every round asks new points (a fresh sampler per round is seeded by the round), trial
    # numbers run on in (round, slot) order
    assert params[0] != params[1] != params[2]
    assert [t["trial"] for r in first for t in r["trials"]] == list(range(9))
    # floats are rounded to three significant digits, inside the range; choices keep their form
    for t in (t for r in first for t in r["trials"]):
        lr = t["params"]["lr"]
        assert 1e-4 <= lr <= 1e-1 and float(f"{lr:.3g}") == lr
        assert t["params"]["kernel_width"] in (3, [5, 5, 7])


def test_a_round_is_rebuilt_from_the_files_of_the_rounds_before_it():
    config = config_with({"rounds": 3, "trials_per_round": 2})
    results = run_search(config)
    # round 2 proposed again from the files of rounds 0 and 1 alone gives the same trials
    again = search_rounds.propose(config, "s", 2, results[:2])
    assert [r["params"] for r in again["runs"]] == [t["params"] for t in results[2]["trials"]]
    # TPE: the study it rebuilds holds every earlier trial with its value, in order
    study = search_space.rebuild(config["search"]["s"], results[:2])
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert [t.value for t in study.trials] == [t["value"] for r in results[:2] for t in r["trials"]]
    sampler = search_space.make_sampler(config["search"]["s"], 1)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    with pytest.raises(HpstudyError, match="needs the results of rounds 0..1"):
        search_rounds.propose(config, "s", 2, results[:1])


def test_tpe_moves_towards_the_better_region_after_the_random_start():
    config = config_with({"rounds": 6, "trials_per_round": 4, "space": {
        "lr": SPACE["lr"], "batch_size": {"choices": [32]}}})  # fmt: skip
    results = run_search(config)
    distance = [[abs(math.log10(t["params"]["lr"]) + 2) for t in r["trials"]] for r in results]
    assert np.mean(distance[-2:]) < np.mean(distance[0])  # later rounds sit closer to 1e-2


def test_a_diverged_trial_counts_at_chance_for_accuracy_and_fails_for_loss():
    config = config_with({"rounds": 1, "trials_per_round": 2})
    spec = config["search"]["s"]
    proposals = search_rounds.propose(config, "s", 0, [])
    told = search_rounds.tell(spec, proposals, [summary_of(proposals["runs"][0], diverged=True),
                                         summary_of(proposals["runs"][1])])  # fmt: skip
    assert told["trials"][0]["state"] == "diverged" and told["trials"][0]["value"] == 0.1
    loss = {**spec, "metric": "val_loss"}
    told = search_rounds.tell(loss, proposals, [summary_of(proposals["runs"][0], diverged=True),
                                         summary_of(proposals["runs"][1])])  # fmt: skip
    assert told["trials"][0]["state"] == "failed" and told["trials"][0]["value"] is None
    study = search_space.rebuild(loss, [told])
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]


def test_halving_keeps_the_best_third_and_extends_them():
    config = config_with({"rounds": 3, "trials_per_round": 9,
                          "halving": {"min_epochs": 1, "eta": 3}})  # fmt: skip
    results = run_search(config)
    assert [len(r["trials"]) for r in results] == [9, 3, 1]
    assert [r["trials"][0]["epochs"] for r in results] == [1, 3, 9]
    best3 = sorted(results[0]["trials"], key=lambda t: -t["value"])[:3]
    assert {t["trial"] for t in results[1]["trials"]} == {t["trial"] for t in best3}
    winner = max(results[1]["trials"], key=lambda t: t["value"])
    assert results[2]["trials"][0]["trial"] == winner["trial"]
    # survivors keep their parameters, and their runs keep the resume checkpoint
    proposals = search_rounds.propose(config, "s", 1, results[:1])
    assert all(r["settings"]["keep_checkpoint"] for r in proposals["runs"])
    assert all(r["settings"]["epochs"] == 3 for r in proposals["runs"])
    spec = config["search"]["s"]
    assert "rung 0: 9 trial(s) to 1 epochs" in search_spec.epoch_budget(spec, 10)
    assert "(21 epochs in all" in search_spec.epoch_budget(spec, 10)
    table = search.trials_table(spec, results)
    assert table["survived"].tolist()[:9].count(True) == 3 and table["survived"].iloc[-1] is None
    # the journal tells each trial once, at its last rung, with the earlier rungs' values
    study = search_space.rebuild(spec, results)
    assert len(study.trials) == 9
    top = study.trials[winner["trial"]]
    assert sorted(top.intermediate_values) == [1, 3, 9]


def test_the_journal_opens_in_optunas_own_storage(tmp_path):
    config = config_with({"rounds": 2, "trials_per_round": 2})
    results = run_search(config)
    path = tmp_path / "journal.log"
    search.write_journal(config["search"]["s"], "s", results, path)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    loaded = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    assert [t.value for t in loaded.trials] == [t["value"] for r in results for t in r["trials"]]
    assert loaded.best_trial.user_attrs["run_id"].startswith("digits-40-val0.2/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.log"]  # no temporary left


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": {"lrr": {"low": 0.1, "high": 1.0}}}, "'lrr' is not a training setting"),
        ({"space": {"keep_checkpoint": {"choices": [True]}}}, "changes how a run is computed"),
        ({"space": {"lr": {"low": 0.1, "high": 0.01}}}, "low (0.1) must be below high"),
        ({"space": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "a log range needs low > 0"),
        ({"space": {"optimizer": {"low": 0, "high": 1}}}, "optimizer is not a number"),
        ({"space": {"optimizer": {"choices": ["adam", "lion"]}}}, "lion"),
        ({"set": {"epochs": 3}, "halving": {"min_epochs": 1, "eta": 2}}, "drop set.epochs"),
    ],
)
def test_a_bad_search_is_refused_before_any_job(change, message):
    with pytest.raises(HpstudyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_with(change)


def test_a_choice_the_model_cannot_train_is_refused_where_the_sweep_is_planned():
    # kernel widths 7-7-7 need 44 px and the data is 40 px: refused before any round runs
    config = config_with({"space": {"kernel_width": {"choices": [3, [7, 7, 7]]}}})
    with pytest.raises(HpstudyError, match="search.s: dataset.image_size 40 .* 7-7-7 needs"):
        plan.build_plan(config)
    assert plan.build_plan(config_with({"space": {"kernel_width": {"choices": [3, 5]}}})).runs


def test_a_config_may_hold_a_search_alone_but_not_nothing():
    config = validate_config({"dataset": DATA, "search": {"s": {"space": SPACE}}})
    assert config["studies"] == {} and plan.build_plan(config).runs == {}
    with pytest.raises(HpstudyError, match="no `studies` and no `search`"):
        validate_config({"dataset": DATA})


def test_a_search_without_a_validation_split_is_refused_unless_on_test():
    no_val = {**DATA, "val_fraction": 0}
    spec = {"s": {"space": SPACE}}
    with pytest.raises(HpstudyError, match="val_fraction.*on_test: true"):
        validate_config({"dataset": no_val, "studies": {"a": {"param": "lr", "values": [1]}},
                         "search": spec})  # fmt: skip
    ok = validate_config({"dataset": no_val, "studies": {"a": {"param": "lr", "values": [1]}},
                          "search": {"s": {"space": SPACE, "on_test": True}}})  # fmt: skip
    assert search_spec.note(ok["search"]["s"]) == search_spec.ON_TEST
    assert search_spec.metric_of(ok["search"]["s"]) == "test_acc"
    with pytest.raises(HpstudyError, match="a study has the same name"):
        validate_config({"dataset": DATA, "studies": {"s": {"param": "lr", "values": [1]}},
                         "search": spec})  # fmt: skip


# --- exploration figures, through their objects ---------------------------------------------
def planted_trials(n=30) -> exploration.Trials:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "lr": 10 ** rng.uniform(-4, -1, n), "batch_size": rng.choice([32, 64, 128], n),
        "optimizer": rng.choice(["adam", "sgd"], n),
    })  # fmt: skip
    frame["value"] = 0.9 - 0.2 * np.abs(np.log10(frame["lr"]) + 2.5)  # lr alone matters
    frame["trial"], frame["state"] = range(n), "complete"
    return exploration.Trials(frame, ["lr", "batch_size", "optimizer"], "val_acc", "planted")


def test_importance_finds_the_one_setting_that_matters():
    found = exploration.importances(planted_trials())
    assert max(found, key=found.get) == "lr" and found["lr"] > 0.8
    assert sum(found.values()) == pytest.approx(1.0)
    fig = figures.importance_figure(planted_trials(), "s")
    bars = fig.axes[0].patches
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == "learning rate" and bars[-1].get_width() == pytest.approx(found["lr"])


def test_parallel_coordinates_draw_each_trial_coloured_by_its_metric():
    trials = planted_trials(12)
    fig = figures.parallel_coordinates_figure(trials, "s")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 4]
    assert len(lines) == 12  # one per trial, across 3 settings + the metric
    # drawn worst first, the best last (on top), in the colour of the highest value
    values = trials.frame["value"].to_numpy()
    assert lines[-1].get_ydata()[-1] == pytest.approx(1.0)
    best_colour = figures.colormaps["viridis"](1.0)
    assert np.allclose(lines[-1].get_color(), best_colour)
    assert lines[0].get_ydata()[-1] == pytest.approx(0.0) and values.min() < values.max()
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "val_acc"


def test_history_marks_the_best_so_far():
    trials = planted_trials(8)
    ax = figures.history_figure(trials, "s").axes[0]
    best = [ln for ln in ax.get_lines() if ln.get_label() == "best so far"][0]
    assert list(best.get_ydata()) == pytest.approx(list(trials.frame["value"].cummax()))


def test_a_grid_study_gets_its_runs_as_trials(tmp_path):
    from support.runfactory import Sweep, approach

    sweep = Sweep(tmp_path, data={"val_count": 50})
    sweep.study(
        "grid", ["lr", "batch_size"], [(lr, bs) for lr in (1e-3, 1e-2) for bs in (32, 64)],
        seeds=(0, 1), epochs=3,
        curves=lambda p, seed: {"val_acc": approach(0.3, 0.9 if p[0] == 1e-2 else 0.6, 3)},
    )  # fmt: skip
    summary, _ = sweep.tables()
    trials = exploration.study_trials(summary, "grid")
    assert len(trials.frame) == 8 and trials.metric == "val_acc"
    found = exploration.importances(trials)
    assert found["lr"] > found["batch_size"]


# --- through snakemake ------------------------------------------------------------------------
FLOW = {
    "dataset": DATA,
    "paths": {"results": "results/flow"},
    "threads": {"train": 1},
    "train": {"lr": 1.0e-3, "epochs": 1, "batch_size": 64},
    "seeds": [0, 1],
    "studies": {"lr": {"param": "lr", "values": [1.0e-4, 1.0e-3]}},
    "selection": {"metric": "val_acc"},
    "final": {"seeds": [0]},
    "search": {
        "small": {
            "space": {"lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
                      "batch_size": {"choices": [32, 64]}},
            "rounds": 2, "trials_per_round": 2,
        },
        # one point only: its trial is the grid's lr 1e-3 run (seed 0), reused
        "reuse": {"space": {"lr": {"choices": [1.0e-3]}}, "rounds": 1, "trials_per_round": 1},
        "halving": {
            "space": {"lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True}},
            "rounds": 2, "trials_per_round": 3, "halving": {"min_epochs": 1, "eta": 3},
        },
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """A checkout where the flow config (grid, selection, final runs, three searches) ran."""
    workdir = copy_repo(tmp_path_factory.mktemp("flow"))
    config = workdir / "config" / "flow.yaml"
    config.write_text(yaml.safe_dump(FLOW, sort_keys=False))
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir, config, proc


def trained(proc) -> list[str]:
    output = (proc.stdout + proc.stderr).splitlines()
    return [line.split("wildcards: ")[1] for line in output
            if line.strip().startswith("wildcards: variant=")]  # fmt: skip


@pytest.mark.slow
def test_a_small_search_runs_through_snakemake_and_a_rerun_does_nothing(flow):
    workdir, config, proc = flow
    results = workdir / "results/flow"
    trials = read_table(results / "search/small/trials.csv")
    assert trials["trial"].tolist() == [0, 1, 2, 3] and trials["round"].tolist() == [0, 0, 1, 1]
    assert (trials["state"] == "complete").all() and trials["value"].between(0, 1).all()
    assert (trials["note"] == search_spec.ON_VAL).all()
    best = yaml.safe_load((results / "search/small/best.yaml").read_text())
    top = trials.loc[trials["value"].idxmax()]
    assert best["studies"]["small"]["winner"]["values"]["lr"] == pytest.approx(top["lr"])
    for kind in search_figures():
        assert (results / f"search/small/figures/{kind}.png").stat().st_size > 10_000
    # the search goes through selection and the final runs, beside the grid study
    chosen = yaml.safe_load((results / "selection/best.yaml").read_text())
    assert set(chosen["studies"]) >= {"lr", "small"}
    final = read_table(results / "selection/final.csv")
    assert set(final["study"]) >= {"lr", "small"} and final["test_acc_mean"].between(0, 1).all()
    assert (final["train_on"] == "train+val").all()
    findings = (results / "findings.md").read_text()
    assert "## Selected and final" in findings and "## Data audit" in findings
    again = snakemake(workdir, "--cores", "2", "--configfile", str(config))
    assert "Nothing to be done" in again.stderr + again.stdout


def search_figures():
    from hpstudy.rule_targets import SEARCH_FIGURES

    return SEARCH_FIGURES


@pytest.mark.slow
def test_a_trial_equal_to_a_grid_run_is_that_run_trained_once(flow):
    workdir, _, proc = flow
    trial = read_table(workdir / "results/flow/search/reuse/trials.csv").iloc[0]
    grid = read_table(workdir / "results/flow/summary.csv")
    assert trial["run_id"] in set(grid["run_id"])
    runs = trained(proc)
    assert len(runs) > 10 and len(runs) == len(set(runs))  # no run trained twice
    variant, name, seed = trial["run_id"].split("/")
    expected = f"variant={variant}, name={name}, seed={seed.removeprefix('seed-')}"
    assert runs.count(expected) == 1


@pytest.mark.slow
def test_halving_extends_its_survivor_from_its_checkpoint(flow):
    workdir, _, _ = flow
    trials = read_table(workdir / "results/flow/search/halving/trials.csv")
    assert (
        trials["epochs"].tolist() == [1, 1, 1, 3]
        and trials["survived"].tolist()[:3].count(True) == 1
    )
    survivor = trials.iloc[3]
    first = trials[trials["trial"] == survivor["trial"]].iloc[0]
    runs = workdir / "results/runs"
    long_rows = pd.read_csv(runs / survivor["run_id"] / "metrics.csv")
    short_rows = pd.read_csv(runs / first["run_id"] / "metrics.csv")
    untimed = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"]
    assert long_rows[untimed].iloc[:1].equals(short_rows[untimed])  # it continued, bit for bit
    log = (runs / survivor["run_id"] / "train.log").read_text()
    assert "after epoch 1" in log and "resuming" in log
    # the pruned trials' checkpoints are cleared by the search's last step; the survivor's kept
    kept = [p for p in (workdir / "checkpoints").rglob("last.pt")]
    assert len(kept) == 1 and "lr-" in str(kept[0])


@pytest.mark.slow
def test_a_search_stopped_after_its_first_round_continues_to_the_same_trials(flow, tmp_path):
    workdir, config, _ = flow
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    original = read_table(workdir / "results/flow/search/small/trials.csv")
    # forget the search and the runs of its second round (a search stopped after round 0
    # never trained them), then stop it after round 0 again
    shutil.rmtree(copy / "results/flow/search/small")
    for run_id in original.loc[original["round"] == 1, "run_id"]:
        shutil.rmtree(copy / "results/runs" / run_id, ignore_errors=True)
    conf = copy / config.relative_to(workdir)
    snakemake(copy, "results/flow/search/small/results/round-0.json", "--cores", "2",
              "--configfile", str(conf))  # fmt: skip
    assert not (copy / "results/flow/search/small/proposals/round-1.json").exists()
    # on to the end of the search (not the selection, final runs and report after it)
    snakemake(copy, "results/flow/search/small/trials.csv", "--cores", "2",
              "--configfile", str(conf))  # fmt: skip
    again = read_table(copy / "results/flow/search/small/trials.csv")
    assert again.drop(columns=[]).equals(original)


@pytest.mark.slow
def test_a_config_of_one_search_alone_reuses_its_trials_and_selects_its_winner(flow, tmp_path):
    workdir, _, _ = flow
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    alone = {key: FLOW[key] for key in ("dataset", "threads", "train", "seeds", "selection")}
    alone |= {"paths": {"results": "results/alone"}, "final": {"seeds": [0]},
              "search": {"small": FLOW["search"]["small"]}}  # fmt: skip
    conf = copy / "config" / "alone.yaml"
    conf.write_text(yaml.safe_dump(alone, sort_keys=False))
    proc = snakemake(copy, "--cores", "2", "--configfile", str(conf))
    assert trained(proc) == []  # its trials and its final run were trained for the flow config
    results = copy / "results/alone"
    trials = read_table(results / "search/small/trials.csv")
    assert trials.equals(read_table(workdir / "results/flow/search/small/trials.csv"))
    final = read_table(results / "selection/final.csv")
    assert final["study"].tolist() == ["small"] and final["test_acc_mean"].between(0, 1).all()
    assert not (results / "summary.csv").exists()  # no grid, no grid tables
    again = snakemake(copy, "--cores", "2", "--configfile", str(conf))
    assert "Nothing to be done" in again.stderr + again.stdout


@pytest.mark.slow
def test_a_changed_near_duplicate_threshold_retrains_nothing(flow, tmp_path):
    workdir, config, _ = flow
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    conf = copy / config.relative_to(workdir)
    changed = {**FLOW, "audit": {"near_duplicate_bits": 2}}
    conf.write_text(yaml.safe_dump(changed, sort_keys=False))
    proc = snakemake(copy, "--cores", "2", "--configfile", str(conf))
    assert trained(proc) == []
    jobs = proc.stdout + proc.stderr
    assert "rule audit" in jobs and "rule findings" in jobs and "rule preprocess" not in jobs
    audit = json.loads(next((copy / "data/processed").glob("*/audit.json")).read_text())
    assert audit["near_duplicate_bits"] == 2


@pytest.mark.slow
def test_deleted_step_files_of_a_finished_search_are_written_again_training_nothing(flow, tmp_path):
    workdir, config, _ = flow
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    results = copy / "results/flow"
    steps = ["search/small/proposals/round-1.json", "search/small/results/round-1.json",
             "search/small/results/round-0.json", "selection/final-runs.json"]  # fmt: skip
    before = {name: json.loads((results / name).read_text()) for name in steps}
    trial = read_table(results / "search/small/trials.csv")["run_id"].iloc[0]
    for name in steps:
        (results / name).unlink()
    (copy / "results/runs" / trial / "params.json").unlink()  # an added run lost an output
    conf = copy / config.relative_to(workdir)
    proc = snakemake(copy, "--cores", "2", "--configfile", str(conf))
    assert trained(proc) == [f"variant={trial.split('/')[0]}, name={trial.split('/')[1]}, seed=0"]
    for name in steps:
        assert json.loads((results / name).read_text()) == before[name], name
    assert (copy / "results/runs" / trial / "params.json").is_file()
    again = snakemake(copy, "--cores", "2", "--configfile", str(conf))
    assert "Nothing to be done" in again.stderr + again.stdout
