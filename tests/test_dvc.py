"""DVC beside Snakemake, with the real ``dvc`` CLI in a throw-away git repository.

The suite's one shrunk demo (``demo_run``: 10 runs, one seed, already trained by Snakemake) is
put under git with a config of two of its studies and their 4 runs (the others removed), and
``dvc repro`` records them without training anything; the tests then push it
to a local directory remote, pull it into fresh clones, and check that nothing is retrained,
that ``dvc exp run -S`` retrains exactly the run it changes, and that bad input ends in a
clear message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hpstudy.core.config import validate_config
from hpstudy.sweep.plan import build_plan

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
GIT_ID = ["-c", "user.name=hpstudy tests", "-c", "user.email=tests@hpstudy.invalid"]
DEMO_CONFIG = "config/test-demo.yaml"  # the shrunk demo of tests/conftest.py
CONFIG = "config/test-dvc.yaml"  # two of its studies, on its runs (written by `origin`)
RESULTS = "results/dvc"  # that config's paths.results
STUDIES = ("batch_size", "weight_decay")
RUN = "digits-48/lr-0.001_{}_ep-2/seed-0"  # a run of the shrunk demo, by its settings
DEFAULT_RUN = "digits-48/lr-0.001_ep-2/seed-0"  # its run at batch 256
DEMO_RUNS = 4  # distinct runs of those two studies (batch 10, 256, 450; weight decay 1)


def run(cwd: Path, *args: str, check: bool = True, timeout: int = 600):
    """Run a command with this environment's dvc/snakemake/python first on PATH."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # the package of the checkout under test, not the one installed in editable mode
        "PYTHONPATH": str(cwd / "workflow"),
        "DVC_NO_ANALYTICS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
            f"{proc.stderr[-4000:]}"
        )
    return proc


def git(cwd: Path, *args: str, check: bool = True):
    """Run git with a test identity."""
    return run(cwd, "git", *GIT_ID, *args, check=check)


def point_dvc_at(repo: Path) -> None:
    """dvc.yaml pointed at the shrunk demo's config and results folder (as the docs say)."""
    dvc_yaml = repo / "dvc.yaml"
    text = dvc_yaml.read_text()
    assert "config: config/config.yaml\n    results: results\n" in text
    dvc_yaml.write_text(text.replace("config: config/config.yaml\n    results: results\n",
                                     f"config: {CONFIG}\n    results: {RESULTS}\n"))  # fmt: skip


