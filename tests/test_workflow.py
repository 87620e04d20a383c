"""The workflow end to end: dry runs, lint, bad configs, and real runs of the demo config."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, copy_repo, snakemake

TRAIN_JOBS = re.compile(r"^train\s+(\d+)$", re.MULTILINE)


def planned_train_jobs(proc) -> int:
    """How many train jobs a (dry) run lists in its job stats."""
    found = TRAIN_JOBS.search(proc.stdout + proc.stderr)
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("repo"))


@pytest.mark.parametrize("configfile", [None, "config/demo.yaml"])
def test_dry_run_plans_every_run(workdir, configfile, monkeypatch):
    # No Kaggle credentials anywhere: planning must not import or authenticate kaggle.
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(workdir / "no-kaggle-here"))
    args = ["-n", "--cores", "1"] + (["--configfile", configfile] if configfile else [])
    proc = snakemake(workdir, *args)
    assert planned_train_jobs(proc) == 11
    assert ("fetch_weights" in proc.stdout) == (configfile is None), "pretrained only in the seed"
    assert not (workdir / "data").exists(), "a dry run writes nothing"


def test_default_profile_applies_and_no_credentials_is_one_clear_error(tmp_path, monkeypatch):
    workdir = copy_repo(tmp_path)  # its own copy: this run writes a log under results/
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(workdir / "no-kaggle-here"))
    monkeypatch.setenv("HOME", str(workdir / "no-home"))
    proc = snakemake(
        workdir, "--cores", "1", "data/raw/intel-image-classification.zip", check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Using workflow specific profile profiles/default" in out
    # the profile's show-failed-logs prints the job's one-paragraph error
    assert "hpstudy: error: Cannot download the Kaggle dataset" in out
    assert "dataset.source: archive" in out and "KAGGLE_USERNAME" in out
    assert not (workdir / "data/raw/intel-image-classification.zip").exists()


def test_lint_is_clean(workdir):
    proc = snakemake(workdir, "--lint", "--cores", "1")
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("lr", -1.0, "train.lr"),
        ("batch_size", 0, "train.batch_size"),
        ("learning_rate", 0.1, "'learning_rate' was unexpected"),
    ],
)
def test_bad_config_stops_before_any_job(workdir, tmp_path, key, value, expected):
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["train"][key] = value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "--cores", "1", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr and "config/README.md" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (workdir / "data").exists() and not (workdir / "results").exists()


def test_data_stage_of_the_demo(tmp_path):
    workdir = copy_repo(tmp_path)
    snakemake(
        workdir,
        "data/processed/digits-48/manifest.json",
        "--cores",
        "2",
        "--configfile",
        "config/demo.yaml",
    )
    manifest = json.loads((workdir / "data/processed/digits-48/manifest.json").read_text())
    assert manifest["classes"] == [f"digit_{i}" for i in range(10)]
    assert manifest["splits"]["train"]["count"] == 1437
    assert manifest["splits"]["test"]["count"] == 360
    assert manifest["skipped"] == [] and "pred" not in manifest["splits"]
    x = np.load(workdir / "data/processed/digits-48/train_x.npy", mmap_mode="r")
    y = np.load(workdir / "data/processed/digits-48/train_y.npy")
    assert x.shape == (1437, 48, 48, 3) and x.dtype == np.uint8
    assert sorted(np.bincount(y)) == sorted(manifest["splits"]["train"]["per_class"].values())
    raw = json.loads((workdir / "data/raw/digits.json").read_text())
    assert raw["size_bytes"] == (workdir / "data/raw/digits.zip").stat().st_size


@pytest.mark.slow
def test_demo_trains_every_run_and_a_rerun_does_nothing(demo_run):
    workdir, config, first = demo_run
    assert planned_train_jobs(first) == 11
    summaries = sorted((workdir / "results/runs").glob("*/*/seed-0/summary.json"))
    assert len(summaries) == 11
    for path in summaries:
        summary = json.loads(path.read_text())
        settings = summary["settings"]
        assert summary["epochs_completed"] == settings["epochs"] or summary["diverged"]
        metrics = (path.parent / "metrics.csv").read_text().strip().splitlines()
        assert len(metrics) == 1 + summary["epochs_completed"]
    again = snakemake(workdir, "--cores", "2", "--resources", "gpu=1", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_demo_effects_are_visible(demo_run):
    workdir, _, _ = demo_run
    runs = workdir / "results/runs"

    def final_acc(run_id):
        return json.loads((runs / run_id / "summary.json").read_text())["final_test_acc"]

    assert final_acc("learning_rate/lr-1e-07/seed-0") < 0.3, "lr 1e-7 barely learns"
    assert final_acc("learning_rate/lr-1e-04/seed-0") > 0.5
    assert final_acc("weight_decay/wd-1e+00/seed-0") < 0.3, "wd 1.0 collapses"
    assert final_acc("batch_size/bs-10/seed-0") > 0.5, "many small steps learn in two epochs"


@pytest.mark.slow
def test_results_and_report_from_the_finished_demo(demo_run):
    workdir, config, _ = demo_run
    results = workdir / "results"
    summary = pd.read_csv(results / "summary.csv")
    metrics = pd.read_csv(results / "metrics.csv")
    assert len(summary) == 11
    epochs = {
        rid: json.loads((results / "runs" / rid / "summary.json").read_text())["epochs_completed"]
        for rid in summary["run_id"]
    }
    assert len(metrics) == sum(epochs.values())
    findings = (results / "findings.md").read_text()
    for rule in ("learning rate", "batch size", "kernel width", "weight decay"):
        assert rule in findings.lower()
    comparison = pd.read_csv(results / "comparison.csv")
    assert comparison.empty, "the digits match none of the seed's runs"
    snakemake(
        workdir,
        "--cores",
        "1",
        "--configfile",
        str(config),
        "--report",
        str(results / "report.html"),
    )
    html = (results / "report.html").read_text(errors="replace")
    assert "findings" in html and "learning_rate" in html


@pytest.mark.slow
def test_a_changed_setting_retrains_exactly_the_runs_it_reaches(demo_run, tmp_path):
    workdir, config_path, _ = demo_run
    config = yaml.safe_load(config_path.read_text())
    # A study's fixed setting changes in place: the params trigger reruns that study only.
    config["studies"]["kernel_width"]["set"]["eval_batch_size"] = 100
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False))
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(changed))
    assert planned_train_jobs(plan) == 3
    planned = set(re.findall(r"wildcards: run_id=(\S+)", plan.stdout))
    assert planned == {f"kernel_width/kw-{k}/seed-0" for k in (3, 5, 7)}
    assert "Params have changed since last execution" in plan.stdout
    # A changed value is one new run; train it for real.
    config = yaml.safe_load(config_path.read_text())
    config["studies"]["batch_size"]["values"] = [10, 256, 400]
    changed.write_text(yaml.safe_dump(config, sort_keys=False))
    run = snakemake(workdir, "--cores", "2", "--resources", "gpu=1", "--configfile", str(changed))
    assert planned_train_jobs(run) == 1
    log = run.stdout + run.stderr
    assert re.search(r"^aggregate\s+1$", log, re.MULTILINE), "the tables are rebuilt"
    assert "figure_curves" in log
    assert not re.search(r"^(fetch_data|preprocess)\s+\d", log, re.MULTILINE)
    summary = pd.read_csv(workdir / "results/summary.csv")
    assert "batch_size/bs-400/seed-0" in set(summary["run_id"])
    assert "batch_size/bs-450/seed-0" not in set(summary["run_id"])
    assert len(summary) == 11
