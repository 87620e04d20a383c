"""What Snakemake reruns: nothing after an upgrade that only changed how shell lines are
written, nothing for the same data content (touched, copied elsewhere, an identical archive
copied anew), exactly the data's runs when its content changes; and a sweep whose every path
holds a space runs end to end."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile

import numpy as np
import pytest
import yaml
from conftest import REPO, copy_repo, snakemake
from support.zipfactory import image_bytes, photo_like, write_folder
from test_workflow import nothing_to_do, planned_runs

from hpstudy.data.fetch import pack_folder

BEFORE_THIS_ROUND = "f4d06e1"  # main before issue 17 (quoted shell lines, content digests)
RUNS = ("mine-40/bs-16_ep-1/seed-0", "mine-40/lr-0.001_bs-16_ep-1/seed-0")  # the tiny sweep
DATA_JOBS = re.compile(r"^(fetch_data|preprocess|train)\s+\d+$", re.MULTILINE)


def data_jobs(proc) -> set[str]:
    """The fetch, preprocess and train rules a (dry) run's job stats list."""
    return set(DATA_JOBS.findall(proc.stdout + proc.stderr))


def new_rerun_triggers() -> list[str]:
    """The rerun triggers of this checkout's workflow profile."""
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    return profile["rerun-triggers"]


def overlay_commit(commit: str, dest, paths=("Snakefile", "workflow", "profiles")) -> None:
    """Write the files of ``paths`` at ``commit`` of this repository over ``dest``."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, *paths], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"commit {commit} (main before issue 17) is not in this clone "
            f"({done.stderr.decode().strip()}); the upgrade test needs the history: clone "
            "without --depth, or `git fetch --unshallow`"
        )
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(dest, filter="data")


@pytest.mark.slow
def test_upgrading_across_this_round_retrains_nothing(demo_copy):
    """A finished demo checkout lists no fetch, preprocess or train job under the other
    round's code.

    The demo here was trained by the new code, and the code of the commit before this round
    is laid over it; an upgrade runs the other way. Snakemake compares what it recorded for a
    job (its params, its set of input files, its software environment, and with the "code"
    trigger the text of its shell command) with what the code now in place computes, and
    each comparison is an equality, the same both ways: recorded-new == computed-old exactly
    when recorded-old == computed-new. The file times play no part either way (no data file
    is written by the overlay). So old code finding nothing to do over new records means new
    code finds nothing to do over old records. The triggers are the ones of the code that
    judges, in an upgrade the new profile's: they are passed here (the old profile had none,
    and the shell text, which quoting changed, does differ both ways).
    """
    workdir, config = demo_copy
    overlay_commit(BEFORE_THIS_ROUND, workdir)
    assert "{output.zip}" in (workdir / "workflow/rules/data.smk").read_text(), "old code"
    triggers = new_rerun_triggers()
    assert "code" not in triggers and {"mtime", "params", "input"} <= set(triggers)
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config),
                     "--rerun-triggers", *triggers)  # fmt: skip
    assert data_jobs(plan) == set(), plan.stdout[-3000:]
    # what the new profile leaves out is what differs: with the shell text compared, the
    # quoted lines would retrain every run
    judged_on_code = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config),
                               "--rerun-triggers", *triggers, "code")  # fmt: skip
    assert "train" in data_jobs(judged_on_code)


@pytest.mark.slow
def test_one_arithmetic_change_in_the_batch_code_retrains_every_run_it_computes(demo_copy):
    """The other side of moving modules freely: a change to what the digested code computes
    (one shift in the batch order's seed) retrains the runs, all of which gather batches."""
    workdir, config = demo_copy
    batches = workdir / "workflow/hpstudy/training/batches.py"
    text = batches.read_text()
    assert text.count("<< 32") == 1
    batches.write_text(text.replace("<< 32", "<< 31"))
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(config))
    trained = re.search(r"^train\s+(\d+)$", plan.stdout + plan.stderr, re.MULTILINE)
    assert trained and int(trained[1]) == len(list((workdir / "results/runs").glob("*/*/seed-*")))


