"""Every kind of figure in one table: which builder draws it, what it reads, where it goes
(a study's figures, a search's, the sweep's overview) and its caption. The figure rules'
outputs (:mod:`hpstudy.rule_targets`), ``hpstudy figures``, the report captions
(``workflow/report/``, written by :func:`write_captions`) and ``docs/figures.md`` all derive
from it.

Light on purpose (no matplotlib, no pandas): the workflow reads it when it is planned; a
builder is named as ``module:function`` and imported only when a figure is drawn.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

STUDY, SEARCH, OVERVIEW = "study", "search", "overview"
# what a builder's arguments can be, besides a table file read from the tables folder
ARGUMENTS = {
    "study": "the study's (or search's) name",
    "pair": "the two settings of a heatmap-<a>-<b> kind",
    "runs_dir": "the run folders",
    "trials": "the trials: trials.csv where the folder holds one (a search), else summary.csv",
    "budget": "the budget curve: of a search's trials.csv, else of a study's summary.csv",
}
SEARCH_NOTE = (
    'Trials are ranked on the validation split unless the figure says "searched on the test set".'
)


@dataclass(frozen=True)
class FigureKind:
    """One kind of figure: ``builder`` is called with ``inputs`` resolved in order."""

    name: str
    builder: str  # "module:function"
    inputs: tuple[str, ...]  # table files (*.csv) or ARGUMENTS
    scopes: tuple[str, ...]  # STUDY, SEARCH and/or OVERVIEW
    summary: str  # one line for the list of figures
    caption: str  # the report's caption (reStructuredText)
    pattern: str = ""  # a regular expression for a family of kinds (default: the name)

    @property
    def regex(self) -> str:
        """The wildcard pattern of the kind's names."""
        return self.pattern or re.escape(self.name)

    @property
    def tables(self) -> tuple[str, ...]:
        """The table files the builder reads."""
        files = [i for i in self.inputs if i.endswith(".csv")]
        if "trials" in self.inputs:
            files += ["summary.csv", "trials.csv"]
        if "budget" in self.inputs:
            files += ["summary.csv", "metrics.csv", "trials.csv"]
        return tuple(dict.fromkeys(files))


_STUDY = "hpstudy.report.study_figures:"
_TRIAL = "hpstudy.report.trial_figures:"
KINDS: tuple[FigureKind, ...] = (
    FigureKind(
        "curves",
        _STUDY + "curves_figure",
        ("metrics.csv", "summary.csv", "study"),
        (STUDY,),
        "train loss, test loss and test accuracy against epoch (mean over seeds, 95% band)",
        "train loss, test loss (mean cross-entropy per image) and test accuracy after every "
        "epoch, one line per value of the swept setting, one colour per value in all three "
        "panels (a fourth panel: validation accuracy, where the runs have a validation split). "
        "With several seeds the line is the mean over seeds and the shaded band its 95 % "
        'interval. A value marked "(diverged)" stopped when its train loss became non-finite. '
        "The title lists the settings the study holds fixed.",
    ),
    FigureKind(
        "accuracy",
        _STUDY + "accuracy_figure",
        ("summary.csv", "study"),
        (STUDY,),
        "final test accuracy against the swept value (95% error bars)",
        "final (last epoch, circles) test accuracy against the swept value, beside the final "
        "validation accuracy where the runs have a validation split, or else the best epoch's "
        "test accuracy (squares); a log axis where the values span decades, and points without "
        "a connecting line for settings that are not numbers. The error bars are 95 % "
        "intervals: over seeds, or with one seed the test set's binomial interval.",
    ),
    FigureKind(
        "confusion",
        _STUDY + "confusion_figure",
        ("summary.csv", "study", "runs_dir"),
        (STUDY,),
        "the confusion matrix of the best setting",
        "the confusion matrix of the study's best setting (the highest mean final test "
        "accuracy): for each true class (row), the share of its test images given each "
        "predicted class, from the runs' final predictions summed over their seeds.",
    ),
    FigureKind(
        "epoch_time",
        _STUDY + "epoch_time_figure",
        ("summary.csv", "study"),
        (STUDY,),
        "mean epoch time against the swept value (batch size, kernel width)",
        "mean wall-clock time per epoch (training plus test inference) against the swept "
        "value, on the device the runs used; with several seeds, the mean with error bars.",
    ),
    FigureKind(
        "cost",
        _STUDY + "cost_figure",
        ("summary.csv", "study"),
        (STUDY,),
        "parameters and peak memory per swept value (kernel width)",
        "trainable parameters (millions; convolutional layers stacked on the fully connected "
        "ones) and peak memory (MB; accelerator memory on a GPU, the process's peak resident "
        "memory on a CPU) for each swept value.",
    ),
    FigureKind(
        "post",
        _STUDY + "post_figure",
        ("metrics.csv", "summary.csv", "comparison.csv", "study"),
        (STUDY,),
        "where a post run matches: our curves beside the post's",
        "our curves (solid, mean over seeds) beside the post's own runs (dashed, same colour "
        "per value) whose settings match ours (same model, learning rate, batch size, epochs, "
        "weight decay where the post recorded it, the Intel data at 150 px).",
    ),
    FigureKind(
        "history",
        _TRIAL + "history_figure",
        ("trials", "study"),
        (SEARCH,),
        "a search's trials in order: each trial's metric and the best so far",
        "each trial's metric in trial order and the best so far.",
    ),
    FigureKind(
        "parallel_coordinates",
        _TRIAL + "parallel_coordinates_figure",
        ("trials", "study"),
        (STUDY, SEARCH),
        "grids of two settings or more, and searches: every run's settings coloured by its metric",
        "every run's (or trial's) settings as a line across one axis per setting and one for "
        "the metric, coloured by the metric (the best drawn on top).",
    ),
    FigureKind(
        "importance",
        _TRIAL + "importance_figure",
        ("trials", "study"),
        (STUDY, SEARCH),
        "grids of two settings or more, and searches: each setting's fANOVA importance",
        "Optuna's fANOVA importance of each swept (or searched) setting for the metric; the "
        "importances sum to 1.",
    ),
    FigureKind(
        "budget",
        _TRIAL + "budget_figure",
        ("budget", "study"),
        (STUDY, SEARCH),
        "what the budget bought: the expected best validation accuracy of k settings (or "
        "trials) drawn at random, against k and device-hours",
        "the expected best validation accuracy when k of the settings (a search: of its "
        "trials) are drawn at random, for k = 1 ... n, with one standard deviation as a band, "
        'against k (left) and against the device-hours k draws cost (right): the "expected '
        'validation performance" of Dodge et al. (2019), by the unbiased estimator for draws '
        "without replacement. A setting is its mean over seeds (a diverged run at chance) and "
        "costs all its seeds. A search's own best so far, in trial order, is drawn beside it: "
        "above the band, the sampler beat random draws from the same trials. Without a "
        'validation split the values are test accuracies and the title says "on the test '
        'set". The numbers: budget.csv.',
    ),
    FigureKind(
        "heatmap",
        _STUDY + "heatmap_figure",
        ("summary.csv", "study", "pair"),
        (STUDY,),
        "grids: mean final test accuracy over two swept settings",
        "mean final test accuracy over two of the settings the study sweeps (a diverged run "
        "counted at chance), averaged over seeds and over any other setting it sweeps; each "
        "cell says its value and how many runs stand behind it.",
        pattern="heatmap(-[a-z0-9_]+-[a-z0-9_]+)?",
    ),
    FigureKind(
        "reproduction",
        _STUDY + "reproduction_figure",
        ("comparison.csv",),
        (OVERVIEW,),
        "where the post's runs are compared: each post run's final accuracy beside our mean",
        "Reproduction at a glance: for each of the post's own runs that a setting of this sweep "
        "matches, the post's final test accuracy (diamond) beside our mean over seeds with its "
        "95 % interval (circle and bar). A post run counts as reproduced when its value lies "
        "within 3 points of our mean. The post's unlabelled runs (kernel widths unknown) are "
        "left out.",
    ),
)
BY_NAME = {kind.name: kind for kind in KINDS}


