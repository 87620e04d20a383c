"""Shared fixtures: a throw-away copy of the repository and Snakemake runs inside it."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# The suite runs in three pytest-xdist workers (pyproject's addopts: `-n 3`). Every test that
# uses one of these costly shared fixtures runs in the same worker, so each is built once per
# session (by its first test), never once per worker.
SHARED_FIXTURES = {
    "demo_run": "demo",  # the shrunk demo sweep, and every copy of it (demo_copy, test_dvc)
    "tiny_two_seed": "tiny",
    "flow": "search-flow",  # test_search's grid + searches + selection sweep
    "cluster": "slurm",  # test_slurm's one-node cluster and its sweep
    "sources": "sources",  # test_workflow_sources' folders of images
    "spaced_sweep": "spaced",  # test_rerun's sweep with spaces in every path
}
# where the workers tell the scheduler each test's group (set by the controlling process)
GROUPS_FILE = "HPSTUDY_TEST_GROUPS"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "alone: a test that times itself: the other workers wait while it runs (from setup to "
        "teardown, the shared fixtures it builds included)",
    )
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        fd, path = tempfile.mkstemp(prefix="hpstudy-test-groups-", suffix=".json")
        os.close(fd)
        os.environ[GROUPS_FILE] = path  # the workers, started after this, inherit it


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and os.environ.get(GROUPS_FILE):
        Path(os.environ.pop(GROUPS_FILE)).unlink(missing_ok=True)


def pytest_collection_modifyitems(config, items):
    """The ``alone`` tests last (the other workers, by then at their last tests, wait little).
    In a worker: write each grouped test's group for the scheduler (every worker collects the
    same tests, so each writes the same file)."""
    items.sort(key=lambda item: item.get_closest_marker("alone") is not None)  # stable
    path = os.environ.get(GROUPS_FILE)
    if not path or not hasattr(config, "workerinput"):
        return
    groups = {}
    for item in items:
        used = getattr(item, "fixturenames", ())
        group = next((g for name, g in SHARED_FIXTURES.items() if name in used), None)
        if group:
            groups[item.nodeid] = group
    partial = f"{path}.{os.getpid()}"
    Path(partial).write_text(json.dumps(groups))
    os.replace(partial, path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scope scheduling with a test's group as its scope: the tests of a group
    go to one worker as one unit; every other test is a unit of its own. (xdist's own
    ``--dist loadgroup`` cannot rename node ids under pytest 9.2, so its groups are lost.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        groups: dict | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                text = Path(os.environ[GROUPS_FILE]).read_text()
                self.groups = json.loads(text) if text else {}
            return self.groups.get(nodeid, nodeid)

    return SharedFixtureScheduling(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Between workers: a shared lock around each test (its fixtures' setup included), an
    exclusive one around a test marked ``alone``, so that a test that times itself has the
    machine to itself."""
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not uid:  # one process: nothing runs beside it
        yield
        return
    base = Path(tempfile.gettempdir()) / f"hpstudy-tests-{uid}"
    # the gate gives the alone test precedence: a worker that wants its shared lock passes the
    # gate first, and the alone test holds the gate while it waits for the running test to end
    gate, lock = (os.open(f"{base}.{n}.lock", os.O_CREAT | os.O_RDWR) for n in ("gate", "main"))
    alone = item.get_closest_marker("alone") is not None
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(lock)  # closing releases the locks
        os.close(gate)


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
