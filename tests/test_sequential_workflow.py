"""Two sequential sweeps end to end on the tiny two-seed digits sweep: looks as checkpoints
that add seeds as ordinary runs, findings that say where each claim stopped, a selection that
settles itself, and a rerun of a settled sweep that does nothing."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import snakemake, tiny_two_seed_config

from hpstudy.core.paths import Layout
from hpstudy.sweep import added_runs

LOOKS = {"max_seeds": 4, "step": 2}  # looks at 2 and 4 seeds


def run_sequential(workdir, config, **blocks):
    """Extend the tiny sweep's config with ``blocks``, run it, and return its looks."""
    tiny_two_seed_config(config, **blocks)
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    layout = Layout(results="results/tiny")
    files = [workdir / "results/tiny/findings/looks" / f"look-{k}.json" for k in (0, 1)]
    assert all(f.is_file() for f in files)
    assert set(added_runs.files(layout, workdir)) >= set(files), "hpstudy restore sees the looks"
    return [json.loads(f.read_text()) for f in files]


def assert_settled_rerun_does_nothing(workdir, config):
    dry = snakemake(workdir, "-n", "--cores", "1", "--configfile", str(config))
    assert "Nothing to be done" in dry.stdout + dry.stderr


def assert_added_runs_trained(workdir, looks):
    for entry in looks[0]["runs"]:
        assert entry["seed"] in (2, 3)
        assert (workdir / "results/runs" / entry["run_id"] / "summary.json").is_file()
    assert looks[1]["runs"] == [], "the last look adds nothing"


@pytest.mark.slow
def test_findings_settle_themselves_over_looks(tiny_copy):
    workdir, config = tiny_copy
    looks = run_sequential(workdir, config, findings={"sequential": LOOKS})
    assert_added_runs_trained(workdir, looks)
    claims = looks[1]["claims"]
    assert claims and all(c["status"] in ("decided", "limit reached") for c in claims.values())
    opened = {
        n for c in looks[0]["claims"].values() if c["status"] == "open" for n in c["settings"]
    }
    assert {e["run_id"].split("/")[1] for e in looks[0]["runs"]} == opened
    text = (workdir / "results/tiny/findings.md").read_text()
    assert "| looks |" in text
    assert (
        "look 1 of 2, 2 seeds, 97.5% intervals: decided" in text or "look 2 of 2, 4 seeds" in text
    )
    assert_settled_rerun_does_nothing(workdir, config)


@pytest.mark.slow
def test_a_selection_settles_itself_over_looks(tiny_copy):
    workdir, config = tiny_copy
    looks = run_sequential(workdir, config, selection={"sequential": LOOKS})
    assert_added_runs_trained(workdir, looks)
    assert set(looks[1]["claims"]) == {"batch_size/selection-separable"}
    best = yaml.safe_load((workdir / "results/tiny/selection/best.yaml").read_text())
    chosen = best["studies"]["batch_size"]
    state = looks[1]["claims"]["batch_size/selection-separable"]
    assert chosen["sequential"] == state["looks"]
    assert chosen["winner"]["seeds"] == state["n"]
    assert_settled_rerun_does_nothing(workdir, config)
