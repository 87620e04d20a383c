"""The demo sweep on a real one-node SLURM cluster, through profiles/slurm.

tests/slurm/start_cluster.sh brings up munged, slurmctld and slurmd on this machine (root
needed; tests/slurm/install.sh installs the packages, as .ci/run does); the module fixture
stops them again, also when a test fails. One shrunk demo sweep runs through the profile
while one of its training jobs is cancelled with `scancel` after its first checkpoint; the
same config's training also runs locally, at the same time. The tests then read what those
two runs left behind.

Skipped, with the reason, where SLURM cannot run here (not root, not installed, or a machine
with its own SLURM configuration) unless HPSTUDY_REQUIRE_SLURM=1 (CI), which fails instead.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_repo, shrunk_demo_config

from hpstudy.core import run_record
from hpstudy.core.config import validate_config
from hpstudy.core.paths import Layout
from hpstudy.sweep.plan import build_plan, run_spec

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPTS = REPO / "tests" / "slurm"
STATE_DIR = Path(os.environ.get("HPSTUDY_SLURM_DIR", "/tmp/hpstudy-slurm"))
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")
# start_cluster.sh exit codes meaning "SLURM cannot run on this machine" (not a failure).
CANNOT_RUN = {2: "not root", 3: "SLURM/munge not installed", 5: "machine has its own SLURM"}
TIMING_COLUMNS = set(run_record.TIMING_COLUMNS)  # fmt: skip
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
RUN_TIMEOUT_S = 1200


@dataclass
class Cluster:
    """A running test cluster: its state folder and the environment its clients need."""

    state: Path
    env: dict


@dataclass
class SweepRuns:
    """What the SLURM run and the local run of the same config left behind."""

    slurm_dir: Path
    local_dir: Path
    slurm_output: str
    run_ids: list[str]
    cancelled_run: str
    cancelled_job: str
    cluster: Cluster


def skip_or_fail(reason: str) -> None:
    """Skip (laptops) or, where CI demands the SLURM test, fail with the same reason."""
    if os.environ.get("HPSTUDY_REQUIRE_SLURM") == "1":
        pytest.fail(f"HPSTUDY_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def cannot_run_reason() -> str | None:
    """Why this machine cannot host the test cluster, or None."""
    if os.geteuid() != 0:
        return "the SLURM test cluster needs root (slurmd, munged as the munge user)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing): run tests/slurm/install.sh"
    return None


def client_env(state: Path) -> dict:
    """This environment minus SLURM job variables, plus the cluster's config and marker."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "SBATCH_", "SRUN_")) and key != "CUDA_VISIBLE_DEVICES"
    }
    env["SLURM_CONF"] = str(state / "etc" / "slurm.conf")
    # stop_cluster.sh kills leftovers carrying this marker (jobs inherit it through sbatch).
    env["HPSTUDY_SLURM_CLUSTER"] = str(state)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def raise_keyboard_interrupt(signum, frame):
    """Turn SIGTERM (a CI timeout) into an interrupt so fixture teardown still runs."""
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")
def cluster():
    """A one-node SLURM cluster with two (pretend) GPUs, stopped at the end however it ends."""
    reason = cannot_run_reason()
    if reason:
        skip_or_fail(reason)
    previous_handler = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        started = subprocess.run(
            [str(SCRIPTS / "start_cluster.sh"), str(STATE_DIR)],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if started.returncode in CANNOT_RUN:
            skip_or_fail(f"{CANNOT_RUN[started.returncode]}: {started.stderr.strip()}")
        assert started.returncode == 0, f"the SLURM cluster did not start:\n{started.stderr}"
        yield Cluster(STATE_DIR, client_env(STATE_DIR))
    finally:
        subprocess.run([str(SCRIPTS / "stop_cluster.sh"), str(STATE_DIR)], timeout=180)
        signal.signal(signal.SIGTERM, previous_handler)


def write_test_config(workdir: Path) -> Path:
    """The demo config, shrunk to five short runs over the four studies.

    The ResNet18 study trains the custom CNN here (ResNet18 on a 2-core CPU takes minutes per
    epoch), and the batch-size-10 run gets a third epoch: it is the one cancelled mid-run.
    """
    path = shrunk_demo_config(workdir / "config" / "slurm-test.yaml", epochs=2)
    config = yaml.safe_load(path.read_text())
    studies = config["studies"]
    studies["learning_rate"]["values"] = [1.0e-4]
    studies["learning_rate"]["set"].update(model="custom", batch_size=256, epochs=2)
    studies["batch_size"]["values"] = [10, 450]
    studies["batch_size"]["set"] = {"epochs": 3}
    studies["kernel_width"]["values"] = [3]
    studies["weight_decay"]["values"] = [1.0]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def sweep_plan(config_path: Path):
    """The plan of a config file, as the workflow builds it, and its layout."""
    config = validate_config(yaml.safe_load(config_path.read_text()))
    return build_plan(config), Layout.from_config(config)


def wildcard_text(run_id: str) -> str:
    """A train job's wildcards (variant, name, seed) as the SLURM executor joins them."""
    variant, name, seed = run_id.split("/")
    return f"{variant}_{name}_{seed.removeprefix('seed-')}"


def job_comment(run_id: str) -> str:
    """The comment the SLURM executor gives a train job (`squeue -o %k`)."""
    return f"rule_train_wildcards_{wildcard_text(run_id)}"


def find_running_job(comment: str, env: dict) -> str | None:
    """SLURM id of the running job with this comment, or None."""
    listed = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"],
        capture_output=True, text=True, env=env, timeout=30,
    ).stdout  # fmt: skip
    for line in listed.splitlines():
        job_id, _, job_comment_ = line.partition("|")
        if job_comment_.strip() == comment:
            return job_id.strip()
    return None


