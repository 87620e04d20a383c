"""Shared fixtures: a throw-away copy of the repository and Snakemake runs inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def copy_repo(dest: Path) -> Path:
    """Copy the repository's tracked and untracked-but-not-ignored files into ``dest``."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest / rel)
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900):
    """Run ``snakemake`` (this interpreter's) in ``workdir``; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def shrunk_demo_config(path: Path, epochs: int = 2, resnet_epochs: int = 1) -> Path:
    """The real demo config with one seed and fewer epochs, written to ``path`` (tests shrink,
    not fake)."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["seeds"] = [0]
    config["train"]["epochs"] = epochs
    config["studies"]["learning_rate"]["set"]["epochs"] = resnet_epochs
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A repository copy in which the shrunk demo sweep has run to completion once.

    Returns (workdir, configfile, first_run_output). Tests that modify the workdir must
    copy it first (see ``demo_copy``).
    """
    workdir = copy_repo(tmp_path_factory.mktemp("demo"))
    config = shrunk_demo_config(workdir / "config" / "test-demo.yaml")
    # as the README's demo command: two runs at once on the 2-core CPU
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir, config, proc


def require_or_skip(reason: str) -> None:
    """Skip on a developer's machine that cannot run a test; fail where CI demands it
    (``HPSTUDY_REQUIRE_ROOT_TESTS=1``, set by .ci/run when it runs as root)."""
    if os.environ.get("HPSTUDY_REQUIRE_ROOT_TESTS") == "1":
        pytest.fail(f"HPSTUDY_REQUIRE_ROOT_TESTS=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a real file system of 256 KiB (a tmpfs; mounting needs root), which the
    test fills: writes there fail with ENOSPC, as on a full disk."""
    if os.geteuid() != 0:
        require_or_skip("a full disk is simulated with a small tmpfs, which needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        require_or_skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def demo_copy(demo_run, tmp_path):
    """A private copy of the finished demo checkout (code, data, runs, Snakemake's records),
    for tests that change it."""
    workdir, config, _ = demo_run
    copy = tmp_path / "demo"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, copy / config.relative_to(workdir)


def tiny_two_seed_config(path: Path, **extra) -> Path:
    """A tiny two-seed sweep on the digits (one epoch, two batch sizes, a validation split,
    selection on): the base of the sequential sweeps end to end. ``extra`` adds config blocks."""
    config = {
        "dataset": {"source": "digits", "name": "digits", "image_size": 48, "val_fraction": 0.2},
        "paths": {"results": "results/tiny"},
        "threads": {"train": 1},
        "train": {"lr": 1.0e-3, "epochs": 1},
        "seeds": [0, 1],
        "studies": {"batch_size": {"param": "batch_size", "values": [256, 450]}},
        "selection": {},
        **extra,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_two_seed(tmp_path_factory):
    """A repository copy in which the tiny two-seed sweep has run once: (workdir, config)."""
    workdir = copy_repo(tmp_path_factory.mktemp("tiny"))
    config = tiny_two_seed_config(workdir / "config" / "tiny.yaml")
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir, config


@pytest.fixture
def tiny_copy(tiny_two_seed, tmp_path):
    """A private copy of the finished tiny sweep, for a test that extends it."""
    workdir, config = tiny_two_seed
    copy = tmp_path / "tiny"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, copy / config.relative_to(workdir)
