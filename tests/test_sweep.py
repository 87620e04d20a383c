"""Sweep expansion: one explicit, stable, uniquely named run per setting and seed."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import REPO

from hpstudy.config import load_config, train_settings_schema
from hpstudy.errors import HpstudyError
from hpstudy.sweep import code_digest, expand_sweep, format_value, run_params, sweep_table

SETTINGS = set(train_settings_schema()["properties"])


@pytest.fixture
def seed_config():
    return load_config(REPO / "config" / "config.yaml")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-4, "1e-04"),
        (0.0001, "1e-04"),
        (1e-7, "1e-07"),
        (0.01, "1e-02"),
        (1.0, "1e+00"),
        (2.5e-3, "2.5e-03"),
        (3e-4, "3e-04"),
        (256, "256"),
        ([3, 5, 7], "3-5-7"),
        (True, "true"),
        ("adamw", "adamw"),
    ],
)
def test_format_value_is_canonical(value, text):
    assert format_value(value) == text


def test_seed_studies_expand_to_the_posts_runs(seed_config):
    runs = expand_sweep(seed_config)
    ids = [r["run_id"] for r in runs]
    assert ids == [
        "learning_rate/lr-1e-07/seed-0",
        "learning_rate/lr-1e-04/seed-0",
        "learning_rate/lr-1e-02/seed-0",
        "batch_size/bs-10/seed-0",
        "batch_size/bs-256/seed-0",
        "batch_size/bs-450/seed-0",
        "kernel_width/kw-3/seed-0",
        "kernel_width/kw-5/seed-0",
        "kernel_width/kw-7/seed-0",
        "weight_decay/wd-1e-02/seed-0",
        "weight_decay/wd-1e+00/seed-0",
    ]
    by_id = {r["run_id"]: r for r in runs}
    lr = by_id["learning_rate/lr-1e-02/seed-0"]
    assert (lr["model"], lr["pretrained"], lr["batch_size"], lr["lr"]) == (
        "resnet18",
        True,
        32,
        0.01,
    )
    assert by_id["kernel_width/kw-3/seed-0"]["kernel_width"] == [3, 3, 3]
    assert by_id["batch_size/bs-10/seed-0"]["kernel_width"] == [5, 5, 7]
    assert by_id["weight_decay/wd-1e+00/seed-0"]["batch_size"] == 450
    for run in runs:
        assert set(run) >= SETTINGS, "every setting is explicit"
        assert all(part and ".." not in part for part in run["run_id"].split("/"))


def test_seeds_repeat_every_run_and_ids_are_unique(seed_config):
    seed_config["seeds"] = [0, 1, 2]
    runs = expand_sweep(seed_config)
    ids = [r["run_id"] for r in runs]
    assert len(ids) == 33 == len(set(ids))
    assert {r["seed"] for r in runs} == {0, 1, 2}
    assert len(sweep_table(runs)) == 33


def test_expansion_is_stable_and_one_change_touches_one_run(seed_config):
    before = {r["run_id"]: run_params(r) for r in expand_sweep(seed_config)}
    assert before == {r["run_id"]: run_params(r) for r in expand_sweep(copy.deepcopy(seed_config))}
    seed_config["studies"]["weight_decay"]["values"] = [0.01, 0.5]
    after = {r["run_id"]: run_params(r) for r in expand_sweep(seed_config)}
    assert set(before) ^ set(after) == {
        "weight_decay/wd-1e+00/seed-0",
        "weight_decay/wd-5e-01/seed-0",
    }
    seed_config["studies"]["weight_decay"]["values"] = [0.01, 1.0]
    seed_config["studies"]["batch_size"]["set"] = {"epochs": 12}
    changed = {
        rid
        for rid, p in {r["run_id"]: run_params(r) for r in expand_sweep(seed_config)}.items()
        if before[rid] != p
    }
    assert changed == {
        "batch_size/bs-10/seed-0",
        "batch_size/bs-256/seed-0",
        "batch_size/bs-450/seed-0",
    }
    assert json.loads(before["batch_size/bs-10/seed-0"])["epochs"] == 10


def test_a_bad_swept_value_names_its_place(seed_config):
    seed_config["studies"]["batch_size"]["values"] = [10, 0]
    with pytest.raises(HpstudyError, match=r"studies\.batch_size\.values\[1\]"):
        expand_sweep(seed_config)


def test_swept_text_values_read_as_numbers(seed_config):
    seed_config["studies"]["learning_rate"]["values"] = ["1e-7", 1e-4]
    runs = expand_sweep(seed_config)
    assert runs[0]["run_id"] == "learning_rate/lr-1e-07/seed-0" and runs[0]["lr"] == 1e-7


def test_duplicate_values_are_refused(seed_config):
    seed_config["studies"]["batch_size"]["values"] = [10, 10]
    with pytest.raises(HpstudyError, match="duplicate"):
        expand_sweep(seed_config)


def test_code_digest_follows_training_sources(tmp_path):
    for name in ("train.py", "models.py"):
        (tmp_path / name).write_text("x = 1\n")
    first = code_digest(tmp_path)
    assert first == code_digest(tmp_path)
    (tmp_path / "unrelated.py").write_text("y = 3\n")
    assert code_digest(tmp_path) == first, "files outside TRAINING_SOURCES do not count"
    (tmp_path / "models.py").write_text("x = 2\n")
    assert code_digest(tmp_path) != first
