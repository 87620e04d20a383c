"""Say the failed jobs' own errors again, last: Snakemake's ``onerror`` hook calls this.

A failed job's log holds one ``hpstudy: error:`` paragraph naming the input and the fix, and the
default profile's ``show-failed-logs`` prints it, but Snakemake's error summary then scrolls it
out of view. This reads Snakemake's log of the run, finds the logs of the failed jobs and prints
their paragraphs again at the very end.
"""

from __future__ import annotations

import atexit
import functools
import re
import sys
from collections.abc import Iterable
from pathlib import Path

FAILED_LOG_LINE = re.compile(r"^\s*log: (?P<paths>.+?) \(check log file\(s\) for error details\)")
ERROR_PREFIX = "hpstudy: error:"


def failed_job_logs(snakemake_logs: Iterable[str | Path]) -> list[Path]:
    """The log files of the jobs that failed, in the order Snakemake reported them."""
    found: dict[Path, None] = {}
    for log in snakemake_logs:
        try:
            text = Path(log).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = FAILED_LOG_LINE.match(line)
            if match:
                for path in match["paths"].split(", "):
                    found.setdefault(Path(path), None)
    return list(found)


def error_paragraphs(job_log: Path) -> list[str]:
    """The ``hpstudy: error:`` paragraphs in one job's log."""
    try:
        lines = job_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.startswith(ERROR_PREFIX)]


def reprint_failures(snakemake_logs: Iterable[str | Path], stream=None) -> int:
    """Print each failed job's error paragraphs under its log's name; returns how many."""
    stream = stream or sys.stderr
    logs = [(log, error_paragraphs(log)) for log in failed_job_logs(snakemake_logs)]
    logs = [(log, found) for log, found in logs if found]
    if not logs:
        return 0
    stream.write("\nhpstudy: what went wrong (from the failed jobs' logs):\n")
    for log, paragraphs in logs:
        for paragraph in paragraphs:
            stream.write(f"\n{paragraph}\n  (log: {log})\n")
    stream.flush()
    return sum(len(found) for _, found in logs)


# Paragraphs of errors raised while Snakemake builds the DAG (in an input function or a param),
# said again when the process exits: Snakemake reports such an error inside its own
# InputFunctionException, with a traceback, and its onerror hook never runs.
_DAG_ERRORS: dict[str, None] = {}


def _say_dag_errors(stream=None) -> None:
    stream = stream or sys.stderr
    for message in _DAG_ERRORS:
        stream.write(f"\n{ERROR_PREFIX} {message}\n")
    stream.flush()


def said_at_exit(helper):
    """Wrap a helper that input functions or params call: an :class:`HpstudyError` it raises
    still fails the DAG, and its paragraph is printed again, last, when the process exits."""
    from hpstudy.core.errors import HpstudyError

    @functools.wraps(helper)
    def wrapped(*args, **kwargs):
        try:
            return helper(*args, **kwargs)
        except HpstudyError as err:
            if not _DAG_ERRORS:
                atexit.register(_say_dag_errors)
            _DAG_ERRORS.setdefault(str(err), None)
            raise

    return wrapped
