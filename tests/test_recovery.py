"""The README's recovery path, end to end: Snakemake killed while its trainer runs on,
`snakemake --unlock`, a rerun (the second trainer is refused and Snakemake deletes that job's
outputs), the first trainer finishes, a last rerun completes the sweep."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_repo, snakemake

from hpstudy.core.paths import RUN_OUTPUTS

TINY = {
    "dataset": {"source": "digits", "name": "digits", "image_size": 40},
    "paths": {"results": "results/tiny"},
    "seeds": [0],
    "threads": {"train": 1},
    "train": {"epochs": 4, "batch_size": 64},
    "studies": {"learning_rate": {"param": "lr", "values": [0.01]}},
}


def wait_for(predicate, what: str, timeout: float = 600):
    """Poll ``predicate`` until it holds (no timing is asserted: the deadline only stops a
    hung test)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def lock_holder(workdir: Path) -> tuple[Path, int] | None:
    """The trainer's lock file and the pid written in it, once it holds the lock."""
    for lock in (workdir / "checkpoints" / ".locks").glob("**/*.lock"):
        text = lock.read_text()
        if text.startswith("pid "):
            return lock, int(text.split()[1])
    return None


def training(workdir: Path) -> Path | None:
    """The folder of the run being trained, once its trainer holds the lock and has begun its
    epochs (metrics.csv is written first, after params.json)."""
    if lock_holder(workdir) is None:
        return None
    started = list((workdir / "results" / "runs").glob("*/*/seed-0/metrics.csv"))
    return started[0].parent if started else None


def is_free(lock: Path) -> bool:
    """Whether no process holds ``lock`` (the kernel frees it when its holder ends)."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.mark.slow
def test_kill_unlock_rerun_and_let_the_trainer_finish_completes_the_sweep(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    config = workdir / "config" / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    args = ("--cores", "1", "--resources", "gpu=1", "--configfile", str(config))
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, start_new_session=True,
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    trainer = None
    try:
        # the trainer holds its lock and has written params.json and its first metrics.csv
        wait_for(lambda: training(workdir) or first.poll() is not None, "the trainer")
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        lock, trainer = lock_holder(workdir)
        # hold the trainer mid-run (no race with its last epoch), kill only Snakemake, as a
        # closed terminal would
        os.kill(trainer, signal.SIGSTOP)
        run_dir = training(workdir)
        assert not (run_dir / "summary.json").exists(), "stopped too late: the run had finished"
        first.kill()
        first.wait()
        snakemake(workdir, "--unlock", *args)
        refused = snakemake(workdir, *args, check=False)
        assert refused.returncode != 0
        assert f"already being trained by pid {trainer}" in refused.stdout + refused.stderr
        assert not (run_dir / "params.json").exists(), "Snakemake deletes the failed job's outputs"
        os.kill(trainer, signal.SIGCONT)
        wait_for(lambda: is_free(lock), "the first trainer to finish")
        trainer = None
        assert (run_dir / "summary.json").exists()
        done = snakemake(workdir, *args)
    finally:
        if trainer is not None:
            os.kill(trainer, signal.SIGKILL)
            os.kill(trainer, signal.SIGCONT)
        if first.poll() is None:
            first.kill()
            first.wait()
    assert "Finished" in done.stdout + done.stderr
    for name in RUN_OUTPUTS:
        assert (run_dir / name).is_file(), name
    params = json.loads((run_dir / "params.json").read_text())
    assert params["run_id"].endswith("seed-0")
    assert (workdir / "results" / "tiny" / "summary.csv").is_file()
    again = snakemake(workdir, "-n", *args)
    assert "Nothing to be done" in again.stdout + again.stderr
