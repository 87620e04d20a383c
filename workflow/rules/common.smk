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
from hpstudy.data.command_options import fetch_options, preprocess_options
from hpstudy.training.models.catalog import weights_info
from hpstudy.sweep.plan import build_plan, write_membership, write_run_specs
from hpstudy.tuning.search_spec import search_config
from hpstudy.rule_targets import SEARCH_FIGURES, figure_targets

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
# The split options of fetch and preprocess, quoted for their shell lines (numbers, so the same
# text as before quoting: these params stay as Snakemake recorded them)
_SPLIT = {
    key: shlex.quote(str(DATASET[key]))
    for key in ("test_fraction", "val_fraction", "split_seed")
}
# Settings added later ride on these params, each only when set (quoted there), so a config
# that does not use them keeps the params Snakemake recorded (fetch_options, preprocess_options)
SPLIT_ARGS = (
    f"--test-fraction {_SPLIT['test_fraction']} --split-seed {_SPLIT['split_seed']}"
    + fetch_options(DATASET)
)
PREPROCESS_SPLIT_ARGS = (
    f"--test-fraction {_SPLIT['test_fraction']} --val-fraction {_SPLIT['val_fraction']}"
    f" --split-seed {_SPLIT['split_seed']}" + preprocess_options(DATASET)
)
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
BEST = LAYOUT.selection_file("best.yaml")
FINAL_RUNS = LAYOUT.selection_file("final-runs.json")
FINAL_TABLE = LAYOUT.selection_file("final.csv")
SELECTED = [BEST] * bool(SELECTION) + [FINAL_TABLE] * bool(FINAL)

# Adaptive searches (search.smk): what a finished search writes into its folder
SEARCHES = config.get("search", {})
# A config may hold searches alone: then there is no grid to tabulate, judge or draw
GRID = bool(PLAN.studies)
# selection's options naming the grid's results folder and each search's folder (a search's
# trials compete as one more study), quoted for the shell line
SELECT_TABLES_ARG = (
    f" --tables {shlex.quote(LAYOUT.results)}" if GRID else ""
) + "".join(f" --search-tables {shlex.quote(LAYOUT.search_dir(n))}" for n in SEARCHES)
SEARCH_FILES = (
    "trials.csv", "best.yaml", "journal.log", "metrics.csv", "summary.csv", "summary.json",
    "seed_summary.csv", "headline.json",
)  # fmt: skip


def search_targets():
    """Every search's files and figures."""
    return [
        LAYOUT.search_file(name, file)
        for name in SEARCHES
        for file in (
            *SEARCH_FILES,
            *(
                f"figures/{kind}.{ext}"
                for kind in SEARCH_FIGURES
                for ext in ("png", "svg")
            ),
        )
    ]


def search_config_json(name):
    """The part of the config a search's steps read, as their params (a change reruns them)."""
    return json.dumps(search_config(config, name))


def run_outputs(run_ids):
    """Every file a finished run must have (layout.RUN_OUTPUTS), for each run of ``run_ids``.

    Asking for all of them, not only summary.json, retrains a run that lost one (e.g. a failed
    second trainer's outputs, deleted by Snakemake while the first kept training).
    """
    return [LAYOUT.run_file(rid, name) for rid in run_ids for name in paths.RUN_OUTPUTS]


def run_targets():
    """Every output of every run of the sweep."""
    return run_outputs(RUNS)


def step_targets():
    """The files of the steps that add runs: each search round's proposals and results, and
    the final runs' file. Targets of their own, because Snakemake looks for a job's missing
    output only where a target or a job about to run asks for it: so a deleted one is written
    again (from the files before it; nothing that is done retrains)."""
    rounds = [
        step(name, r)
        for name, spec in SEARCHES.items()
        for r in range(spec["rounds"])
        for step in (LAYOUT.proposals, LAYOUT.search_results)
    ]
    return rounds + ([FINAL_RUNS] if FINAL else [])


def results_targets():
    """This config's tables, findings and figures (and TensorBoard folders when enabled)."""
    grid = [LAYOUT.table(name) for name in paths.RESULT_FILES] if GRID else []
    # the data audit is an input of the findings; without a grid, a target of its own
    tables = (
        grid + SELECTED + search_targets() + step_targets() + [LAYOUT.audit(VARIANT)]
    )
    # what the sweep cost, and what its budget bought (rules cost and budget)
    tables += [LAYOUT.table("cost.csv"), LAYOUT.table("budget.csv")]
    figures = figure_targets(LAYOUT, PLAN, DATASET)
    boards = [f"{LAYOUT.results}/tensorboard/{rid}" for rid in RUNS]
    return tables + figures + (boards if config["tensorboard"] else [])


