"""The ``hpstudy`` command: one sub-command per pipeline step.

Each step lives in its own module with a ``main(argv)``; this file only dispatches and turns a
:class:`~hpstudy.core.errors.HpstudyError` into one clear paragraph on stderr and a nonzero exit.
"""

from __future__ import annotations

import importlib
import sys

from hpstudy.core.errors import HpstudyError, disk_full, is_disk_full

# command name -> module providing main(argv), or "module:function" for another entry
COMMANDS: dict[str, str] = {
    "sweep": "hpstudy.sweep.estimate:sweep_main",
    "train": "hpstudy.training.job",
    "fetch-weights": "hpstudy.training.weights",
    "fetch": "hpstudy.data.fetch_sources",
    "preprocess": "hpstudy.data.preprocess",
    "audit": "hpstudy.data.audit",
    "aggregate": "hpstudy.report.aggregate",
    "compare": "hpstudy.report.comparison",
    "figures": "hpstudy.report.figures",
    "findings": "hpstudy.report.findings",
    "tensorboard": "hpstudy.report.tensorboard_log",
    "restore": "hpstudy.sweep.restore",
    "select": "hpstudy.tuning.selection",
    "final": "hpstudy.tuning.selection:final_main",
    "search": "hpstudy.tuning.search",
    "diff": "hpstudy.report.results_diff",
    "status": "hpstudy.sweep.status",
    "cost": "hpstudy.report.cost",
    "budget": "hpstudy.report.budget",
    "looks": "hpstudy.tuning.settle",
}


def _usage() -> str:
    names = "\n".join(f"  {name}" for name in sorted(COMMANDS))
    return f"usage: hpstudy <command> [options]\n\ncommands:\n{names}\n"


def main(argv: list[str] | None = None) -> int:
    """Run ``hpstudy <command> ...``; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        sys.stdout.write(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.stderr.write(f"hpstudy: error: unknown command {name!r}.\n{_usage()}")
        return 2
    module_name, _, function = COMMANDS[name].partition(":")
    module = importlib.import_module(module_name)
    return run_guarded(getattr(module, function or "main"), rest)


def run_guarded(entry, argv: list[str]) -> int:
    """Call ``entry(argv)``; print an :class:`HpstudyError` as one paragraph and return 1."""
    try:
        return int(entry(argv) or 0)
    except HpstudyError as err:
        sys.stderr.write(f"hpstudy: error: {err}\n")
        return 1
    except OSError as err:
        if not is_disk_full(err):
            raise
        sys.stderr.write(f"hpstudy: error: {disk_full(err.filename)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("hpstudy: interrupted\n")
        return 130
