# Config -> validated config -> the plan (every distinct run and the studies that use it),
# built once; the targets and input helpers the rules share.
import json
import os
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

from hpstudy.sweep import added_runs
from hpstudy.core import paths
from hpstudy.core.config import validate_config
from hpstudy.core.errors import HpstudyError
from hpstudy.core.failures import reprint_failures, said_at_exit
from hpstudy.data.content import CACHE_FILE as CONTENT_CACHE
from hpstudy.data.content import DigestCache
from hpstudy.data.refetch import same_zip_after_fetch
from hpstudy.data.fetch import folder_digest
from hpstudy.data import command_options
from hpstudy.training.models.catalog import weights_info
from hpstudy.sweep.plan import build_plan, write_membership, write_run_specs
from hpstudy.tuning.search_spec import search_config
from hpstudy.rule_targets import (
    SEARCH_FIGURES,
    results_targets,
    search_tables,
    selection_targets,
    whole_run_targets,
)

CONFIG_SOURCE = " + ".join(
    map(str, workflow.overwrite_configfiles or ["config/config.yaml"])
)
try:
    config.update(validate_config(config, source=CONFIG_SOURCE))
    PLAN = build_plan(config)
except HpstudyError as err:
    sys.stderr.write(f"hpstudy: error: {err}\n")
    sys.exit(1)

LAYOUT = paths.Layout.from_config(config)
RUNS = PLAN.runs
VARIANT = PLAN.variant
DATASET = config["dataset"]
RAW_ZIP = LAYOUT.raw_zip(DATASET["name"])
RAW_META = LAYOUT.raw_meta(DATASET["name"])
CONDA_ENV = "../../envs/hpstudy.yaml"
HPSTUDY = "python -m hpstudy"
# The train jobs read their settings from files written here; a job on a cluster node parses
# the workflow again and finds the files its submitting process wrote.
if not workflow.remote_exec:
    write_run_specs(RUNS.values(), LAYOUT)
MEMBERSHIP = write_membership(PLAN)


RUN = paths.RUN_WILDCARDS
ANY_PRETRAINED = any(run.settings["pretrained"] for run in RUNS.values())


wildcard_constraints:
    variant="[^/]+",
    name="[^/]+",
    seed="[0-9]+",


# Selection and the final runs (select.smk), when the config asks for them
SELECTION = config.get("selection")
FINAL = config.get("final")
BEST = LAYOUT.selection_file(paths.BEST_FILE)
FINAL_RUNS = LAYOUT.selection_file(paths.FINAL_RUNS)
FINAL_TABLE = LAYOUT.selection_file(paths.FINAL_TABLE)

# Adaptive searches (search.smk): what a finished search writes into its folder
SEARCHES = config.get("search", {})
# A config may hold searches alone: then there is no grid to tabulate, judge or draw
GRID = bool(PLAN.studies)
# selection's options naming the grid's results folder and each search's folder (a search's
# trials compete as one more study), quoted for the shell line
SELECT_TABLES_ARG = (
    f" --tables {shlex.quote(LAYOUT.results)}" if GRID else ""
) + "".join(f" --search-tables {shlex.quote(LAYOUT.search_dir(n))}" for n in SEARCHES)


def search_config_json(name):
    """The part of the config a search's steps read, as their params (a change reruns them)."""
    return json.dumps(search_config(config, name))


def run_summaries(run_ids):
    """Each run's summary.json, written last: what a step that reads finished runs waits for
    (a run trained again rewrites it). The same list whatever is on disk, so a step's set of
    inputs never changes with the files."""
    return [LAYOUT.run_file(rid, paths.RUN_OUTPUT_NAMES["summary"]) for rid in run_ids]


def run_outputs(run_ids):
    """Every output of each run of ``run_ids``: the inputs of a search's steps, which wait for
    a trial being trained again (e.g. one that lost an output). A search has few trials; a
    sweep's thousands of runs are read through their summaries (run_summaries)."""
    return [LAYOUT.run_file(rid, name) for rid in run_ids for name in paths.RUN_OUTPUTS]


def whole_runs(run_ids):
    """What the default target asks of ``run_ids``: each summary.json, and each output that a
    finished run has lost, so that run is trained again (hpstudy.rule_targets.whole_run_targets).
    """
    return whole_run_targets(LAYOUT, run_ids, scan=not workflow.remote_exec)


def run_targets():
    """Every run of the sweep, whole."""
    return whole_runs(RUNS)


def archive_input(wildcards):
    """The user's local zip when dataset.source is `archive`, `ancient`: its content digest
    (a param) decides, not its time, so a copy made anew fetches nothing. A folder is no
    input (Snakemake cannot see files change inside it): see SOURCE_DIGEST."""
    archive = command_options.local_archive(DATASET)
    return ancient(archive) if archive else []


