"""The workflow end to end: dry runs, lint, bad configs, real runs of the demo config, what a
change retrains, and the faults a user meets on the way."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, copy_repo, snakemake

TRAIN_JOBS = re.compile(r"^train\s+(\d+)$", re.MULTILINE)
DEMO = "config/demo.yaml"


def planned_train_jobs(proc) -> int:
    """How many train jobs a (dry) run lists in its job stats."""
    found = TRAIN_JOBS.search(proc.stdout + proc.stderr)
    return int(found.group(1)) if found else 0


def planned_runs(proc) -> set[str]:
    """The run ids of the train jobs a (dry) run lists."""
    found = re.findall(
        r"wildcards: variant=([^,\s]+), name=([^,\s]+), seed=(\d+)", proc.stdout + proc.stderr
    )
    return {f"{variant}/{name}/seed-{seed}" for variant, name, seed in found}


def nothing_to_do(proc) -> bool:
    return "Nothing to be done" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("repo"))


@pytest.mark.parametrize("configfile", [None, DEMO])
def test_dry_run_plans_every_distinct_run_once(workdir, configfile, monkeypatch):
    # No Kaggle credentials anywhere: planning must not import or authenticate kaggle.
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(workdir / "no-kaggle-here"))
    args = ["-n", "--cores", "1"] + (["--configfile", configfile] if configfile else [])
    proc = snakemake(workdir, *args)
    # 12 study points, 3 seeds each; batch 256 is the 5-5-7 network, and batch 450 at the
    # default weight decay is one run in two studies: 10 distinct settings
    assert planned_train_jobs(proc) == 30
    assert ("fetch_weights" in proc.stdout) == (configfile is None), "pretrained only in the seed"
    assert not (workdir / "data").exists(), "a dry run writes nothing"


def test_default_profile_applies_and_a_failed_jobs_error_is_said_last(tmp_path, monkeypatch):
    workdir = copy_repo(tmp_path)  # its own copy: this run writes a log under data/
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
    paragraph = "hpstudy: error: Cannot download the Kaggle dataset"
    assert paragraph in out and "dataset.source: archive" in out and "KAGGLE_USERNAME" in out
    # said again after Snakemake's own error summary, so it is what the user reads last
    tail = proc.stderr[proc.stderr.rindex("Error in rule fetch_data") :]
    assert paragraph in tail[tail.index("what went wrong") :]
    assert not (workdir / "data/raw/intel-image-classification.zip").exists()


def test_lint_is_clean(workdir):
    proc = snakemake(workdir, "--lint", "--cores", "1")
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def bad_demo(tmp_path, mutate) -> str:
    config = yaml.safe_load((REPO / DEMO).read_text())
    mutate(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["train"].update(lr=-1.0), "train.lr"),
        (lambda c: c["train"].update(batch_size=0), "train.batch_size"),
        (lambda c: c["train"].update(learning_rate=0.1), "'learning_rate' was unexpected"),
        (lambda c: c["train"].update(lr=float("nan")), "train.lr: nan is not a finite number"),
        (lambda c: c["dataset"].update(image_size=40), "custom CNN with kernel widths 7-7-7"),
        (lambda c: c["studies"]["batch_size"].update(set={"pretrained": True}),
         "no ImageNet weights"),
    ],
)  # fmt: skip
def test_bad_config_stops_before_any_job(workdir, tmp_path, mutate, expected):
    proc = snakemake(
        workdir, "--cores", "1", "--configfile", bad_demo(tmp_path, mutate), check=False
    )
    assert proc.returncode != 0
    assert expected in proc.stderr and "config/README.md" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (workdir / "data").exists() and not (workdir / "results").exists()


def test_data_stage_of_the_demo(tmp_path):
    workdir = copy_repo(tmp_path)
    snakemake(
        workdir, "data/processed/digits-48/manifest.json", "--cores", "2", "--configfile", DEMO
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


def run_summaries(workdir):
    return {
        p.parent.relative_to(workdir / "results/runs").as_posix(): json.loads(p.read_text())
        for p in (workdir / "results/runs").glob("*/*/seed-*/summary.json")
    }


@pytest.mark.slow
def test_demo_trains_every_run_once_and_a_rerun_does_nothing(demo_run):
    workdir, config, first = demo_run
    assert planned_train_jobs(first) == 10
    summaries = run_summaries(workdir)
    assert len(summaries) == 10
    for run_id, summary in summaries.items():
        assert (
            summary["epochs_completed"] == summary["params"]["settings"]["epochs"]
            or summary["diverged"]
        )
        metrics = (
            (workdir / "results/runs" / run_id / "metrics.csv").read_text().strip().splitlines()
        )
        assert len(metrics) == 1 + summary["epochs_completed"]
    assert not list((workdir / "checkpoints").glob("digits-48/*")), "finished runs keep no folder"
    assert not list(workdir.rglob(".*.tmp-*")), "no temporary file is left behind"
    again = snakemake(workdir, "--cores", "2", "--resources", "gpu=1", "--configfile", str(config))
    assert nothing_to_do(again)


@pytest.mark.slow
def test_demo_effects_are_visible(demo_run):
    workdir, _, _ = demo_run
    summaries = run_summaries(workdir)

    def final_acc(name):
        return summaries[f"digits-48/{name}/seed-0"]["final_test_acc"]

    assert final_acc("model-resnet18_lr-1e-07_bs-32_ep-1") < 0.3, "lr 1e-7 barely learns"
    assert final_acc("model-resnet18_bs-32_ep-1") > 0.3, "lr 1e-4 learns in one epoch"
    assert final_acc("lr-0.001_wd-1_bs-450_ep-2") < 0.3, "wd 1.0 collapses"
    assert final_acc("lr-0.001_bs-10_ep-2") > 0.5, "many small steps learn in two epochs"


@pytest.mark.slow
def test_results_and_report_from_the_finished_demo(demo_run):
    workdir, config, _ = demo_run
    results = workdir / "results" / "demo"
    summary = pd.read_csv(results / "summary.csv")
    metrics = pd.read_csv(results / "metrics.csv")
    assert len(summary) == 12 and summary["run_id"].nunique() == 10
    shared = summary[summary["name"] == "lr-0.001_bs-450_ep-2"]
    assert shared["study"].tolist() == ["batch_size", "weight_decay"]
    epochs = {rid: s["epochs_completed"] for rid, s in run_summaries(workdir).items()}
    assert len(metrics) == sum(epochs.values())
    findings = (results / "findings.md").read_text()
    for rule in ("learning rate", "batch size", "kernel width", "weight decay"):
        assert rule in findings.lower()
    assert pd.read_csv(results / "comparison.csv").empty, "the digits match none of the post's runs"
    assert not list((results / "figures").glob("*/post.png")), "nothing to compare: no figure"
    headline = json.loads((results / "headline.json").read_text())
    assert set(headline["studies"]) == {
        "learning_rate",
        "batch_size",
        "kernel_width",
        "weight_decay",
    }
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
def test_what_a_change_retrains(demo_copy):
    workdir, config_path = demo_copy
    config = yaml.safe_load(config_path.read_text())
    # an execution setting changes no number: nothing retrains
    config["train"]["eval_batch_size"] = 100
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert nothing_to_do(snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config_path)))
    # a finished run that lost one output (its weights) is trained again, and only it
    lost = "digits-48/lr-0.001_bs-10_ep-2/seed-0"
    (workdir / "results/runs" / lost / "model.pt").unlink()
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config_path))
    assert planned_runs(plan) == {lost}
    (workdir / "results/runs" / lost / "model.pt").write_bytes(b"restored")
    # a setting that changes numbers, fixed by one study: exactly that study's runs
    config["studies"]["kernel_width"]["set"] = {"flip": True}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config_path))
    assert planned_runs(plan) == {
        *(f"digits-48/kw-{k}-{k}-{k}_lr-0.001_ep-2_flip-true/seed-0" for k in (3, 5, 7)),
        "digits-48/lr-0.001_ep-2_flip-true/seed-0",  # the 5-5-7 network
    }
    # a changed value is one new run; train it for real, up to the tables
    config = yaml.safe_load(config_path.read_text())
    config["studies"]["kernel_width"].pop("set")
    config["studies"]["batch_size"]["values"] = [10, 256, 400]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    run = snakemake(
        workdir, "--cores", "2", "--configfile", str(config_path), "--until", "aggregate"
    )
    assert planned_runs(run) == {"digits-48/lr-0.001_bs-400_ep-2/seed-0"}
    log = run.stdout + run.stderr
    assert re.search(r"^aggregate\s+1$", log, re.MULTILINE), "the tables are rebuilt"
    assert not re.search(r"^(fetch_data|preprocess)\s+\d", log, re.MULTILINE)
    summary = pd.read_csv(workdir / "results/demo/summary.csv")
    names = set(summary.loc[summary["study"] == "batch_size", "name"])
    assert names == {"lr-0.001_bs-10_ep-2", "lr-0.001_ep-2", "lr-0.001_bs-400_ep-2"}


@pytest.mark.slow
def test_a_new_defaulted_setting_or_a_comment_retrains_nothing_and_model_code_only_its_runs(
    demo_copy,
):
    workdir, config = demo_copy
    schema = workdir / "workflow/schemas/config.schema.yaml"
    schema.write_text(schema.read_text().replace(
        "      keep_checkpoint:\n",
        "      label_smoothing:\n        x-abbrev: ls\n        type: number\n        default: 0.0\n"
        "      keep_checkpoint:\n", 1))  # fmt: skip
    loop = workdir / "workflow/hpstudy/training/loop.py"
    loop.write_text(
        loop.read_text().replace('"""The training loop', '"""The  training loop') + "# note\n"
    )
    assert nothing_to_do(snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config)))
    custom = workdir / "workflow/hpstudy/training/models/custom.py"
    custom.write_text(custom.read_text() + "\nUNUSED = 1\n")
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config))
    retrained = planned_runs(plan)
    assert len(retrained) == 7 and not any("resnet18" in run for run in retrained)


@pytest.mark.slow
def test_damaged_arrays_stop_training_and_a_rebuild_keeps_the_finished_runs(demo_copy):
    workdir, config = demo_copy
    array = workdir / "data/processed/digits-48/train_x.npy"
    raw = bytearray(array.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    array.write_bytes(bytes(raw))
    victim = workdir / "results/runs/digits-48/lr-0.001_bs-450_ep-2/seed-0/summary.json"
    victim.unlink()
    failed = snakemake(
        workdir, "--cores", "2", "--resources", "gpu=1", "--configfile", str(config), check=False
    )
    assert failed.returncode != 0
    tail = failed.stderr[failed.stderr.rindex("what went wrong") :]
    assert str(array.relative_to(workdir)) in tail and "snakemake --forcerun preprocess" in tail
    snakemake(
        workdir,
        "--cores",
        "2",
        "--forcerun",
        "preprocess",
        "--until",
        "preprocess",
        "--configfile",
        str(config),
    )
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config))
    assert planned_runs(plan) == {"digits-48/lr-0.001_bs-450_ep-2/seed-0"}, "others are kept"


@pytest.mark.slow
def test_configs_side_by_side_in_one_checkout_share_equal_runs_and_nothing_else(demo_copy):
    workdir, demo = demo_copy
    demo_results = workdir / "results" / "demo"
    before = {
        p: p.read_bytes() for p in demo_results.rglob("*") if p.is_file() and "logs" not in p.parts
    }
    runs_before = {
        p: p.stat().st_mtime_ns for p in (workdir / "results/runs").rglob("summary.json")
    }
    template = yaml.safe_load((REPO / "config" / "template.yaml").read_text())
    # on the demo's data (no validation split, so no selection or search), to share its runs
    del template["dataset"]["val_fraction"]
    for key in ("selection", "final", "search"):
        del template[key]
    template["seeds"] = [0]
    template["train"]["epochs"] = 1
    template["studies"]["lr_x_bs"]["params"] = {"lr": [1.0e-3], "batch_size": [32, 256]}
    template["studies"]["architecture"]["values"] = ["custom"]
    # one run equal to a demo run: the same settings, so the same folder, trained once
    template["studies"]["shared"] = {"param": "lr", "values": [1.0e-3],
                                     "set": {"scheduler": "none", "epochs": 2}}  # fmt: skip
    config = workdir / "config" / "test-template.yaml"
    config.write_text(yaml.safe_dump(template, sort_keys=False))
    run = snakemake(workdir, "--cores", "2", "--configfile", str(config))
    trained = planned_runs(run)
    assert "digits-48/lr-0.001_ep-2/seed-0" not in trained and len(trained) == 3
    summary = pd.read_csv(workdir / "results/template/summary.csv")
    assert "digits-48/lr-0.001_ep-2/seed-0" in set(summary["run_id"])  # the demo's run, reused
    after = {
        p: p.read_bytes() for p in demo_results.rglob("*") if p.is_file() and "logs" not in p.parts
    }
    assert after == before, "the demo's tables, figures and findings are untouched"
    assert all(p.stat().st_mtime_ns == t for p, t in runs_before.items()), "no demo run retrained"
    assert nothing_to_do(snakemake(workdir, "-n", "--cores", "2", "--configfile", str(demo)))
    seed = snakemake(workdir, "-n", "--cores", "1")  # the seed reproduction: runs of its own
    assert planned_runs(seed) and all(
        r.startswith("intel-image-classification-150/") for r in planned_runs(seed)
    )


@pytest.mark.slow
def test_a_folder_of_class_folders_gets_splits_an_audit_a_winner_and_its_test_number(tmp_path):
    """What a user with their own images does: point `dataset` at the folder, ask for a
    validation split, selection and a final run."""
    from support.zipfactory import image_bytes, photo_like, write_folder

    workdir = copy_repo(tmp_path / "repo")
    rng = np.random.default_rng(0)
    members = [
        (f"{cls}/img-{i:02d}.{'png' if i % 3 == 0 else 'jpg'}",
         image_bytes(photo_like(rng, (48, 48)), "PNG" if i % 3 == 0 else "JPEG"))
        for cls in ("cats", "dogs", "owls") for i in range(20)
    ]  # fmt: skip
    members.append(("dogs/copy-of-a-cat.jpg", members[1][1]))  # one image under two labels
    folder = write_folder(tmp_path / "my-images", members)
    config = workdir / "config" / "mine.yaml"
    config.write_text(yaml.safe_dump({
        "dataset": {"source": "folder", "path": str(folder), "name": "mine", "image_size": 40,
                    "val_fraction": 0.25},
        "paths": {"results": "results/mine"},
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
        "seeds": [0, 1],
        "studies": {"lr": {"param": "lr", "values": [1e-4, 1e-3]}},
        "selection": {"metric": "val_acc"},
        "final": {"seeds": [0]},
    }))  # fmt: skip
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    processed = workdir / "data/processed/mine-40-val0.25"
    manifest = json.loads((processed / "manifest.json").read_text())
    assert manifest["layout"] == "class-folders" and manifest["classes"] == ["cats", "dogs", "owls"]
    counts = {split: manifest["splits"][split]["count"] for split in ("train", "val", "test")}
    assert counts == {"train": 37, "val": 12, "test": 12}  # per class: 20% test, 25% of the rest
    audit = json.loads((processed / "audit.json").read_text())
    assert audit["counts"]["label_conflict_groups"] == 1
    best = yaml.safe_load((workdir / "results/mine/selection/best.yaml").read_text())
    assert best["selected_on"] == "validation" and best["studies"]["lr"]["winner"]["seeds"] == 2
    final = pd.read_csv(workdir / "results/mine/selection/final.csv")
    assert final["test_acc_mean"].between(0, 1).all() and (final["train_on"] == "train+val").all()
    findings = (workdir / "results/mine/findings.md").read_text()
    assert "## Data audit" in findings and "conflicting labels" in findings
    # a changed folder is packed again (Snakemake cannot see into a folder: its listing's
    # digest is the fetch rule's param)
    write_folder(folder, [("owls/new.jpg", image_bytes(photo_like(rng, (48, 48)), "JPEG"))])
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config))
    assert "rule fetch_data" in proc.stdout + proc.stderr