def image_folder(root, rng):
    """Three classes of eight small photo-like images."""
    members = [
        (f"{cls}/img-{i:02d}.jpg", image_bytes(photo_like(rng, (48, 48)), "JPEG"))
        for cls in ("cats", "dogs", "owls")
        for i in range(8)
    ]
    return write_folder(root, members)


@pytest.fixture(scope="module")
def spaced_sweep(tmp_path_factory):
    """A tiny sweep on a folder of images, every path of it holding a space, run once.
    Returns (workdir, config path, config, image folder)."""
    base = tmp_path_factory.mktemp("spaced")
    workdir = copy_repo(base / "repo")
    folder = image_folder(base / "my images", np.random.default_rng(0))
    config = {
        "dataset": {"source": "folder", "path": str(folder), "name": "mine", "image_size": 40},
        "paths": {"data": "da ta", "runs": "results/r uns", "results": "results/a b",
                  "checkpoints": "check points", "resources": "re sources"},
        "threads": {"train": 1, "preprocess": 1},
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
        "seeds": [0],
        "studies": {"lr": {"param": "lr", "values": [1e-4, 1e-3]}},
    }  # fmt: skip
    path = workdir / "config" / "spaced.yaml"
    path.write_text(yaml.safe_dump(config))
    first = snakemake(workdir, "--cores", "2", "--configfile", str(path))
    assert planned_runs(first) == set(RUNS)
    return workdir, path, config, folder


@pytest.mark.slow
def test_a_sweep_with_a_space_in_every_path_lands_where_the_config_says(spaced_sweep):
    workdir, path, _, _ = spaced_sweep
    assert (workdir / "results/a b/summary.csv").is_file()
    assert (workdir / "results/a b/findings.md").is_file()
    for run in RUNS:
        assert (workdir / "results/r uns" / run / "summary.json").is_file()
    assert (workdir / "da ta/processed/mine-40/manifest.json").is_file()
    assert (workdir / "da ta/raw/mine.zip").is_file()
    for stray in ("results/a", "results/r", "da", "check", "re", "results/runs", "data"):
        assert not (workdir / stray).exists(), f"{stray} was made by a split path"
    assert nothing_to_do(snakemake(workdir, "-n", "--cores", "2", "--configfile", str(path)))


@pytest.mark.slow
def test_the_same_content_retrains_nothing_and_changed_content_exactly_its_runs(
    spaced_sweep, tmp_path
):
    source, _, config, folder = spaced_sweep
    workdir = shutil.copytree(source, tmp_path / "repo", symlinks=True)  # times kept
    path = workdir / "config" / "spaced.yaml"

    def plan(changes=None):
        dataset = {**config["dataset"], **(changes or {})}
        path.write_text(yaml.safe_dump({**config, "dataset": dataset}))
        return snakemake(workdir, "-n", "--cores", "2", "--configfile", str(path))

    # the folder copied elsewhere (`cp -r`: every file with a new time), then one image touched
    copy = shutil.copytree(folder, tmp_path / "copied images", copy_function=shutil.copy)
    assert nothing_to_do(plan({"path": str(copy)}))
    (copy / "dogs" / "img-03.jpg").touch()
    assert nothing_to_do(plan({"path": str(copy)}))
    # the same images as a local zip: fetched (another source), nothing downstream; the zip
    # then copied anew (a new time): nothing at all
    archive = tmp_path / "download.zip"
    pack_folder(copy, archive)
    switched = {"source": "archive", "archive": str(archive), "path": None}
    assert data_jobs(plan(switched)) == {"fetch_data"}
    snakemake(workdir, "--cores", "2", "--configfile", str(path))
    shutil.copy(tmp_path / "download.zip", tmp_path / "download-2.zip")
    shutil.move(tmp_path / "download-2.zip", archive)
    assert nothing_to_do(plan(switched))
    # back to the folder: repacked (the source changed), and still nothing downstream
    assert data_jobs(plan({"path": str(copy)})) == {"fetch_data"}
    # one image's content changed: the data's runs, all of them, and nothing else
    image = copy / "owls" / "img-05.jpg"
    image.write_bytes(image_bytes(photo_like(np.random.default_rng(1), (48, 48)), "JPEG"))
    changed = plan({"path": str(copy)})
    assert data_jobs(changed) == {"fetch_data", "preprocess", "train"}
    assert planned_runs(changed) == set(RUNS)