def names(scope: str) -> tuple[str, ...]:
    """The kinds drawn for one scope (STUDY, SEARCH or OVERVIEW), in registry order."""
    return tuple(kind.name for kind in KINDS if scope in kind.scopes)


def lookup(name: str) -> FigureKind:
    """The registry entry of a kind name (``heatmap-lr-batch_size`` is a ``heatmap``)."""
    for kind in KINDS:
        if re.fullmatch(kind.regex, name):
            return kind
    raise KeyError(name)


CAPTION_FOLDERS = {STUDY: "figures", SEARCH: "search_figures"}  # in workflow/report/


def caption_file(scope: str, kind: str) -> str:
    """The caption template of one study or search figure, relative to ``workflow/report/``
    (``heatmap-lr-batch_size``: the heatmap's)."""
    return f"{CAPTION_FOLDERS[scope]}/{lookup(kind).name}.rst"


def caption_files() -> dict[str, str]:
    """The report's caption templates, by path in ``workflow/report/``: one per kind of a
    study's and of a search's figures (a figure job draws several kinds; each file names its
    study or search), and the overview's."""
    heads = {
        STUDY: "Study **{{ snakemake.params.study }}**:\n",
        SEARCH: "Search **{{ snakemake.wildcards.search }}**:\n",
    }
    files = {
        caption_file(scope, kind.name): heads[scope]
        + textwrap.fill(kind.caption, 95)
        + ("\n" + SEARCH_NOTE if scope == SEARCH else "")
        + "\n"
        for scope in (STUDY, SEARCH)
        for kind in KINDS
        if scope in kind.scopes
    }
    files["overview.rst"] = (
        "\n".join(textwrap.fill(kind.caption, 95) for kind in KINDS if OVERVIEW in kind.scopes)
        + "\n"
    )
    return files


def write_captions(folder: str | Path) -> list[Path]:
    """Write :func:`caption_files` into ``folder`` (``workflow/report``)."""
    written = []
    for name, text in caption_files().items():
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def markdown_list() -> str:
    """The list of figures for the README (``docs/figures.md``)."""
    where = {
        STUDY: "`figures/<study>/{}.png`",
        SEARCH: "`search/<name>/figures/{}.png`",
        OVERVIEW: "`figures/{}.png`",
    }
    rows = ["| figure | where | what it shows |", "|---|---|---|"]
    for kind in KINDS:
        name = kind.name + ("-<a>-<b>" if kind.pattern else "")
        places = ", ".join(where[s].format(name) for s in kind.scopes)
        rows.append(f"| `{kind.name}` | {places} | {kind.summary} |")
    return "\n".join(rows) + "\n"


def heatmap_kinds(params: list[str]) -> list[str]:
    """The heatmaps of a study: none for one setting, one for two, one per pair for more."""
    if len(params) < 2:
        return []
    if len(params) == 2:
        return ["heatmap"]
    return [f"heatmap-{a}-{b}" for i, a in enumerate(params) for b in params[i + 1 :]]


def heatmap_pair(kind: str) -> tuple[str, str] | None:
    """The two settings of a ``heatmap-<a>-<b>`` kind (None for a two-setting study's)."""
    parts = kind.split("-")
    return (parts[1], parts[2]) if len(parts) == 3 else None