def file_hashes(root: Path, *folders: str) -> dict[str, str]:
    """sha256 of every file under the given folders, keyed by path relative to ``root``."""
    hashes = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                hashes[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def trained_runs(output: str) -> list[str]:
    """Run ids of the train jobs Snakemake ran, from its printed job headers."""
    found = re.findall(
        r"^\s*wildcards: variant=([^,\s]+), name=([^,\s]+), seed=(\d+)", output, flags=re.M
    )
    return [f"{variant}/{name}/seed-{seed}" for variant, name, seed in found]


def summary_mtimes(repo: Path) -> dict[str, int]:
    """Modification time of each run's summary.json (rewritten only when a run retrains)."""
    return {
        str(p.relative_to(repo)): p.stat().st_mtime_ns
        for p in (repo / "results" / "runs").rglob("summary.json")
    }


def summary_hashes(repo: Path) -> dict[str, str]:
    """sha256 of each run's summary.json: a retrain changes it (its timings at least)."""
    return {
        path: digest
        for path, digest in file_hashes(repo, "results/runs").items()
        if path.endswith("summary.json")
    }


@pytest.fixture(scope="module")
def origin(demo_run, tmp_path_factory):
    """A git+DVC repo of the finished shrunk demo, recorded by ``dvc repro`` and committed."""
    workdir, config, _ = demo_run
    assert config.relative_to(workdir).as_posix() == DEMO_CONFIG
    repo = tmp_path_factory.mktemp("origin") / "repo"
    shutil.copytree(workdir, repo, symlinks=True)
    # two of the demo's studies, pooled with its runs: every DVC behaviour, half the figures
    # that each `dvc repro` draws again
    subset = yaml.safe_load(config.read_text())
    subset["studies"] = {name: subset["studies"][name] for name in STUDIES}
    subset["paths"]["results"] = RESULTS
    (repo / CONFIG).write_text(yaml.safe_dump(subset, sort_keys=False))
    shutil.rmtree(repo / "results/demo")  # the whole demo's tables: no output of this config
    # and only its runs: the demo's ResNet18 weights (135 MB) would be most of what every DVC
    # command below hashes and copies
    keep = set(build_plan(validate_config(yaml.safe_load((repo / CONFIG).read_text()))).runs)
    for folder in (repo / "results/runs").glob("*/*/seed-*"):
        if folder.relative_to(repo / "results/runs").as_posix() not in keep:
            shutil.rmtree(folder)
    assert len(keep) == len(list((repo / "results/runs").glob("*/*/seed-*"))) == DEMO_RUNS
    point_dvc_at(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    first = run(repo, "dvc", "repro")
    git(repo, "add", "dvc.lock")
    git(repo, "commit", "-qm", "reproduced")
    return repo, first.stdout + first.stderr


@pytest.fixture(scope="module")
def remote(origin, tmp_path_factory):
    """A local directory remote holding everything ``origin`` produced."""
    repo, _ = origin
    store = tmp_path_factory.mktemp("remote") / "store"
    run(repo, "dvc", "remote", "add", "-d", "store", str(store))
    git(repo, "commit", "-qm", "remote", "--", ".dvc/config")
    run(repo, "dvc", "push")
    return store


def pulled_clone(origin_repo: Path, dest: Path) -> Path:
    """A fresh git clone of ``origin_repo`` with its DVC outputs pulled from the remote."""
    git(origin_repo.parent, "clone", "-q", str(origin_repo), str(dest))
    run(dest, "dvc", "pull")
    return dest


def test_repro_runs_the_pipeline_and_a_second_repro_does_nothing(origin):
    repo, first = origin
    # Snakemake had trained every run: DVC only records them
    assert trained_runs(first) == []
    assert (repo / "data/processed/digits-48/manifest.json").exists()
    assert (repo / RESULTS / "figures/weight_decay/curves.png").exists()
    before = summary_mtimes(repo)
    second = run(repo, "dvc", "repro")
    assert "Data and pipelines are up to date" in second.stdout
    assert summary_mtimes(repo) == before
    assert not git(repo, "status", "--porcelain").stdout.strip(), "DVC left untracked files"


def test_temporary_files_and_scratch_are_never_shared(origin):
    repo, _ = origin
    paths = [
        "results/runs/" + DEFAULT_RUN + "/.metrics.csv.tmp-123@host",
        "data/processed/digits-48/.train_x.partial.npy.tmp-9@node-1",
        "checkpoints/digits-48/test-only/seed-0/last.pt",
        "checkpoints/.locks/digits-48/test-only/seed-0.lock",
        ".snakemake/hpstudy/settings/digits-48/test-only/seed-0.json",
        "data/.download-test-only/intel.zip",
    ]
    for path in paths:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("x")
    try:
        ignored = run(repo, "dvc", "check-ignore", *paths, check=False).stdout.split()
        assert sorted(ignored) == sorted(paths)
        kept = run(repo, "dvc", "check-ignore", "results/runs/" + DEFAULT_RUN + "/metrics.csv",
                   check=False)  # fmt: skip
        assert kept.returncode == 1, "finished outputs are shared"
    finally:
        for path in paths:
            (repo / path).unlink()


def test_metrics_show_and_plots_show_read_the_results(origin, tmp_path):
    repo, _ = origin
    metrics = run(repo, "dvc", "metrics", "show", "--json").stdout
    data = json.loads(metrics)
    values = next(iter(data.values()))["data"][f"{RESULTS}/headline.json"]["data"]
    assert values == json.loads((repo / RESULTS / "headline.json").read_text())
    assert values["runs"] == DEMO_RUNS
    assert set(values["studies"]) == set(STUDIES)
    run(repo, "dvc", "plots", "show", "-o", str(tmp_path / "plots"))
    html = (tmp_path / "plots" / "index.html").read_text()
    assert "test_acc" in html and RUN.format("wd-1_bs-450") in html
    assert list((tmp_path / "plots" / "static").glob("*curves.png"))


def test_pull_restores_every_file_and_snakemake_has_nothing_to_do(origin, remote, tmp_path):
    repo, _ = origin
    clone = pulled_clone(repo, tmp_path / "clone")
    assert file_hashes(clone, "data", "results") == file_hashes(repo, "data", "results")
    assert not (clone / ".snakemake").exists()
    restored = run(clone, "python", "-m", "hpstudy", "restore", "--configfile", CONFIG)
    assert f"{DEMO_RUNS} run(s) match the config" in restored.stdout
    dry = run(clone, "snakemake", "-n", "--configfile", CONFIG, "--cores", "1")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert "up to date" in run(clone, "dvc", "status").stdout
    assert file_hashes(clone, "data", "results") == file_hashes(repo, "data", "results")

    # A changed setting after the pull still retrains exactly the runs it changes.
    config = yaml.safe_load((clone / CONFIG).read_text())
    config["studies"]["weight_decay"]["set"]["epochs"] = 3
    (clone / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    dry = run(clone, "snakemake", "-n", "-p", "--configfile", CONFIG, "--cores", "1")
    assert sorted(trained_runs(dry.stdout + dry.stderr)) == [
        "digits-48/lr-0.001_bs-450_ep-3/seed-0",
        "digits-48/lr-0.001_wd-1_bs-450_ep-3/seed-0",
    ]
    diff = run(clone, "dvc", "params", "diff").stdout
    assert "studies.weight_decay.set.epochs" in diff


def test_exp_run_retrains_only_the_changed_run(origin, remote, tmp_path):
    repo, _ = origin
    clone = pulled_clone(repo, tmp_path / "clone")  # no restore: the stage does it itself
    before = summary_hashes(clone)
    exp = run(clone, "dvc", "exp", "run", "-S", f"{CONFIG}:studies.weight_decay.values=[0.01,0.5]")
    assert trained_runs(exp.stdout + exp.stderr) == [RUN.format("wd-0.5_bs-450")]
    after = summary_hashes(clone)
    assert {p: after[p] for p in before} == before, "every run kept, the old one too (pooled)"
    shown = run(clone, "dvc", "exp", "show", "--csv").stdout
    header, *rows = shown.strip().splitlines()
    columns = header.split(",")
    assert "studies.weight_decay.best_weight_decay" in columns
    assert "studies.weight_decay.values" in columns
    # a table a person can read: per study its best setting and accuracy, never a column per run
    assert not [c for c in columns if "seed-" in c], "no column per run"
    best = [c for c in columns if c.startswith("studies.") and ".best_" in c]
    assert len(best) == 2 * len(STUDIES), best
    assert any("0.5" in row for row in rows)


def test_interrupted_repro_leaves_nothing_taken_as_finished(origin, remote, tmp_path):
    repo, _ = origin
    clone = pulled_clone(repo, tmp_path / "clone")
    config = yaml.safe_load((clone / CONFIG).read_text())
    config["studies"]["batch_size"]["values"] = [10, 256, 450, 12]  # batch 12: a slow epoch
    (clone / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    new_run = clone / "results/runs" / RUN.format("bs-12")
    lock_before = (clone / "dvc.lock").read_text()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(clone / "workflow")}  # fmt: skip
    log = (tmp_path / "repro.log").open("w")

    # Ctrl-C's default action, also where this test was started in the background by a shell
    # (whose asynchronous commands inherit SIGINT ignored: Python then keeps it ignored)
    def ctrl_c_as_in_a_terminal():
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(["dvc", "repro"], cwd=clone, env=env, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=ctrl_c_as_in_a_terminal)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (new_run / "params.json").exists():  # training has started
        assert proc.poll() is None, "dvc repro ended before training started"
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    code = proc.wait(timeout=120)
    log.close()
    assert code != 0, (tmp_path / "repro.log").read_text()[-4000:]
    assert not (new_run / "summary.json").exists(), "the killed run looks finished"
    # the data stage may have finished (its params are the whole config), the sweep not
    sweep_lock = yaml.safe_load(lock_before)["stages"]["sweep"]
    assert yaml.safe_load((clone / "dvc.lock").read_text())["stages"]["sweep"] == sweep_lock
    status = run(clone, "dvc", "status").stdout
    assert "changed" in status

    again = run(clone, "dvc", "repro")
    assert trained_runs(again.stdout + again.stderr) == [RUN.format("bs-12")]
    summary = json.loads((new_run / "summary.json").read_text())
    assert summary["epochs_completed"] == 2
    assert "up to date" in run(clone, "dvc", "status").stdout


def test_bad_input_ends_in_a_clear_message(origin, remote, tmp_path):
    repo, _ = origin
    # no git repository
    bare = tmp_path / "nogit"
    bare.mkdir()
    for name in (".dvc", "dvc.yaml", "config"):
        copy = shutil.copytree if (repo / name).is_dir() else shutil.copy2
        copy(repo / name, bare / name)
    proc = run(bare, "dvc", "repro", check=False)
    assert proc.returncode != 0 and "is not a git repository" in proc.stderr

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    # no remote configured
    run(clone, "dvc", "remote", "remove", "store")
    proc = run(clone, "dvc", "pull", check=False)
    assert proc.returncode != 0 and "no default remote set" in proc.stderr
    proc = run(clone, "dvc", "push", check=False)
    assert proc.returncode != 0
    assert "no remote specified" in proc.stderr and "dvc remote add -d" in proc.stderr
    # a remote path that does not exist: the pull fails, names what is missing, writes nothing
    run(clone, "dvc", "remote", "add", "-d", "gone", str(tmp_path / "no" / "such" / "store"))
    proc = run(clone, "dvc", "pull", check=False)
    assert proc.returncode != 0 and "failed to pull data from the cloud" in proc.stderr
    written = [p for p in clone.glob("*/**/*") if p.is_file() and p.parts[-1] != ".gitignore"]
    assert not [p for p in written if p.relative_to(clone).parts[0] in ("data", "results")]
    # pointed at the real one, the same clone pulls everything
    run(clone, "dvc", "remote", "modify", "gone", "url", str(remote))
    run(clone, "dvc", "pull")
    assert file_hashes(clone, "results") == file_hashes(repo, "results")
