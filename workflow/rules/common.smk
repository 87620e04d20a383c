# Config -> validated config with defaults -> the sweep table, built once; helpers for the rules.
import os
import re
import shlex
import sys
from pathlib import Path

# Rules call the package as `python -m hpstudy ...`. Make it importable from this checkout
# (also in `--sdm conda` environments and on cluster nodes, where it is not pip-installed), and
# without conda let `python` be the interpreter running Snakemake, so an un-activated
# `.venv/bin/snakemake` still runs every job in its own virtual environment.
PACKAGE_PARENT = str(Path(workflow.basedir) / "workflow")
sys.path.insert(0, PACKAGE_PARENT)
_PATH_PREFIX = (
    ""
    if "conda" in map(str, workflow.deployment_settings.deployment_method)
    else f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH; "
)
shell.prefix(
    f"{_PATH_PREFIX}export PYTHONPATH={shlex.quote(PACKAGE_PARENT)}"
    "${{PYTHONPATH:+:$PYTHONPATH}}; "
)

from hpstudy.config import validate_config
from hpstudy.errors import HpstudyError
from hpstudy.sweep import code_digest, expand_sweep, run_params

CONFIG_SOURCE = " + ".join(
    map(str, workflow.overwrite_configfiles or ["config/config.yaml"])
)
try:
    config.update(validate_config(config, source=CONFIG_SOURCE))
    RUNS = {run["run_id"]: run for run in expand_sweep(config)}
except HpstudyError as err:
    sys.stderr.write(f"hpstudy: error: {err}\n")
    sys.exit(1)

HPSTUDY = "python -m hpstudy"
CONDA_ENV = "../../envs/hpstudy.yaml"
DATA = config["paths"]["data"]
RESULTS = config["paths"]["results"]
CHECKPOINTS = config["paths"]["checkpoints"]
RESOURCES = config["paths"]["resources"]
LOGS = f"{RESULTS}/logs"
STUDIES = list(config["studies"])
TRAINING_CODE = code_digest()

DATASET = config["dataset"]
RAW_ZIP = f"{DATA}/raw/{DATASET['name']}.zip"
RAW_META = f"{DATA}/raw/{DATASET['name']}.json"
PROCESSED = f"{DATA}/processed/{DATASET['name']}-{DATASET['image_size']}"
MANIFEST = f"{PROCESSED}/manifest.json"


wildcard_constraints:
    run_id="|".join(map(re.escape, RUNS)) if RUNS else "[^/]+",


def run_ids(study=None):
    """Run ids of one study (or of the whole sweep), in config order."""
    return [
        rid for rid, run in RUNS.items() if study is None or run["experiment"] == study
    ]


def run_file(run_id, name):
    """Path of one of a run's files, e.g. run_file(rid, 'summary.json')."""
    return f"{RESULTS}/runs/{run_id}/{name}"


def run_targets():
    """Every run's summary (the file a finished run writes last)."""
    return [run_file(rid, "summary.json") for rid in RUNS]


def archive_input(wildcards):
    """The user's local zip when dataset.source is `archive` (a newer copy refetches)."""
    return DATASET["archive"] if DATASET["source"] == "archive" else []


def pretrained_weights(wildcards):
    """The ImageNet weights a run loads: the config's local file, or the fetched one."""
    run = RUNS[wildcards.run_id]
    if not (run["model"] == "resnet18" and run["pretrained"]):
        return []
    return run["weights"] or f"{RESOURCES}/weights/resnet18-imagenet1k-v1.pth"
