"""Runs that a step adds after the workflow was planned: the one mechanism behind the final
runs (:mod:`hpstudy.tuning.selection`) and a search's trials.

A Snakemake checkpoint writes an *added-runs file* (``<results>/selection/final-runs.json``, a
search's ``<results>/search/<name>/proposals/round-<r>.json``): the
settings and seed of each run it wants, and the study it belongs to. The workflow reads the
file once the checkpoint has run, checks the runs as it checks the config's own (:func:`read`),
writes their settings files and asks for their ``summary.json``; the ``train`` rule then
trains them as ordinary runs: named by their identity, cached, resumable, pooled with every
other run of the same data variant (a final run equal to a run of the grid is that run).
``hpstudy restore`` reads the same files, so pulled added runs count as finished too.
"""

from __future__ import annotations

import json
from pathlib import Path

from hpstudy.core.atomic import atomic_write_json
from hpstudy.core.config import invalid
from hpstudy.core.errors import HpstudyError
from hpstudy.core.paths import Layout
from hpstudy.sweep.plan import Run, data_channels, make_run, run_problems
from hpstudy.training import identity


def write(path: str | Path, source: str, runs: list[dict], **facts) -> None:
    """Write an added-runs file, atomically: ``runs`` holds ``{"study", "settings", "seed"}``
    each, plus whatever else the step keeps per run (a search's trial number); ``facts`` are
    kept beside them."""
    entries = [
        {"study": r["study"], "settings": r["settings"], "seed": int(r["seed"]), **r} for r in runs
    ]
    atomic_write_json(path, {"source": source, **facts, "runs": entries})


def read(path: str | Path, variant: str, dataset: dict) -> list[tuple[str, Run]]:
    """The (study, run) pairs of an added-runs file, checked like the config's own runs."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
        entries = content["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HpstudyError(
            f"{path} is not a readable added-runs file ({err}). It is written by the step "
            "that adds runs (selection or a search round); delete it and rerun `snakemake`, "
            "which writes it again."
        ) from err
    pairs, problems = [], []
    for entry in entries:
        settings = identity.canonical_settings(entry["settings"])
        run = make_run(settings, int(entry["seed"]), variant, data_channels(dataset))
        problems += run_problems(settings, dataset, f"{path} ({entry['study']})")
        pairs.append((entry["study"], run))
    if problems:
        raise invalid(str(path), list(dict.fromkeys(problems)))
    return pairs


def files(layout: Layout, root: str | Path = ".") -> list[Path]:
    """This config's added-runs files (final runs, every search's proposals), in name order."""
    return sorted(p for pattern in layout.added_globs() for p in Path(root).glob(pattern))


def known(layout: Layout, variant: str, dataset: dict, root: str | Path = ".") -> dict[str, Run]:
    """Every run this config's added-runs files hold, by run id (a file that no longer reads,
    say one a rerun is about to replace, is skipped: the step that owns it rewrites it)."""
    runs: dict[str, Run] = {}
    for path in files(layout, root):
        try:
            pairs = read(path, variant, dataset)
        except HpstudyError:
            continue
        runs.update((run.run_id, run) for _, run in pairs)
    return runs
