"""The order train jobs start in: the longest runs first (Snakemake priority)."""

from __future__ import annotations

import yaml
from conftest import REPO

from hpstudy.core.config import validate_config
from hpstudy.sweep.plan import build_plan
from hpstudy.sweep.run_times import train_priority


def test_a_zoo_model_run_outranks_a_longer_custom_cnn_run():
    custom = {"model": "custom", "epochs": 4}
    resnet = {"model": "resnet18", "epochs": 2}
    assert train_priority(resnet) > train_priority(custom)
    assert train_priority({**custom, "epochs": 8}) > train_priority(custom)


def test_the_demo_starts_its_resnet18_runs_first():
    config = validate_config(yaml.safe_load((REPO / "config" / "demo.yaml").read_text()))
    runs = build_plan(config).runs.values()
    order = sorted(runs, key=lambda run: -train_priority(run.settings))
    models = [run.settings["model"] for run in order]
    assert models == ["resnet18"] * 9 + ["custom"] * 21
