"""Where everything lives: the one home of every path the rules, the steps, ``restore`` and
``aggregate`` use. Pure string work; nothing here touches the disk.

::

    <data>/raw/<name>.zip, <name>.json                   the raw dataset and its sidecar
    <data>/processed/<variant>/manifest.json, *_x.npy    decoded arrays of one data variant,
                               index.csv, audit.json     per-image fingerprints, the data audit
    <runs>/<variant>/<run name>/seed-<n>/                one run: params.json, metrics.csv,
                                                         summary.json, model.pt, train.log
    <checkpoints>/<variant>/<trajectory>/seed-<n>/       resume checkpoints of unfinished runs
    <checkpoints>/.locks/...                             one lock file per trajectory
    <results>/                                           one config's tables, figures, findings
    <results>/selection/                                 best.yaml, final.csv, final-runs.json
    <results>/findings/looks/look-<k>.json               a sequential sweep's looks (added runs)
    <results>/search/<name>/                             a search: proposals/ and results/ per
                                                         round, trials.csv, its tables, best.yaml,
                                                         journal.log, figures/

Runs are pooled per data variant (the dataset and every preprocessing setting), so configs
that share a run share its folder, while each config's tables and figures stay in its own
results folder. A run id is ``<variant>/<run name>/seed-<n>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# A run id as Snakemake's wildcards: three of them, so a rule's inputs are plain patterns
RUN_WILDCARDS = "{variant}/{name}/seed-{seed}"
# what a finished train job leaves in its run folder (summary.json is written last)
PREDICTIONS = "predictions.npz"  # the final epoch's test predictions: label, pred, prob
# each by the name the train rule gives it (its outputs are this mapping)
RUN_OUTPUT_NAMES = {
    "params": "params.json",
    "metrics": "metrics.csv",
    "summary": "summary.json",
    "model": "model.pt",
    "predictions": PREDICTIONS,
}
RUN_OUTPUTS = tuple(RUN_OUTPUT_NAMES.values())
TRAIN_LOG = "train.log"
SETTINGS_ROOT = ".snakemake/hpstudy/settings"  # per-run settings files the train jobs read
PLANS_ROOT = ".snakemake/hpstudy/plans"  # content-addressed study plans for aggregate
# what `hpstudy aggregate` writes into a results folder (a config's, or a search's)
AGGREGATE_FILES = (
    "metrics.csv", "summary.csv", "summary.json", "seed_summary.csv", "headline.json",
)  # fmt: skip
# what the report stage of a config writes into its results folder, besides figures
RESULT_FILES = (
    *AGGREGATE_FILES, "comparison.csv", "comparison.json", "findings.md", "findings.json",
)  # fmt: skip
# what selection writes into <results>/selection/
BEST_FILE, FINAL_TABLE, FINAL_RUNS = "best.yaml", "final.csv", "final-runs.json"
# what a finished search writes into its folder, besides figures (rule search_finish)
SEARCH_FILES = (
    "trials.csv", BEST_FILE, "journal.log", *AGGREGATE_FILES,
)  # fmt: skip
# a grid's or a search's tables that selection, cost and budget read
STUDY_TABLES = ("summary.csv", "metrics.csv")
MANIFEST = "manifest.json"
INDEX = "index.csv"
AUDIT = "audit.json"
ARRAY_FILES = ("train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy")
VAL_FILES = ("val_x.npy", "val_y.npy")  # with dataset.val_fraction (or the data's own val/)
PRED_FILES = ("pred_x.npy", "pred_y.npy", "pred.json")


def cache_root() -> Path:
    """hpstudy's per-user cache (torchvision's model facts, compiled code): ``$HPSTUDY_CACHE``,
    else ``~/.cache/hpstudy``."""
    return Path(os.environ.get("HPSTUDY_CACHE") or Path.home() / ".cache" / "hpstudy")


def run_id(variant: str, name: str, seed: int) -> str:
    """``digits-48/bs-10/seed-0``."""
    return f"{variant}/{name}/seed-{int(seed)}"


def settings_file(run_id: str) -> str:
    """The settings file the train job of ``run_id`` reads (written where the sweep is built)."""
    return f"{SETTINGS_ROOT}/{run_id}.json"


@dataclass(frozen=True)
class Layout:
    """The folders of one config (``paths:``) and every path below them."""

    data: str = "data"
    runs: str = "results/runs"
    results: str = "results"
    checkpoints: str = "checkpoints"
    resources: str = "resources"

    @classmethod
    def from_config(cls, config: dict) -> Layout:
        """The layout of a validated config."""
        return cls(**config["paths"])

    # --- data -------------------------------------------------------------------------
    def raw_zip(self, name: str) -> str:
        """The raw dataset zip."""
        return f"{self.data}/raw/{name}.zip"

    def raw_meta(self, name: str) -> str:
        """The raw zip's sidecar (source, size, sha256)."""
        return f"{self.data}/raw/{name}.json"

    def processed(self, variant: str) -> str:
        """The folder of one data variant's arrays."""
        return f"{self.data}/processed/{variant}"

    def manifest(self, variant: str) -> str:
        """The data variant's manifest (the file training jobs depend on)."""
        return f"{self.processed(variant)}/{MANIFEST}"

    def arrays(self, variant: str, files=ARRAY_FILES) -> list[str]:
        """The data variant's array files."""
        return [f"{self.processed(variant)}/{name}" for name in files]

    def index(self, variant: str) -> str:
        """The data variant's per-image fingerprints (what the audit reads)."""
        return f"{self.processed(variant)}/{INDEX}"

    def audit(self, variant: str) -> str:
        """The data audit, beside the manifest (never an input of a training job)."""
        return f"{self.processed(variant)}/{AUDIT}"

    def weights_file(self, model: str, file: str) -> str:
        """Where the local rule puts ``model``'s ImageNet weights (``file``: torchvision's own
        name for them, which carries the start of their sha256)."""
        return f"{self.resources}/weights/{model}/{file}"

    # --- runs -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> str:
        """A run's folder."""
        return f"{self.runs}/{run_id}"

    def run_file(self, run_id: str, name: str) -> str:
        """One of a run's files, e.g. ``run_file(rid, "summary.json")``."""
        return f"{self.run_dir(run_id)}/{name}"

    def checkpoint_dir(self, variant: str, trajectory: str, seed: int) -> str:
        """Where a trajectory's resume checkpoints live while its runs train."""
        return f"{self.checkpoints}/{variant}/{trajectory}/seed-{int(seed)}"

    def lock_file(self, variant: str, trajectory: str, seed: int) -> str:
        """The lock a trainer holds on a trajectory (its folder is never deleted)."""
        return f"{self.checkpoints}/.locks/{variant}/{trajectory}/seed-{int(seed)}.lock"

    # --- one config's results ---------------------------------------------------------
    def table(self, name: str) -> str:
        """A results table or report file of this config, e.g. ``table("summary.csv")``."""
        return f"{self.results}/{name}"

    def figure(self, study: str, kind: str, ext: str = "png") -> str:
        """One figure of a study."""
        return f"{self.results}/figures/{study}/{kind}.{ext}"

    def selection_file(self, name: str) -> str:
        """A file of the selection step: ``best.yaml``, ``final.csv``, ``final-runs.json``."""
        return f"{self.results}/selection/{name}"

    def added_globs(self) -> tuple[str, ...]:
        """Every added-runs file of this config (final runs, search proposals, the looks of a
        sequential sweep), as globs."""
        return (
            f"{self.results}/selection/*-runs.json",
            f"{self.results}/search/*/proposals/round-*.json",
            f"{self.results}/findings/looks/look-*.json",
        )

    def optional_dirs(self) -> tuple[str, ...]:
        """The folders of the optional steps (selection, searches, looks): always present, so that
        DVC can track them whether or not a config uses the steps."""
        return (f"{self.results}/selection", f"{self.results}/search", f"{self.results}/findings")

    def look(self, look: int | str) -> str:
        """One look of a sequential sweep (an added-runs file; 0-based)."""
        return f"{self.results}/findings/looks/look-{look}.json"

    def search_dir(self, search: str) -> str:
        """A search's folder."""
        return f"{self.results}/search/{search}"

    def search_file(self, search: str, name: str) -> str:
        """One file of a search, e.g. ``search_file("s", "trials.csv")``."""
        return f"{self.search_dir(search)}/{name}"

    def proposals(self, search: str, round_: int | str) -> str:
        """A search round's proposals (an added-runs file)."""
        return self.search_file(search, f"proposals/round-{round_}.json")

    def search_results(self, search: str, round_: int | str) -> str:
        """A search round's results: each trial's metric."""
        return self.search_file(search, f"results/round-{round_}.json")

    def overview_figure(self, kind: str, ext: str = "png") -> str:
        """A figure of the whole sweep (e.g. the reproduction overview)."""
        return f"{self.results}/figures/{kind}.{ext}"

    def log(self, name: str) -> str:
        """The log of one step of this config, e.g. ``log("report/aggregate")``."""
        return f"{self.results}/logs/{name}.log"
