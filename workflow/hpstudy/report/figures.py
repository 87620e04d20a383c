"""``hpstudy figures``: draw figures of one study, search or sweep, each as PNG (200 dpi)
plus SVG: one kind (``--kind``, ``--out``), or several into one folder (``--kinds``,
``--out-dir``: the workflow draws all of a study's figures in one job, so the interpreter,
pandas and matplotlib start once per study, not once per figure).

Which builder draws a kind and which tables it reads: :mod:`hpstudy.report.figure_registry`;
the builders: :mod:`hpstudy.report.study_figures` (a study's results) and
:mod:`hpstudy.report.trial_figures` (what a search or grid explored, and what its budget
bought).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from pathlib import Path

from hpstudy.core.errors import HpstudyError
from hpstudy.report import figure_registry
from hpstudy.report.figure_base import save_figure
from hpstudy.report.figure_registry import heatmap_pair
from hpstudy.report.tables import read_table


def builder(kind: figure_registry.FigureKind):
    """The function that draws ``kind``."""
    module, _, function = kind.builder.partition(":")
    return getattr(importlib.import_module(module), function)


def entry_of(kind: str) -> figure_registry.FigureKind:
    """The registry entry of ``kind``; an unknown kind is a clear error."""
    try:
        return figure_registry.lookup(kind)
    except KeyError:
        known = ", ".join(k.name for k in figure_registry.KINDS)
        raise HpstudyError(
            f"No figure kind {kind!r} (kinds: {known}, or heatmap-<setting>-<setting>). "
            "Check --kind."
        ) from None


def build_figure(kind: str, tables: str | Path, study: str, runs_dir: str | Path | None = None):
    """The ``kind`` figure of ``study`` from the tables in the results folder ``tables``."""
    entry = entry_of(kind)
    tables = Path(tables)
    cache: dict[str, object] = {}

    def table(name: str):
        if name not in cache:
            cache[name] = read_table(tables / name)
        return cache[name]

    def argument(name: str):
        if name.endswith(".csv"):
            return table(name)
        if name == "trials":
            from hpstudy.report.trial_figures import exploration_trials

            return exploration_trials(tables, table("summary.csv"), study)
        if name == "budget":
            from hpstudy.report.budget import curve_for

            return curve_for(tables, table("summary.csv"), study)
        return {"study": study, "pair": heatmap_pair(kind), "runs_dir": runs_dir}[name]

    return builder(entry)(*(argument(name) for name in entry.inputs))


def draw(kinds: Sequence[str], tables, study: str, runs_dir, out_dir: str | Path) -> list[Path]:
    """Draw each of ``kinds`` into ``out_dir/<kind>.png`` (and ``.svg``); returns the files.
    Every kind is checked before the first is drawn."""
    for kind in kinds:
        entry_of(kind)
    written = []
    for kind in kinds:
        figure = build_figure(kind, tables, study, runs_dir)
        written += save_figure(figure, Path(out_dir) / f"{kind}.png")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``hpstudy figures``: draw one kind of figure, or several, for one study."""
    parser = argparse.ArgumentParser(prog="hpstudy figures", description=__doc__.split("\n")[0])
    kinds = [kind.name for kind in figure_registry.KINDS]
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--kind", help=f"one of {kinds}, or heatmap-<setting>-<setting>")
    which.add_argument("--kinds", nargs="+", help="several kinds, drawn into --out-dir")
    parser.add_argument("--study", default="", help="study name, as in the config")
    parser.add_argument("--tables", required=True, help="the config's results folder")
    parser.add_argument("--runs-dir", help="the run folders (confusion matrices)")
    parser.add_argument("--out", help="with --kind: the PNG path; the SVG goes beside it")
    parser.add_argument("--out-dir", help="with --kinds: the folder of <kind>.png and .svg")
    args = parser.parse_args(argv)
    if args.kind and not args.out or args.kinds and not args.out_dir:
        parser.error("--kind needs --out, --kinds needs --out-dir")
    if args.kind:
        figure = build_figure(args.kind, args.tables, args.study, args.runs_dir)
        paths = save_figure(figure, args.out)
    else:
        paths = draw(args.kinds, args.tables, args.study, args.runs_dir, args.out_dir)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