def archive_input(wildcards):
    """The user's local zip when dataset.source is `archive`, `ancient`: its content digest
    (a param) decides, not its time, so a copy made anew fetches nothing. A folder is no
    input (Snakemake cannot see files change inside it): see SOURCE_DIGEST."""
    archive = DATASET["archive"] if DATASET["source"] == "archive" else None
    return ancient(archive) if archive and not os.path.isdir(archive) else []


def local_folder():
    """The folder of images (or Parquet shards, or one .parquet file) the raw zip is packed
    from (dataset.path, or a folder given as dataset.archive), or None."""
    if DATASET["source"] in ("folder", "parquet"):
        return DATASET["path"]
    archive = DATASET["archive"] if DATASET["source"] == "archive" else None
    return archive if archive and os.path.isdir(archive) else None


def source_digest(cache):
    """The local source's content (a fetch param, so exactly a change of its bytes fetches
    again): a folder's content digest, a local zip's sha256; empty for other sources."""
    folder = local_folder()
    setting = "dataset.archive" if DATASET["source"] == "archive" else "dataset.path"
    if folder and os.path.isdir(folder):
        return f"folder {folder_digest(folder, setting, cache)}"
    if DATASET["source"] not in ("archive", "parquet"):
        return ""
    source = DATASET["archive"] if DATASET["source"] == "archive" else DATASET["path"]
    try:
        return f"{DATASET['source']} {cache.sha256(source)}"
    except OSError as err:
        raise HpstudyError(
            f"The dataset archive {DATASET['archive']} (from `dataset.archive`) cannot be "
            f"read ({err.strerror or err}). Set `dataset.archive` to the path of the downloaded "
            "zip (or of a folder holding the dataset), or use `dataset.source: kaggle`."
        ) from None


# What the data's bytes are, decided before any job runs (a job on a cluster node never
# fetches). ZIP_SETTLED: a fetch rerun cannot change the bytes the arrays were made from, so
# preprocess takes the raw zip as `ancient` and a rerun of fetch retrains nothing.
SOURCE_DIGEST, ZIP_SETTLED = "", False
if not workflow.remote_exec:
    _DIGESTS = DigestCache(CONTENT_CACHE)
    try:
        SOURCE_DIGEST = source_digest(_DIGESTS)
        ZIP_SETTLED = same_zip_after_fetch(
            DATASET,
            RAW_ZIP,
            RAW_META,
            LAYOUT.manifest(VARIANT),
            _DIGESTS,
            # Parquet shards are packed their own way: never compared with a folder
            local_folder() if DATASET["source"] != "parquet" else None,
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
    return [LAYOUT.run_file(run.run_id, "summary.json") for run in final_runs()]


def round_runs(search, round_):
    """A search round's trials, once its checkpoint has proposed them."""
    proposals = checkpoints.search_round.get(search=search, round=round_)
    return register_added(proposals.output[0])


def trial_runs(wildcards):
    """The trials of the search round a job's wildcards name."""
    return round_runs(wildcards.search, wildcards.round)


def added_run_targets(wildcards):
    """Every output of every run a step added (search trials, final runs), once the
    checkpoints that add them have run: an added run that lost an output (e.g. to a refused
    second trainer) is trained again, as a run of the sweep is (run_targets)."""
    runs = [
        run
        for name, spec in SEARCHES.items()
        for r in range(spec["rounds"])
        for run in round_runs(name, r)
    ]
    return run_outputs(run.run_id for run in runs + (final_runs() if FINAL else []))


def trial_summaries(wildcards):
    """A search round's trial summaries."""
    runs = trial_runs(wildcards)
    return [LAYOUT.run_file(run.run_id, "summary.json") for run in runs]


def pretrained_weights(wildcards):
    """The fetched ImageNet weights a pretrained run loads (none when a local file is set)."""
    settings = known_run(wildcards).settings
    if not settings["pretrained"] or settings["weights"]:
        return []
    return LAYOUT.weights_file(
        settings["model"], weights_info(settings["model"])["file"]
    )
