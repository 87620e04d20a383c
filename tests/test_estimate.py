"""``hpstudy sweep --estimate``: a sweep priced from the runs measured on this machine
before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml
from conftest import copy_repo, shrunk_demo_config, snakemake

from hpstudy.cli import main as cli_main
from hpstudy.core.config import validate_config
from hpstudy.sweep import estimate
from hpstudy.sweep.run_times import Timings, makespan, scheduler_gap, timing_key

KEY = ("custom", 48, 256, "auto")  # the defaults at 48 px


def config_for(root, **extra) -> dict:
    raw = {
        "dataset": {"source": "digits", "name": "digits", "image_size": 48, "val_fraction": 0.2},
        "train": {"epochs": 4},
        "studies": {"lr": {"param": "lr", "values": [0.1, 0.01]}},
        "seeds": [0, 1, 2],
        "paths": {k: str(root / k) for k in ("data", "runs", "results", "checkpoints")},
        **extra,
    }
    return validate_config(raw)


def measured() -> Timings:
    """Runs of the default settings: 1 s start-up and 2 s per epoch (a 4-epoch run: 9 s)."""
    timings = Timings()
    for _ in range(3):
        timings.add(KEY, 2.0, 1.0)
    return timings


def test_a_grid_a_search_and_final_runs_are_priced_and_scheduled(tmp_path):
    search = {"s": {"space": {"lr": {"low": 0.001, "high": 0.1}}, "rounds": 2,
                    "trials_per_round": 2}}  # fmt: skip
    config = config_for(tmp_path, search=search, selection={}, final={"seeds": [0, 1]})
    found = estimate.estimate(config, jobs=2, timings=measured())
    # 6 grid runs, 2 x 2 trials, (1 study + 1 search) x 2 final seeds: all 9 s
    assert found.runs == 14 and found.unpriced == {}
    assert found.device_s == pytest.approx(14 * 9.0)
    # grid and search side by side on 2 slots (10 runs: 45 s; the search's two rounds in a
    # row: 18 s), then the 4 final runs (18 s)
    assert found.wall_s == pytest.approx(45.0 + 18.0)
    assert "search s: 2 rounds x 2 trials" in estimate.render(found, "c.yaml")


def test_the_gap_between_jobs_is_measured_and_scheduled_before_each_run_left(tmp_path):
    # one slot: ends at 10, 21.5, 33; starts 0.5 s (then 1.5 s) after an end; one run
    # started after a 100 s pause (left out) and one that recorded no times
    runs = [(0.0, 10.0), (10.5, 21.0), (22.5, 33.0), (133.0, 140.0)]
    summaries = [{"job_started_at": a, "job_ended_at": b} for a, b in runs] + [{}]
    assert scheduler_gap(summaries) == pytest.approx(1.0)  # the median of 0.5 and 1.5
    assert scheduler_gap([{}]) == 0.0
    # a finished run (0 s) takes no gap; three runs of 9 s on two slots: 9 + 1 + 9 + 1
    assert makespan([9.0, 9.0, 0.0, 9.0], 2, gap_s=1.0) == pytest.approx(20.0)
    timings = measured()
    timings.gap_s = 1.0
    config = config_for(tmp_path)  # 6 runs of 9 s
    assert estimate.estimate(config, jobs=1, timings=timings).wall_s == pytest.approx(60.0)


def test_finished_runs_cost_nothing_more_and_halving_prices_each_rung(tmp_path):
    search = {"h": {"space": {"lr": {"low": 0.001, "high": 0.1}}, "rounds": 2,
                    "trials_per_round": 4, "halving": {"min_epochs": 1, "eta": 2}}}  # fmt: skip
    config = config_for(tmp_path, search=search)
    from hpstudy.core.paths import Layout
    from hpstudy.sweep.plan import build_plan

    layout, plan = Layout.from_config(config), build_plan(config)
    done = layout.run_file(next(iter(plan.runs)), "summary.json")
    (tmp_path / done).parent.mkdir(parents=True)
    (tmp_path / done).write_text("{}")
    found = estimate.estimate(config, jobs=1, timings=measured())
    assert found.finished == 1
    # rung 0: 4 trials x (1 s + 1 epoch); rung 1: 2 survivors x (1 s + 1 more epoch)
    assert found.device_s == pytest.approx(6 * 9.0 + 4 * 3.0 + 2 * 3.0)
    assert found.left_s == pytest.approx(5 * 9.0 + 4 * 3.0 + 2 * 3.0)
    assert found.wall_s == pytest.approx(found.left_s)


def test_settings_never_measured_are_listed_not_priced(tmp_path):
    config = config_for(tmp_path)
    config["studies"]["bs"] = {"param": "batch_size", "values": [32]}
    config = validate_config(config)
    found = estimate.estimate(config, jobs=2, timings=measured())
    assert found.unpriced == {"custom at 48 px, batch 32, device auto": 3}
    assert found.wall_s is None
    assert "custom at 48 px, batch 32, device auto: 3 run(s)" in estimate.render(found, "c")


def test_only_runs_measured_on_this_machine_count(tmp_path):
    config = config_for(tmp_path)
    settings = config["train"]
    for i, device in enumerate(["this cpu", "another gpu"]):
        folder = tmp_path / "runs" / "digits-48-val0.2" / f"r{i}" / "seed-0"
        folder.mkdir(parents=True)
        summary = {"device_name": device, "mean_epoch_time_s": 2.0 + 10 * i,
                   "startup_device_s": 1.0,
                   "params": {"settings": settings, "data": {"image_size": 48}}}  # fmt: skip
        (folder / "summary.json").write_text(json.dumps(summary))
    timings = estimate.local_timings(tmp_path / "runs", {"this cpu"})
    assert timings.epoch_time(timing_key(settings, 48)) == 2.0


def test_the_cli_prints_the_estimate(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config_for(tmp_path)))))
    assert cli_main(["sweep", "--configfile", str(path), "--estimate", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "6 runs (0 already finished)" in out and "wall time at 2 job(s)" in out
    assert cli_main(["sweep", "--configfile", str(path)]) == 0
    assert "6 distinct runs" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.alone
def test_an_estimate_from_measured_runs_is_within_20_percent_of_the_wall_time(
    tmp_path, monkeypatch
):
    """The shrunk demo's weight-decay study: seeds 1-3 are trained first, and are what the
    estimate is measured from; seeds 4-6 are then estimated before they run and trained. The
    test has the machine to itself (``alone``, and last in its worker's queue). The estimate
    against the wall time their training takes (Snakemake's own planning, timed by a dry run,
    left out). Three waves of two runs as the basis, not two: the estimate takes the median run,
    so one wave slowed by something else on the machine (seen once: a wave of 7.8 s runs between
    two of 5.0 s, and an estimate 20 % high) does not move it."""
    workdir = copy_repo(tmp_path / "repo")
    path = shrunk_demo_config(workdir / "config" / "estimate.yaml")
    config = yaml.safe_load(path.read_text())
    config["studies"] = {"weight_decay": config["studies"]["weight_decay"]}
    monkeypatch.chdir(workdir)  # the config's paths are relative to the checkout
    # two runs at once, as the demo runs
    args = ("--cores", "2", "--configfile", str(path), "--until", "train")
    # torch's libraries read once, as any earlier run on this machine has read them: from a
    # cold page cache (measured after dropping it) the first runs start 1-2 s slower than the
    # later ones and the estimate comes out 30 % high
    subprocess.run([sys.executable, "-c", "import torch, torch._dynamo"], check=True)
    config["seeds"] = [1, 2, 3]
    path.write_text(yaml.safe_dump(config))
    snakemake(workdir, *args)
    config["seeds"] = [4, 5, 6]
    path.write_text(yaml.safe_dump(config))
    priced = estimate.estimate(validate_config(config), jobs=2)
    assert priced.unpriced == {} and priced.runs == 6 and priced.finished == 0
    start = time.perf_counter()
    snakemake(workdir, "-n", *args)
    planning = time.perf_counter() - start
    start = time.perf_counter()
    snakemake(workdir, *args)
    wall = time.perf_counter() - start - planning
    print(f"estimate {priced.wall_s:.1f} s, took {wall:.1f} s (+ {planning:.1f} s planning)")
    assert abs(priced.wall_s - wall) <= 0.2 * wall, (priced.wall_s, wall, planning)


def test_sequential_seeds_are_priced_at_their_worst_case(tmp_path):
    config = config_for(tmp_path)
    config = {**config, "findings": {**config["findings"], "sequential": {"max_seeds": 5}}}
    found = estimate.estimate(config, jobs=1, timings=measured())
    # 6 runs now, 2 settings x 2 more seeds later, each 9 s
    assert found.runs == 10 and found.wall_s == pytest.approx(10 * 9.0)
    assert "sequential seeds: up to 4 more runs" in estimate.render(found, "c")


def test_rounds_and_final_runs_already_proposed_are_priced_from_their_runs(tmp_path):
    from hpstudy.core.paths import Layout
    from hpstudy.sweep import added_runs

    search = {"s": {"space": {"lr": {"low": 0.001, "high": 0.1}}, "rounds": 2,
                    "trials_per_round": 2}}  # fmt: skip
    config = config_for(tmp_path, search=search, selection={}, final={"seeds": [0]})
    layout = Layout.from_config(config)
    trials = [{"study": "s", "settings": {**config["train"], "lr": lr}, "seed": 0}
              for lr in (0.05, 0.02)]  # fmt: skip
    added_runs.write(layout.proposals("s", 0), "search", trials)
    [(_, first)] = added_runs.read(layout.proposals("s", 0), "digits-48-val0.2", config["dataset"])[
        :1
    ]
    (tmp_path / layout.run_file(first.run_id, "summary.json")).parent.mkdir(parents=True)
    (tmp_path / layout.run_file(first.run_id, "summary.json")).write_text("{}")
    added_runs.write(layout.selection_file("final-runs.json"), "final", trials[:1])
    found = estimate.estimate(config, jobs=1, timings=measured())
    # 6 grid runs, 2 + 2 trials, 1 final run (the first trial's run again: finished)
    assert found.runs == 11 and found.finished == 2
    assert found.left_s == pytest.approx(9 * 9.0)
