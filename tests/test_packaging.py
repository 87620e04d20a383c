"""The project installs what it needs: the conda env for `--sdm conda` stays in step with
pyproject.toml, and the console script dispatches every step."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from conftest import REPO

# Needed by the controlling snakemake process, not inside the jobs' environment.
CONTROLLER_ONLY = {"snakemake", "dvc", "snakemake-executor-plugin-slurm"}


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower()


def test_conda_env_lists_every_job_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = {requirement_name(d) for d in project["dependencies"]} - CONTROLLER_ONLY
    env = yaml.safe_load((REPO / "envs" / "hpstudy.yaml").read_text())
    listed = set()
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        listed |= {requirement_name(item) for item in items}
    assert needed - listed == set(), f"missing from envs/hpstudy.yaml: {needed - listed}"


def test_console_script_lists_every_step():
    out = subprocess.run(
        [sys.executable, "-m", "hpstudy", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("fetch", "preprocess", "train", "fetch-weights", "aggregate", "findings"):
        assert f"  {command}\n" in out


def test_unknown_command_fails_cleanly():
    proc = subprocess.run(
        [sys.executable, "-m", "hpstudy", "trian"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "unknown command 'trian'" in proc.stderr


def test_code_is_ruff_and_snakefmt_clean():
    bin_dir = Path(sys.executable).parent
    for cmd in (
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        [str(bin_dir / "snakefmt"), "--check", "Snakefile", "workflow/rules"],
    ):
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd[-4:])}:\n{proc.stdout}\n{proc.stderr}"
