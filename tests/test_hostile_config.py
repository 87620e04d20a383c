"""A config that tries to run commands, and failures found while Snakemake builds the DAG:
refused before any job, each as one `hpstudy: error:` paragraph naming the input and the fix,
said last."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import REPO, copy_repo, snakemake

INJECTED = "results/a b $(touch x)"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("repo"))


def assert_one_paragraph_last(proc, *named: str) -> str:
    """The run failed, and the last thing it said is one hpstudy paragraph naming each of
    ``named``; returns the paragraph."""
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("hpstudy: error:"), proc.stderr[-3000:]
    for text in named:
        assert text in last, (text, last)
    assert "Traceback" not in last
    return last


def assert_nothing_ran(workdir) -> None:
    assert not list(workdir.rglob("x")), "the injected command ran"
    for folder in ("data", "results", "checkpoints"):
        assert not (workdir / folder).exists(), f"{folder}/ was written"


@pytest.mark.parametrize("via", ["configfile", "--config"])
def test_a_path_that_would_run_a_command_is_refused_before_any_job(workdir, tmp_path, via):
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    if via == "configfile":
        demo["paths"]["results"] = INJECTED
        path = tmp_path / "hostile.yaml"
        path.write_text(yaml.safe_dump(demo))
        args = ["--configfile", str(path)]
    else:
        args = ["--configfile", "config/demo.yaml", "--config", f"paths={{results: {INJECTED}}}"]
    proc = snakemake(workdir, "--cores", "1", *args, check=False)
    assert_one_paragraph_last(proc, "paths.results", repr(INJECTED), "holds $ ( )")
    assert_nothing_ran(workdir)


def folder_config(tmp_path, folder, **dataset) -> str:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["dataset"] = {"source": "folder", "path": str(folder), "name": "mine", **dataset}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_folder_source_error_found_while_planning_is_one_paragraph(workdir, tmp_path):
    folder = tmp_path / "images"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.jpg").write_bytes(b"x")
    (folder / "cats" / "b.jpg").symlink_to("/etc/hostname")
    proc = snakemake(workdir, "-n", "--cores", "1", "--configfile",
                     folder_config(tmp_path, folder), check=False)  # fmt: skip
    assert_one_paragraph_last(proc, str(folder), "cats/b.jpg", "symbolic link", "dataset.path")
    assert "InputFunctionException" not in proc.stderr
    assert_nothing_ran(workdir)


def test_a_missing_local_archive_is_one_paragraph(workdir, tmp_path):
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["dataset"] = {"source": "archive", "archive": str(tmp_path / "nowhere.zip")}
    path = tmp_path / "archive.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "--cores", "1", "--configfile", str(path), check=False)
    assert_one_paragraph_last(proc, "nowhere.zip", "dataset.archive")
    assert_nothing_ran(workdir)


def test_an_error_in_an_input_function_is_said_again_last(workdir):
    target = "results/runs/digits-48/no-such-run/seed-0/summary.json"
    proc = snakemake(workdir, target, "-n", "--cores", "1", "--configfile", "config/demo.yaml",
                     check=False)  # fmt: skip
    assert "InputFunctionException" in proc.stdout + proc.stderr  # Snakemake's report, then ours
    assert_one_paragraph_last(proc, "results/runs/digits-48/no-such-run/seed-0", "hpstudy sweep")


def test_a_yaml_tag_in_a_config_runs_nothing_and_hpstudy_names_it(workdir, tmp_path):
    """Snakemake reads a --configfile itself, before the workflow's code: its refusal is its
    own message ("not valid JSON or YAML ... tab indentation"), and nothing is constructed or
    run. `hpstudy sweep --configfile` (which the README points to for it, and which the DVC
    stages run first through `hpstudy restore`) names the file, the line, the tag and the
    fix in one paragraph."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "tagged.yaml"
    demo = (REPO / "config" / "demo.yaml").read_text()
    path.write_text(f"{demo}\nnote: !!python/object/apply:os.system ['touch {marker}']\n")
    proc = snakemake(workdir, "-n", "--cores", "1", "--configfile", str(path), check=False)
    assert proc.returncode != 0 and "not valid JSON or YAML" in proc.stdout + proc.stderr
    for command in (["sweep"], ["restore"]):
        done = subprocess.run(
            [sys.executable, "-m", "hpstudy", *command, "--configfile", str(path)],
            cwd=workdir, capture_output=True, text=True, check=False,
            env={"PYTHONPATH": str(workdir / "workflow"), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hpstudy: error:"), done.stderr
        tag, line = "!!python/object/apply:os.system", f"line {demo.count(chr(10)) + 2}"
        for text in (str(path), tag, line, "Remove the tag"):
            assert text in lines[0], (text, lines[0])
    assert not marker.exists()
    assert_nothing_ran(workdir)
