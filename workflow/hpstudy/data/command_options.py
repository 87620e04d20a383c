"""The data rules' options, from the dataset settings: the split, the local source (a zip, a
folder, Parquet) and its content digest, and the settings that came after the first release
(a label file, Parquet, test_from, resize, channels), shell-quoted.

These strings are the fetch and preprocess jobs' params, which Snakemake records: a changed
one fetches or preprocesses again and so retrains every run. Each later option appears only
when its setting is not the default, so the default config's params stay exactly as they
were: upgrading refetches, re-preprocesses and retrains nothing.
"""

from __future__ import annotations

import os
import shlex

from hpstudy.core.errors import HpstudyError
from hpstudy.data.fetch import folder_digest
from hpstudy.data.variant import labels_digest


def _joined(options: list[str]) -> str:
    return "".join(f" {option}" for option in options)


def fetch_options(dataset: dict) -> str:
    """`` --labels FILE --labels-sha256 DIGEST`` with a label file (its digest in the command,
    so a changed file is fetched again), else ""."""
    if not dataset.get("labels"):
        return ""
    labels = dataset["labels"]
    return _joined(["--labels", shlex.quote(str(labels)), "--labels-sha256", labels_digest(labels)])


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


def _split(dataset: dict) -> dict[str, str]:
    # numbers, so quoting gives the same text as before quoting did: the params stay
    return {
        key: shlex.quote(str(dataset[key]))
        for key in ("test_fraction", "val_fraction", "split_seed")
    }


def fetch_split_args(dataset: dict) -> str:
    """``hpstudy fetch``'s split options (and a label file's)."""
    split = _split(dataset)
    return (
        f"--test-fraction {split['test_fraction']} --split-seed {split['split_seed']}"
        + fetch_options(dataset)
    )


def preprocess_split_args(dataset: dict) -> str:
    """``hpstudy preprocess``'s split options (and the later settings' options)."""
    split = _split(dataset)
    return (
        f"--test-fraction {split['test_fraction']} --val-fraction {split['val_fraction']}"
        f" --split-seed {split['split_seed']}" + preprocess_options(dataset)
    )


def local_archive(dataset: dict) -> str | None:
    """The user's local zip when dataset.source is `archive` (not a folder), else None."""
    archive = dataset["archive"] if dataset["source"] == "archive" else None
    return archive if archive and not os.path.isdir(archive) else None


def local_folder(dataset: dict) -> str | None:
    """The folder of images (or Parquet shards, or one .parquet file) the raw zip is packed
    from (dataset.path, or a folder given as dataset.archive), or None."""
    if dataset["source"] in ("folder", "parquet"):
        return dataset["path"]
    archive = dataset["archive"] if dataset["source"] == "archive" else None
    return archive if archive and os.path.isdir(archive) else None


def folder_option(dataset: dict) -> str:
    """``--path FOLDER`` (or ``--archive FOLDER``) for a local folder, else ""."""
    folder = local_folder(dataset)
    if not folder:
        return ""
    flag = "path" if dataset["source"] in ("folder", "parquet") else "archive"
    return f"--{flag} {shlex.quote(folder)}"


def source_digest(dataset: dict, cache) -> str:
    """The local source's content (a fetch param, so exactly a change of its bytes fetches
    again): a folder's content digest, a local zip's sha256; empty for other sources."""
    folder = local_folder(dataset)
    setting = "dataset.archive" if dataset["source"] == "archive" else "dataset.path"
    if folder and os.path.isdir(folder):
        return f"folder {folder_digest(folder, setting, cache)}"
    if dataset["source"] not in ("archive", "parquet"):
        return ""
    source = dataset["archive"] if dataset["source"] == "archive" else dataset["path"]
    try:
        return f"{dataset['source']} {cache.sha256(source)}"
    except OSError as err:
        raise HpstudyError(
            f"The dataset archive {dataset['archive']} (from `dataset.archive`) cannot be "
            f"read ({err.strerror or err}). Set `dataset.archive` to the path of the downloaded "
            "zip (or of a folder holding the dataset), or use `dataset.source: kaggle`."
        ) from None