def cancel_after_first_checkpoint(proc, checkpoint: Path, comment: str, env: dict) -> str:
    """Wait for a run's first checkpoint, then `scancel` its SLURM job; returns the job id."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        if checkpoint.exists():
            job_id = find_running_job(comment, env)
            if job_id:
                subprocess.run(["scancel", job_id], check=True, env=env, timeout=30)
                return job_id
        time.sleep(0.2)
    raise AssertionError(f"the sweep ended before {checkpoint} appeared; nothing was cancelled")


def run_through_slurm(workdir: Path, config: Path, cancel_run: str, checkpoint: Path, env: dict):
    """Run the sweep with the SLURM profile, cancelling one training job mid-run."""
    log_path = workdir / "snakemake-slurm.log"
    command = [
        sys.executable, "-m", "snakemake", "--profile", "profiles/slurm",
        "--configfile", str(config),
        # Fast status polling for a test (the profile waits 40 s, kinder to a real cluster).
        "--slurm-init-seconds-before-status-checks", "2",
        # up to the tables: the steps after them are local rules, run on the submitting host
        # as in every other end-to-end test
        "--until", "aggregate",
    ]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            cancelled = cancel_after_first_checkpoint(
                proc,
                workdir / checkpoint,
                job_comment(cancel_run),
                env,
            )
            returncode = proc.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # snakemake cancels its SLURM jobs
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    output = log_path.read_text()
    assert returncode == 0, f"the sweep failed through SLURM:\n{output[-8000:]}"
    return output, cancelled


def start_locally(workdir: Path, config: Path, env: dict, log_path: Path) -> subprocess.Popen:
    """Start the same sweep's training without SLURM (the reference the runs are compared
    with), beside the SLURM sweep: that one spends most of its time waiting on the queue."""
    local_env = {key: value for key, value in env.items() if not key.startswith("SLURM_")}
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config),
             "--until", "train"],
            cwd=workdir, env=local_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def finish_locally(proc: subprocess.Popen, log_path: Path) -> None:
    """Wait for the local reference; it must succeed."""
    try:
        returncode = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert returncode == 0, f"the local sweep failed:\n{log_path.read_text()[-8000:]}"


@pytest.fixture(scope="module")
def sweep(cluster, tmp_path_factory):
    """The shrunk demo sweep, run once through SLURM (one job cancelled) and, at the same
    time, its training once locally."""
    slurm_dir = copy_repo(tmp_path_factory.mktemp("slurm-sweep"))
    local_dir = copy_repo(tmp_path_factory.mktemp("local-sweep"))
    config = write_test_config(slurm_dir)
    write_test_config(local_dir)
    plan, layout = sweep_plan(config)
    # The smallest batch is the slowest run: time to cancel it between two epochs.
    cancel = min(
        (plan.runs[rid] for rid in plan.studies["batch_size"].run_ids()),
        key=lambda run: run.settings["batch_size"],
    )
    checkpoint = Path(run_spec(cancel, layout)["checkpoint_dir"]) / "last.pt"
    # Each copy runs its own code (jobs inherit the submitting environment).
    slurm_env = {**cluster.env, "PYTHONPATH": str(slurm_dir / "workflow")}
    config_rel = config.relative_to(slurm_dir)
    local_log = local_dir / "snakemake-local.log"
    local_env = {**cluster.env, "PYTHONPATH": str(local_dir / "workflow")}
    local = start_locally(local_dir, config_rel, local_env, local_log)
    try:
        output, cancelled = run_through_slurm(
            slurm_dir, config_rel, cancel.run_id, checkpoint, slurm_env
        )
    finally:
        finish_locally(local, local_log)
    return SweepRuns(slurm_dir, local_dir, output, list(plan.runs), cancel.run_id, cancelled,
                     cluster)  # fmt: skip


def submissions(output: str) -> list[tuple[str, Path]]:
    """(SLURM job id, its SLURM log) for every job the executor submitted, in order."""
    return [(match[2], Path(match[3])) for match in SUBMITTED.finditer(output)]


def train_submissions(runs: SweepRuns, run_id: str) -> list[str]:
    """SLURM job ids of one run's train jobs, in submission order."""
    folder = wildcard_text(run_id)
    return [
        job_id
        for job_id, log in submissions(runs.slurm_output)
        if log.parent.name == folder and log.parent.parent.name == "rule_train"
    ]


