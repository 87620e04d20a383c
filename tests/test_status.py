"""``hpstudy status``: a sweep stopped half-way (finished, running, failed, waiting and
not-yet-planned runs) and a finished one, read from files alone, without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from hpstudy.cli import main as cli_main
from hpstudy.core.config import validate_config
from hpstudy.core.paths import Layout
from hpstudy.sweep import added_runs, status
from hpstudy.sweep.plan import build_plan
from hpstudy.training.run_lock import run_lock

LRS = [0.1, 0.01, 0.001, 0.0001]


def config_for(root, final=True) -> dict:
    """Two studies sharing a run, a search of two rounds and final runs, under ``root``."""
    raw = {
        "dataset": {"source": "digits", "name": "digits", "image_size": 48, "val_fraction": 0.2},
        "train": {"epochs": 4},
        "studies": {
            "lr": {"param": "lr", "values": LRS},
            "again": {"param": "lr", "values": [0.1]},  # the lr study's first run
        },
        "seeds": [0],
        "search": {
            "s": {
                "space": {"lr": {"low": 0.001, "high": 0.1, "log": True}},
                "rounds": 2,
                "trials_per_round": 2,
            }
        },  # fmt: skip
        "paths": {k: str(root / k) for k in ("data", "runs", "results", "checkpoints")},
        "selection": {},
    }
    if final:
        raw["final"] = {"seeds": [0, 1]}
    return validate_config(raw)


def finish(layout: Layout, run, epoch_s: float = 2.0) -> None:
    """A finished run folder: what status reads of it."""
    folder = layout.run_dir(run.run_id)
    os.makedirs(folder, exist_ok=True)
    summary = {"mean_epoch_time_s": epoch_s, "startup_device_s": 1.0,
               "params": {"settings": run.settings, "data": {"image_size": 48}}}  # fmt: skip
    with open(f"{folder}/summary.json", "w") as fh:
        json.dump(summary, fh)


def epochs_done(layout: Layout, run, times: list[float], age_s: float = 0.0) -> None:
    """A run folder with some epochs in its metrics.csv, written ``age_s`` seconds ago."""
    folder = layout.run_dir(run.run_id)
    os.makedirs(folder, exist_ok=True)
    path = f"{folder}/metrics.csv"
    with open(path, "w") as fh:
        fh.write("epoch,epoch_time_s\n" + "".join(f"{i + 1},{t}\n" for i, t in enumerate(times)))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def write_log(layout: Layout, run, text: str) -> None:
    folder = layout.run_dir(run.run_id)
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/train.log", "w") as fh:
        fh.write(text)


def search_round(config, layout: Layout, round_: int, lrs) -> None:
    added_runs.write(layout.proposals("s", round_), "search",
                [{"study": "s", "settings": {**config["train"], "lr": lr}, "seed": 0}
                 for lr in lrs])  # fmt: skip


@pytest.fixture
def half_way(tmp_path):
    """lr=0.1 finished, 0.01 running (its lock held), 0.001 running (fresh metrics, no lock
    on this host), 0.0001 failed; the search's round 0 proposed and waiting, round 1 and the
    final runs not planned yet; a killed run with stale metrics waits."""
    config = config_for(tmp_path)
    layout, plan = Layout.from_config(config), build_plan(config)
    runs = [plan.runs[rid] for rid in plan.studies["lr"].run_ids()]
    finish(layout, runs[0])
    epochs_done(layout, runs[1], [3.0])
    epochs_done(layout, runs[2], [2.0, 2.0], age_s=1.0)
    write_log(layout, runs[3], "2026-01-01 10:00:00 INFO start\nhpstudy: error: The data is"
              " gone.\nFetch it again.\n")  # fmt: skip
    search_round(config, layout, 0, [0.05, 0.02])
    search_ids = [r.run_id for _, r in added_runs.read(layout.proposals("s", 0), plan.variant,
                                                  config["dataset"])]  # fmt: skip
    epochs_done(layout, plan.runs.get(search_ids[0]) or _run(config, search_ids[0]),
                [2.0], age_s=3600)  # fmt: skip
    write_log(layout, _run(config, search_ids[0]), "2026-01-01 INFO epoch 1\nKilled\n")
    lock = layout.lock_file(runs[1].variant, runs[1].trajectory, runs[1].seed)
    with run_lock(lock, runs[1].run_id):
        yield config, runs, search_ids


def _run(config, run_id):
    layout, plan = Layout.from_config(config), build_plan(config)
    pairs = added_runs.read(layout.proposals("s", 0), plan.variant, config["dataset"])
    return next(r for _, r in pairs if r.run_id == run_id)


def test_a_sweep_half_way_counts_each_state_and_each_run_once(half_way):
    config, runs, search_ids = half_way
    found = status.collect(config)
    states = {rid: s.state for rid, s in found.states.items()}
    assert [states[r.run_id] for r in runs] == ["finished", "running", "running", "failed"]
    assert [states[r] for r in search_ids] == ["waiting", "waiting"]
    table = status.counts(found)
    assert table["study lr"] == {"finished": 1, "running": 2, "waiting": 0, "failed": 1,
                                 "not planned yet": 0}  # fmt: skip
    assert sum(table["study again"].values()) == 0  # its one run is the lr study's, counted there
    assert table["search s"]["waiting"] == 2 and table["search s"]["not planned yet"] == 2
    # final runs: one winner per study and search, two seeds each
    assert table["selection final runs"]["not planned yet"] == 6
    assert table["sweep"] == {"finished": 1, "running": 2, "waiting": 2, "failed": 1,
                              "not planned yet": 8}  # fmt: skip
    assert len(found.states) == 6


def test_running_runs_get_their_epoch_and_eta_and_the_sweep_its_eta(half_way):
    config, runs, _ = half_way
    found = status.collect(config, jobs=2)
    fresh = found.states[runs[2].run_id]  # two epochs of 2 s done, two to go, 1 s ago
    assert fresh.done == 2 and fresh.eta_s == pytest.approx(3.0, abs=0.5)
    locked = found.states[runs[1].run_id]  # one epoch of 3 s done (its file just written)
    assert locked.done == 1 and locked.eta_s == pytest.approx(9.0, abs=0.5)
    # waiting search trials: 1 s start-up + 4 epochs x 2 s (the finished run's times)
    remaining = [fresh.eta_s, locked.eta_s, 9.0, 9.0]
    assert found.eta_s == pytest.approx(status.makespan(remaining, 2), abs=0.5)
    text = status.render(found, "c.yaml")
    assert f"{runs[1].run_id}  epoch 2/4" in text and "at 2 job(s) at once" in text
    assert runs[3].run_id in text.split("failed (see")[1]


def test_a_finished_sweep_has_nothing_left(tmp_path, capsys):
    config = config_for(tmp_path, final=False)
    layout = Layout.from_config(config)
    for round_, lrs in enumerate([[0.05, 0.02], [0.03, 0.04]]):
        search_round(config, layout, round_, lrs)
    found = status.collect(config)
    for state in found.states.values():
        finish(layout, state.run)
    found = status.collect(config)
    assert status.counts(found)["sweep"] == {"finished": 8, "running": 0, "waiting": 0,
                                             "failed": 0, "not planned yet": 0}  # fmt: skip
    assert found.eta_s == 0
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(config))
    assert cli_main(["status", "--configfile", str(path)]) == 0
    out = capsys.readouterr().out
    assert "8 runs planned" in out and "sweep ETA: 0 s" in out


def test_status_never_imports_torch(tmp_path):
    """Safe on a login node: status plans and reads with torch blocked."""
    config = config_for(tmp_path)
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'pandas', 'matplotlib', 'optuna'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from hpstudy.cli import main\n"
        f"sys.exit(main(['status', '--configfile', {str(tmp_path / 'c.yaml')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 runs planned" in done.stdout and "not planned yet" in done.stdout


def test_a_log_that_goes_on_after_an_error_is_not_failed(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("hpstudy: error: once\n2026-01-01 INFO retried\n")
    assert not status.log_failed(log)
    log.write_text("2026-01-01 INFO go\nhpstudy: error: The run stops.\nIts fix.\n")
    assert status.log_failed(log)
    assert status.duration(30) == "30 s" and status.duration(7300) == "2 h 02 min"


def test_sequential_seeds_are_not_planned_yet_at_their_worst_case(tmp_path):
    config = config_for(tmp_path, final=False)
    config = {**config, "findings": {**config["findings"], "sequential": {"max_seeds": 3}}}
    table = status.counts(status.collect(config))
    # four settings (again's one is lr's first, counted once) x two more seeds each
    assert table["sequential looks"]["not planned yet"] == 8
