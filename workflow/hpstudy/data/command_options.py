"""The command-line options the data rules add for the dataset settings that came after the
first release (a label file, Parquet, test_from, resize, channels), shell-quoted.

Each option appears only when its setting is not the default, so the default config's fetch
and preprocess commands, and with them Snakemake's record of their params, stay exactly as
they were: upgrading refetches, re-preprocesses and retrains nothing.
"""

from __future__ import annotations

import shlex

from hpstudy.data.variant import labels_digest


def _joined(options: list[str]) -> str:
    return "".join(f" {option}" for option in options)


def fetch_options(dataset: dict) -> str:
    """`` --labels FILE --labels-sha256 DIGEST`` with a label file (its digest in the command,
    so a changed file is fetched again), else ""."""
    if not dataset.get("labels"):
        return ""
    labels = dataset["labels"]
    return _joined(
        ["--labels", shlex.quote(str(labels)), "--labels-sha256", labels_digest(labels)]
    )


def preprocess_options(dataset: dict) -> str:
    """``hpstudy preprocess``'s options for the settings not at their defaults, else ""."""
    options = []
    if dataset.get("test_from"):
        options += ["--test-from", shlex.quote(dataset["test_from"])]
    if dataset.get("resize", "stretch") != "stretch":
        options += ["--resize", shlex.quote(dataset["resize"])]
    if dataset.get("channels", 3) != 3:
        options += ["--channels", shlex.quote(str(dataset["channels"]))]
    if dataset.get("labels"):
        options.append("--labels")
    if dataset.get("source") == "parquet":
        options.append("--parquet")
    return _joined(options)