def train_log(workdir: Path, run_id: str) -> str:
    """The train command's log of one run."""
    return (workdir / "results" / "runs" / run_id / "train.log").read_text()


def metrics_without_timing(workdir: Path, run_id: str) -> list[dict]:
    """A run's metrics.csv rows, without the wall-clock columns (those differ run to run)."""
    with (workdir / "results" / "runs" / run_id / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def show_job(job_id: str, env: dict) -> str:
    """`scontrol show job` of a job (ended jobs stay listed for MinJobAge = 10 min)."""
    return subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, env=env, timeout=30
    ).stdout


def test_every_job_ran_in_slurm_with_its_id_in_its_log(sweep):
    jobs = submissions(sweep.slurm_output)
    assert jobs, "no job was submitted to SLURM"
    slurm_logs = sweep.slurm_dir / ".snakemake" / "slurm_logs"
    rule_folders = set()
    for job_id, slurm_log in jobs:
        assert slurm_log.name == f"{job_id}.log" and slurm_log.is_file(), slurm_log
        rule_folder = slurm_log.relative_to(slurm_logs).parts[0]
        rule_folders.add(rule_folder)
        assert f"rule {rule_folder.removeprefix('rule_')}:" in slurm_log.read_text(), slurm_log
    assert "rule_fetch_data" not in rule_folders, "the download must stay on the login node"
    for run_id in sweep.run_ids:
        job_ids = train_submissions(sweep, run_id)
        assert job_ids, f"{run_id} was not trained through SLURM"
        log = train_log(sweep.slurm_dir, run_id)
        assert f"SLURM_JOB_ID={job_ids[-1]}" in log, f"{run_id}: SLURM job id not in its log"
    assert (sweep.slurm_dir / "results" / "demo" / "summary.csv").is_file()


def test_slurm_metrics_equal_local_metrics(sweep):
    runs_dir = sweep.slurm_dir / "results" / "runs"
    slurm_runs = [path.parent.relative_to(runs_dir).as_posix()
                  for path in runs_dir.rglob("metrics.csv")]  # fmt: skip
    assert sorted(slurm_runs) == sorted(sweep.run_ids) and len(slurm_runs) == 5
    for run_id in sweep.run_ids:
        slurm_rows = metrics_without_timing(sweep.slurm_dir, run_id)
        assert slurm_rows, f"{run_id}: no epochs"
        assert slurm_rows == metrics_without_timing(sweep.local_dir, run_id), run_id


def test_cancelled_training_job_is_resubmitted_and_resumes(sweep):
    run_id = sweep.cancelled_run
    job_ids = train_submissions(sweep, run_id)
    assert job_ids[0] == sweep.cancelled_job and len(job_ids) == 2, job_ids
    assert "JobState=CANCELLED" in show_job(sweep.cancelled_job, sweep.cluster.env)
    resumed = re.search(r"resuming \S+ after epoch (\d+)", train_log(sweep.slurm_dir, run_id))
    assert resumed, "the resubmitted job started from scratch instead of its checkpoint"
    rows = metrics_without_timing(sweep.slurm_dir, run_id)
    assert 1 <= int(resumed[1]) < len(rows)
    assert rows == metrics_without_timing(sweep.local_dir, run_id)


def test_gpu_request_reaches_slurm_and_the_run(sweep):
    for run_id in sweep.run_ids:
        job_id = train_submissions(sweep, run_id)[-1]
        job = show_job(job_id, sweep.cluster.env)
        assert re.search(r"TresPerJob=\S*gpu[:=]1\b", job), job
        assert "Partition=gpu " in job, job
        visible = re.search(r"CUDA_VISIBLE_DEVICES=(\S+)", train_log(sweep.slurm_dir, run_id))
        # the node has two (pretend) GPUs: each job sees the one SLURM gave it
        assert visible and visible[1] in {"0", "1"}, f"{run_id}: the run did not see SLURM's GPU"
