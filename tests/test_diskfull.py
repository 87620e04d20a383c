"""A full disk in each step that writes (preprocess, train, figures): one paragraph naming the
file, a nonzero exit, and nothing half-written that a rerun would take as finished."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.runfactory import Sweep
from support.trainfactory import run_spec, write_dataset
from support.zipfactory import solid_dataset, write_zip

CLASSES = ["buildings", "forest", "glacier"]


def hpstudy(*args):
    return subprocess.run([sys.executable, "-m", "hpstudy", *map(str, args)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def assert_one_paragraph(done, where):
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("hpstudy: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "The disk is full" in errors[0] and where in errors[0] and "rerun" in errors[0]


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_preprocess_on_a_full_disk(tmp_path, full_disk):
    zip_path = write_zip(tmp_path / "d.zip", solid_dataset(CLASSES, train_per_class=8))
    out = full_disk / "processed"
    done = hpstudy("preprocess", "--archive", zip_path, "--out-dir", out, "--size", "96")
    assert_one_paragraph(done, str(out / "train_x.npy"))
    assert leftovers(full_disk) == [], "no manifest, no array, no temporary file"


@pytest.mark.slow  # spawns processes and waits on them: seconds each
def test_training_on_a_full_disk(tmp_path, full_disk):
    data = write_dataset(tmp_path / "data", size=16, train=96, test=36)
    spec = run_spec(full_disk)  # its run folder and checkpoints on the full disk
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(spec))
    out = full_disk / "runs" / spec["run_id"]
    done = hpstudy("train", "--settings", settings, "--data-dir", data, "--out-dir", out)
    assert_one_paragraph(done, "last.pt")
    assert not (out / "summary.json").exists()
    assert not [p for p in leftovers(full_disk) if ".tmp-" in p]


def test_figures_on_a_full_disk(tmp_path, full_disk):
    import pandas as pd

    from hpstudy.report.comparison import COMPARISON_COLUMNS

    sweep = Sweep(tmp_path)
    sweep.study("wd", "weight_decay", [0.01, 1.0])
    sweep.aggregate()
    pd.DataFrame(columns=COMPARISON_COLUMNS).to_csv(sweep.out / "comparison.csv", index=False)
    (full_disk / "ballast").write_bytes(b"\0" * 200_000)  # what is left: too little for a PNG
    png = full_disk / "figures" / "curves.png"
    done = hpstudy(
        "figures", "--kind", "curves", "--study", "wd", "--tables", sweep.out, "--out", png
    )
    assert_one_paragraph(done, str(png))
    assert leftovers(full_disk) == ["ballast"]
