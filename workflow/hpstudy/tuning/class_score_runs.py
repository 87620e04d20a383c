"""Selecting or searching on balanced accuracy or macro-F1 (``val_balanced_acc``,
``val_macro_f1``) needs per-epoch scores that runs trained before hpstudy computed them do not
have. Such runs are refused by name, with the command that retrains them, rather than
silently left out or ranked as if they had failed.

A run predates the scores when it has the accuracy the score stands beside (``final_val_acc``
for ``final_val_balanced_acc``) but not the score: a newer run computes both wherever it
evaluates a split. (Final *test* scores come from saved predictions, so every run has those.)
"""

from __future__ import annotations

import math

import pandas as pd

from hpstudy.core.errors import HpstudyError

SCORES = ("balanced_acc", "macro_f1")
SHOWN = 8  # run ids named in the message


def accuracy_column(column: str) -> str | None:
    """The accuracy column a score column stands beside (None: not a score column)."""
    for score in SCORES:
        if column.endswith(f"_{score}"):
            return column.removesuffix(f"_{score}") + "_acc"
    return None


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _refusal(run_ids: list[str], what: str, column: str) -> HpstudyError:
    named = ", ".join(run_ids[:SHOWN]) + (
        f" and {len(run_ids) - SHOWN} more" if len(run_ids) > SHOWN else ""
    )
    files = " ".join(f"<runs>/{rid}/summary.json" for rid in run_ids[:2])
    return HpstudyError(
        f"{what} needs {column}, which {len(run_ids)} run(s) trained before hpstudy computed "
        f"balanced accuracy and macro-F1 per epoch do not have: {named}. Retrain them with "
        f"`snakemake --forcerun {files} ...` (each run's summary.json below paths.runs, "
        "results/runs by default; `--forcerun train` retrains every run), or select on val_acc "
        "or val_loss."
    )


def refuse_predating(summary: pd.DataFrame, column: str, what: str) -> None:
    """Refuse selecting on ``column`` when some runs of ``summary`` (summary.csv) predate it."""
    accuracy = accuracy_column(column)
    if accuracy is None or accuracy not in summary:
        return
    scores = summary[column] if column in summary else pd.Series(math.nan, index=summary.index)
    old = summary[summary[accuracy].notna() & scores.isna()]
    if len(old):
        raise _refusal(list(dict.fromkeys(old["run_id"].astype(str))), what, column)


def refuse_predating_summaries(summaries: list[dict], column: str, what: str) -> None:
    """The same for a search round's summary.json records."""
    accuracy = accuracy_column(column)
    if accuracy is None:
        return
    old = [
        s["run_id"] for s in summaries if not _missing(s.get(accuracy)) and _missing(s.get(column))
    ]
    if old:
        raise _refusal(old, what, column)