# What the data's bytes are, decided before any job runs (a job on a cluster node never
# fetches). ZIP_SETTLED: a fetch rerun cannot change the bytes the arrays were made from, so
# preprocess takes the raw zip as `ancient` and a rerun of fetch retrains nothing.
SOURCE_DIGEST, ZIP_SETTLED = "", False
if not workflow.remote_exec:
    _DIGESTS = DigestCache(CONTENT_CACHE)
    try:
        SOURCE_DIGEST = command_options.source_digest(DATASET, _DIGESTS)
        ZIP_SETTLED = same_zip_after_fetch(
            DATASET,
            RAW_ZIP,
            RAW_META,
            LAYOUT.manifest(VARIANT),
            _DIGESTS,
            # Parquet shards are packed their own way: never compared with a folder
            (
                command_options.local_folder(DATASET)
                if DATASET["source"] != "parquet"
                else None
            ),
        )
    except HpstudyError as err:
        sys.stderr.write(f"hpstudy: error: {err}\n")
        sys.exit(1)
    _DIGESTS.save()
RAW_ZIP_INPUT = ancient(RAW_ZIP) if ZIP_SETTLED else RAW_ZIP


def run_of(wildcards):
    """The run id a train job's wildcards name."""
    return paths.run_id(wildcards.variant, wildcards.name, wildcards.seed)


# Runs that checkpoints added after planning (final runs; hpstudy.sweep.added_runs), by run id
ADDED = {}


@said_at_exit
def register_added(path):
    """The runs of an added-runs file a checkpoint wrote: known from now on, with their
    settings files written; returned in the file's order."""
    runs = [run for _, run in added_runs.read(path, VARIANT, DATASET)]
    ADDED.update((run.run_id, run) for run in runs)
    if not workflow.remote_exec:
        write_run_specs(runs, LAYOUT)
    return runs


@said_at_exit
def known_run(wildcards):
    """The run a train job's wildcards name: one of the sweep's, or one a checkpoint added
    (in a job's own process, e.g. on a cluster node, read from the added-runs files)."""
    rid = run_of(wildcards)
    if rid not in RUNS and rid not in ADDED:
        ADDED.update(added_runs.known(LAYOUT, VARIANT, DATASET))
    if rid in RUNS:
        return RUNS[rid]
    if rid in ADDED:
        return ADDED[rid]
    raise HpstudyError(
        f"{LAYOUT.run_dir(rid)} is no run of this config: neither in its sweep nor added by "
        "a step (a final run or a search trial). Ask for the config's targets instead, e.g. "
        "`snakemake --cores 1`, or check the run name with `hpstudy sweep`."
    )


def final_runs():
    """The final runs, once selection (a checkpoint) has said which runs they are."""
    return register_added(checkpoints.select.get().output.runs)


def final_summaries(wildcards):
    """The final runs' summaries."""
    return run_summaries(run.run_id for run in final_runs())


def round_runs(search, round_):
    """A search round's trials, once its checkpoint has proposed them."""
    proposals = checkpoints.search_round.get(search=search, round=round_)
    return register_added(proposals.output[0])


def trial_runs(wildcards):
    """The trials of the search round a job's wildcards name."""
    return round_runs(wildcards.search, wildcards.round)


def added_run_targets(wildcards):
    """Every run a step added (search trials, final runs), whole, once the checkpoints that
    add them have run: an added run that lost an output (e.g. to a refused second trainer) is
    trained again, as a run of the sweep is (run_targets)."""
    runs = [
        run
        for name, spec in SEARCHES.items()
        for r in range(spec["rounds"])
        for run in round_runs(name, r)
    ]
    return whole_runs(run.run_id for run in runs + (final_runs() if FINAL else []))


def search_trial_outputs(wildcards):
    """Every output of every trial of a search: its last step reads their folders, so it
    waits for a trial being trained again (e.g. one that lost an output)."""
    rounds = range(SEARCHES[wildcards.search]["rounds"])
    runs = [run for r in rounds for run in round_runs(wildcards.search, r)]
    return run_outputs(run.run_id for run in runs)


def trial_summaries(wildcards):
    """A search round's trial summaries."""
    return run_summaries(run.run_id for run in trial_runs(wildcards))


def pretrained_weights(wildcards):
    """The fetched ImageNet weights a pretrained run loads (none when a local file is set)."""
    settings = known_run(wildcards).settings
    if not settings["pretrained"] or settings["weights"]:
        return []
    return LAYOUT.weights_file(
        settings["model"], weights_info(settings["model"])["file"]
    )
