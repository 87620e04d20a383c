"""Runs added after planning (final runs, search trials): read and checked like the config's
own, and known to ``hpstudy restore``."""

from __future__ import annotations

import pytest
from support.runfactory import write_run

from hpstudy.core.config import validate_config
from hpstudy.core.errors import HpstudyError
from hpstudy.core.paths import Layout
from hpstudy.sweep import added_runs, restore

CONFIG = {
    "dataset": {"source": "digits", "name": "digits", "image_size": 48},
    "studies": {"lr": {"param": "lr", "values": [0.1]}},
    "seeds": [0],
}
DIGITS = {"name": "digits", "image_size": 48, "num_classes": 10}


def test_an_added_run_is_an_ordinary_run_named_by_its_identity(tmp_path):
    path = tmp_path / "final.json"
    added_runs.write(
        path, "final", [{"study": "lr", "settings": {"lr": 0.01, "epochs": 3}, "seed": 2}]
    )
    [(study, run)] = added_runs.read(path, "digits-48", validate_config(CONFIG)["dataset"])
    assert study == "lr" and run.seed == 2
    assert run.run_id == "digits-48/lr-0.01_ep-3/seed-2"
    assert run.settings["batch_size"] == 256  # every other setting at its default


def test_an_unreadable_or_untrainable_added_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "final.json"
    path.write_text("{not json")
    with pytest.raises(HpstudyError, match="final.json is not a readable added-runs file"):
        added_runs.read(path, "digits-48", validate_config(CONFIG)["dataset"])
    added_runs.write(
        path, "final", [{"study": "lr", "settings": {"model": "resnet_9000"}, "seed": 0}]
    )
    with pytest.raises(HpstudyError, match="resnet_9000"):
        added_runs.read(path, "digits-48", validate_config(CONFIG)["dataset"])


def test_restore_knows_added_runs_and_removes_one_trained_with_other_settings(tmp_path):
    config = validate_config(CONFIG)
    layout = Layout.from_config(config)
    runs_dir = tmp_path / layout.runs
    sweep_run = write_run(runs_dir, seed=0, data=DIGITS, lr=0.1)
    final_run = write_run(runs_dir, seed=0, data=DIGITS, lr=0.01, epochs=3)
    stale_run = write_run(runs_dir, seed=1, data=DIGITS, lr=0.01, epochs=3)
    # the stale run's recorded identity is another one (its params.json was another config's)
    params = runs_dir / stale_run / "params.json"
    params.write_text(params.read_text().replace('"lr": 0.01', '"lr": 0.02'))
    added_runs.write(
        tmp_path / layout.selection_file("final-runs.json"), "final",
        [{"study": "lr", "settings": {"lr": 0.01, "epochs": 3}, "seed": s} for s in (0, 1, 2)],
    )  # fmt: skip
    found = restore.plan_restore(config, tmp_path)
    assert sorted(found.matching) == sorted([sweep_run, final_run])
    assert list(found.stale) == [stale_run] and "'lr': 0.02" in found.stale[stale_run]
    assert found.missing == ["digits-48/lr-0.01_ep-3/seed-2"]
