"""The looks of a sequential sweep on synthetic runs: each look judges the open claims on their
first seeds, adds the next seeds to exactly the settings they compare, and a claim stops at its
first decided look or at the limit; the findings then say where each stopped."""

from __future__ import annotations

import json

import numpy as np
from support.runfactory import Sweep, approach, write_run

from hpstudy.cli import main as cli_main
from hpstudy.core.stats import HOLDS
from hpstudy.report import findings, looks
from hpstudy.report.sequential import DECIDED, schedule

rng = np.random.default_rng(19)
NOISE = {b: rng.normal(0, 0.015, 20) for b in (10, 256, 450)}
TRUTH = {10: 0.86, 256: 0.86, 450: 0.80}  # smaller batches 6 points better at the ends


def curves(bs, seed, epochs=3):
    final = float(TRUTH[bs] + NOISE[bs][seed])
    return {"test_acc": approach(0.3, final, epochs)[:-1] + [final]}


def train_added(sweep: Sweep, look: dict) -> None:
    """What the train rule does with a look's added runs: train them (here: write them)."""
    for entry in look["runs"]:
        bs = entry["settings"]["batch_size"]
        rid = write_run(sweep.runs_dir, seed=entry["seed"], **curves(bs, entry["seed"]),
                        **entry["settings"])  # fmt: skip
        assert rid == entry["run_id"], "an added seed is an ordinary run of the same setting"


def test_looks_add_seeds_to_open_claims_only_and_stop_at_a_decision(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study("bs", "batch_size", list(TRUTH), seeds=(0, 1, 2), epochs=3, curves=curves)
    sweep.aggregate()
    plan = schedule(3, 2, 9)
    previous = []
    for k in range(len(plan)):
        result = looks.look(sweep.runs_dir, sweep.membership, previous, k, plan, 0.02)
        train_added(sweep, result)
        previous.append(json.loads(json.dumps(result)))
        if k == 0:
            first = result
    state = previous[-1]["claims"]
    assert set(state) == {"bs/smaller-higher", "bs/smaller-faster", "bs/epoch-time"}
    # look 1: the accuracy claim is open, so every setting it compares gets seeds 3 and 4
    assert first["claims"]["bs/smaller-higher"]["status"] == looks.OPEN
    assert {e["seed"] for e in first["runs"]} == {3, 4} and len(first["runs"]) == 6
    # the epoch time is the same on every seed: settled at the first look
    time = state["bs/epoch-time"]
    assert time["status"] == DECIDED and time["look"] == 1 and time["n"] == 3
    # the accuracy claim holds at the second look, on five seeds, and adds nothing after it
    accuracy = state["bs/smaller-higher"]
    assert (accuracy["status"], accuracy["verdict"], accuracy["n"]) == (DECIDED, HOLDS, 5)
    assert accuracy["looks"] == f"look 2 of {len(plan)}, 5 seeds, 98.75% intervals: decided"
    assert all(look["runs"] == [] for look in previous[1:])


def test_a_look_file_is_an_added_runs_file_and_findings_report_the_looks(tmp_path):
    sweep = Sweep(tmp_path)
    sweep.study("bs", "batch_size", list(TRUTH), seeds=(0, 1, 2), epochs=3, curves=curves)
    sweep.aggregate()
    membership = tmp_path / "membership.json"
    membership.write_text(json.dumps(sweep.membership))
    plan = ",".join(map(str, schedule(3, 2, 5)))
    out = [tmp_path / "findings" / "looks" / f"look-{k}.json" for k in (0, 1)]
    base = ["looks", "--runs-dir", str(sweep.runs_dir), "--membership", str(membership),
            "--looks", plan, "--margin", "0.02", "--findings"]  # fmt: skip
    assert cli_main([*base, "--look", "0", "--out", str(out[0])]) == 0
    look0 = json.loads(out[0].read_text())
    assert look0["source"] == looks.SOURCE and look0["runs"]
    train_added(sweep, look0)
    assert cli_main([*base, "--look", "1", "--previous", str(out[0]), "--out", str(out[1])]) == 0
    assert json.loads(out[1].read_text())["runs"] == []  # the last look adds nothing
    (sweep.out / "comparison.csv").write_text("kind\n")
    found = findings.write_findings(sweep.out, sweep.out / "findings.md", sweep.runs_dir,
                                    looks=out[1])  # fmt: skip
    accuracy = next(f for f in found if f.key == "smaller-higher")
    assert accuracy.looks.startswith("look ") and accuracy.evidence[0].startswith("sequential:")
    text = (sweep.out / "findings.md").read_text()
    assert "| looks |" in text and "1 - 0.05/K" in text
