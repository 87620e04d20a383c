"""Run identities are a contract with every finished run: a golden file holds the identity of
every run of the shipped configs, and the plan must reproduce it exactly. A change to the
golden file is deliberate and named in CHANGELOG.md (regenerate it with
``HPSTUDY_UPDATE_GOLDEN=1 pytest tests/test_identity_golden.py``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hpstudy.core.config import load_config
from hpstudy.sweep.plan import build_plan
from hpstudy.training import identity

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "run_identities.json"
CONFIGS = ("config/demo.yaml", "config/template.yaml", "config/config.yaml")


def planned_identities() -> dict:
    """config file -> run id -> identity, for every run each shipped config plans."""
    return {
        name: {rid: run.identity for rid, run in build_plan(load_config(REPO / name)).runs.items()}
        for name in CONFIGS
    }


def test_every_shipped_run_keeps_its_identity():
    planned = planned_identities()
    if os.environ.get("HPSTUDY_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(planned, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert planned.keys() == golden.keys()
    for name in CONFIGS:
        assert planned[name] == golden[name], f"{name}: run identities changed"


def test_a_moved_digested_module_keeps_the_digest_and_a_missing_one_is_refused(tmp_path):
    package = tmp_path / "hpstudy"
    shutil.copytree(identity.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = identity.code_digest("custom", package), identity.code_digest("resnet18", package)
    identity.module_digest.cache_clear()
    # move the loop into a stage folder and rename the module of disk paths it imports
    (package / "stage").mkdir()
    loop = (package / identity.DIGESTED_AT["loop.py"]).read_text()
    assert "from hpstudy.core.paths import cache_root" in loop
    moved = loop.replace("from hpstudy.core.paths import", "from hpstudy.where import")
    (package / "stage" / "loop.py").write_text(moved)
    (package / identity.DIGESTED_AT["loop.py"]).unlink()
    saved = dict(identity.DIGESTED_AT), dict(identity.HISTORIC_NAMES)
    try:
        identity.DIGESTED_AT["loop.py"] = "stage/loop.py"
        identity.HISTORIC_NAMES["hpstudy.where"] = identity.historic_name("hpstudy.core.paths")
        assert (identity.code_digest("custom", package),
                identity.code_digest("resnet18", package)) == before  # fmt: skip
        identity.module_digest.cache_clear()
        # one arithmetic change in the batch code changes every run's digest
        batches = package / identity.DIGESTED_AT["batches.py"]
        batches.write_text(batches.read_text().replace("<< 32", "<< 31"))
        assert identity.code_digest("custom", package) != before[0]
        identity.module_digest.cache_clear()
        (package / "stage" / "loop.py").unlink()
        with pytest.raises(RuntimeError, match="loop.py"):
            identity.code_digest("custom", package)
    finally:
        identity.DIGESTED_AT.clear()
        identity.DIGESTED_AT.update(saved[0])
        identity.HISTORIC_NAMES.clear()
        identity.HISTORIC_NAMES.update(saved[1])
        identity.module_digest.cache_clear()
