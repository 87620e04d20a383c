"""What the workflow asks for: the ``rule all`` targets of the report, selection and search
steps (each study's figures, the tables, every search's files), as the rules list them.

Light on purpose (no matplotlib, no pandas): the workflow asks for these when it is planned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from hpstudy.core import paths
from hpstudy.core.paths import Layout
from hpstudy.report import figure_registry, post_runs
from hpstudy.report.figure_registry import heatmap_kinds

# swept settings whose studies also get an epoch-time and a cost figure
TIME_PARAMS = frozenset({"batch_size", "kernel_width"})
COST_PARAMS = frozenset({"kernel_width"})
# which figures exist, for searches and the whole sweep: the figure registry (a study's
# depend on what it sweeps: study_figures)
SEARCH_FIGURES = figure_registry.names(figure_registry.SEARCH)  # a search's figures
OVERVIEW_KINDS = figure_registry.names(figure_registry.OVERVIEW)  # of the sweep, not a study


def whole_run_targets(layout: Layout, run_ids: Iterable[str], scan: bool = True) -> list[str]:
    """The files that have Snakemake train each run of ``run_ids`` until it is whole: its
    summary.json (the last file a run writes), and each other output that a run with a
    summary has lost (e.g. to a refused second trainer, whose outputs Snakemake deletes while
    the first one trains on): asking for a lost file trains its run again. One target per whole
    run instead of every output keeps Snakemake's job graph of a 5,000-run sweep small.
    ``scan=False`` looks at no file (a job's own process on a cluster node, which never uses
    these targets, need not stat thousands of files on a shared file system)."""
    last = paths.RUN_OUTPUT_NAMES["summary"]
    others = [name for name in paths.RUN_OUTPUTS if name != last]
    targets = []
    for rid in run_ids:
        summary = layout.run_file(rid, last)
        targets.append(summary)
        if scan and os.path.exists(summary):
            lost = (layout.run_file(rid, name) for name in others)
            targets += [path for path in lost if not os.path.exists(path)]
    return targets


def figure_kinds(params: list[str], compared: bool, settings: int = 0) -> list[str]:
    """The figure kinds of a study sweeping ``params``; ``compared`` adds the figure beside
    the post's own runs (only where some of its runs match one), two ``settings`` or more
    the budget curve (what k settings drawn at random buy)."""
    kinds = ["curves", "accuracy", "confusion", *heatmap_kinds(params)]
    if len(params) >= 2:  # what a grid explored: every run's settings, each one's importance
        kinds += ["parallel_coordinates", "importance"]
    if TIME_PARAMS & set(params):
        kinds.append("epoch_time")
    if COST_PARAMS & set(params):
        kinds.append("cost")
    if compared:
        kinds.append("post")
    if settings >= 2:
        kinds.append("budget")
    return kinds


def study_settings(study) -> int:
    """How many distinct settings (points, whatever their seeds) a study holds."""
    return len({repr(sorted(values.items())) for _, values in study.points})


def study_is_compared(plan, study, dataset: dict) -> bool:
    """Whether some run of ``study`` matches one of the post's runs."""
    if not post_runs.is_post_data(dataset["name"], dataset["image_size"]):
        return False
    return any(post_runs.matching_post_runs(plan.runs[rid].settings) for rid in study.run_ids())


def study_figures(plan, dataset: dict) -> dict[str, list[str]]:
    """Each study of the plan and the kinds of figure it gets (one figure job per study)."""
    return {
        name: figure_kinds(
            study.params, study_is_compared(plan, study, dataset), study_settings(study)
        )
        for name, study in plan.studies.items()
    }


def figure_targets(layout: Layout, plan, dataset: dict) -> list[str]:
    """Every figure file (PNG and SVG) of every study of the plan, and the reproduction
    overview where some study is compared with the post (it has the ``post`` figure)."""
    kinds = study_figures(plan, dataset)
    files = [
        layout.figure(name, kind, ext)
        for name, names in kinds.items()
        for kind in names
        for ext in ("png", "svg")
    ]
    if any("post" in names for names in kinds.values()):
        files += [layout.overview_figure("reproduction", ext) for ext in ("png", "svg")]
    return files


def search_targets(layout: Layout, searches) -> list[str]:
    """Every search's files and figures."""
    figures = [f"figures/{kind}.{ext}" for kind in SEARCH_FIGURES for ext in ("png", "svg")]
    return [
        layout.search_file(name, file)
        for name in searches
        for file in (*paths.SEARCH_FILES, *figures)
    ]


def search_tables(layout: Layout, searches, files=paths.STUDY_TABLES) -> list[str]:
    """The tables (``files``) of every search: a search's trials compete as one more study."""
    return [layout.search_file(name, table) for name in searches for table in files]


def selection_targets(layout: Layout, config: dict) -> list[str]:
    """best.yaml when the config selects, final.csv when it also runs the final runs."""
    return [layout.selection_file(paths.BEST_FILE)] * bool(config.get("selection")) + [
        layout.selection_file(paths.FINAL_TABLE)
    ] * bool(config.get("final"))


def step_targets(layout: Layout, config: dict) -> list[str]:
    """The files of the steps that add runs: each search round's proposals and results, and
    the final runs' file. Targets of their own, because Snakemake looks for a job's missing
    output only where a target or a job about to run asks for it: so a deleted one is written
    again (from the files before it; nothing that is done retrains)."""
    rounds = [
        step(name, r)
        for name, spec in config.get("search", {}).items()
        for r in range(spec["rounds"])
        for step in (layout.proposals, layout.search_results)
    ]
    return rounds + ([layout.selection_file(paths.FINAL_RUNS)] if config.get("final") else [])


def results_targets(layout: Layout, plan, config: dict) -> list[str]:
    """This config's tables, findings and figures (and TensorBoard folders when enabled).
    A config may hold searches alone: then there is no grid to tabulate, judge or draw."""
    grid = [layout.table(name) for name in paths.RESULT_FILES] if plan.studies else []
    searches = config.get("search", {})
    # the data audit is an input of the findings; without a grid, a target of its own
    tables = grid + selection_targets(layout, config) + search_targets(layout, searches)
    tables += step_targets(layout, config) + [layout.audit(plan.variant)]
    # what the sweep cost, and what its budget bought (rules cost and budget)
    tables += [layout.table("cost.csv"), layout.table("budget.csv")]
    figures = figure_targets(layout, plan, config["dataset"])
    boards = [f"{layout.results}/tensorboard/{rid}" for rid in plan.runs]
    return tables + figures + (boards if config["tensorboard"] else [])
