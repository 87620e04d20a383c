"""Which figures each study of a config gets: the ``rule all`` targets of the report stage.

Light on purpose (no matplotlib, no pandas): the workflow asks for these when it is planned.
"""

from __future__ import annotations

from hpstudy.core.paths import Layout
from hpstudy.report import figure_registry, post_runs
from hpstudy.report.figure_registry import heatmap_kinds

# swept settings whose studies also get an epoch-time and a cost figure
TIME_PARAMS = frozenset({"batch_size", "kernel_width"})
COST_PARAMS = frozenset({"kernel_width"})
# which figures exist, for studies, searches and the whole sweep: the figure registry
FIGURE_KINDS = figure_registry.names(figure_registry.STUDY)
SEARCH_FIGURES = figure_registry.names(figure_registry.SEARCH)  # a search's figures
OVERVIEW_KINDS = figure_registry.names(figure_registry.OVERVIEW)  # of the sweep, not a study
# a study of two settings gets `heatmap`; of three or more, one `heatmap-<a>-<b>` per pair
KIND_PATTERN = figure_registry.wildcard(figure_registry.STUDY)


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


def figure_targets(layout: Layout, plan, dataset: dict) -> list[str]:
    """Every figure file (PNG and SVG) of every study of the plan, and the reproduction
    overview where some study is compared with the post."""
    compared = {name: study_is_compared(plan, s, dataset) for name, s in plan.studies.items()}
    files = [
        layout.figure(name, kind, ext)
        for name, study in plan.studies.items()
        for kind in figure_kinds(study.params, compared[name], study_settings(study))
        for ext in ("png", "svg")
    ]
    if any(compared.values()):
        files += [layout.overview_figure("reproduction", ext) for ext in ("png", "svg")]
    return files
