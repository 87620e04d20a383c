"""Whether fetching the raw zip again could change the data a variant's arrays were made from.

Snakemake reruns every job downstream of a job it reruns, unless the file between them is
marked ``ancient``. The fetch job reruns for reasons that leave the bytes alone (a changed
option, a raw zip deleted or restored with a new time, an upgrade that changed how a source
is described), and each such rerun would preprocess and then retrain every run of the data.
The preprocess rule therefore marks its raw zip ``ancient`` exactly when this module finds,
before any job runs, that whatever happens the raw zip will hold the bytes the arrays were
made from (the sha256 the manifest records): then only changed content preprocesses and
retrains, and nothing else does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hpstudy.data.content import DigestCache, zip_content_digest
from hpstudy.data.fetch import folder_digest


def _json(path: str | os.PathLike) -> dict:
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def preprocessed_from(manifest: str | os.PathLike) -> str | None:
    """The sha256 of the raw zip a variant's arrays were made from (its manifest says), or None
    when there are no arrays yet."""
    source = _json(manifest).get("source")
    return source.get("sha256") if isinstance(source, dict) else None


def same_zip_after_fetch(
    dataset: dict,
    raw_zip: str | os.PathLike,
    raw_meta: str | os.PathLike,
    manifest: str | os.PathLike,
    cache: DigestCache,
    folder: str | None = None,
) -> bool:
    """Whether the raw zip, fetched again or not, is certain to hold the bytes that
    ``manifest``'s arrays were made from. ``folder``: the local folder the zip is packed from.

    - a local archive file: the raw zip is its copy, so its sha256 decides;
    - a folder: packing is deterministic, so the folder's content digest must equal that of
      the raw zip on disk;
    - digits: generated deterministically (its split options are preprocess params too),
      when the last fetch was of the digits too;
    - Kaggle: the same dataset slug as the last download gives the same bytes (a dataset
      re-published under the same slug is noticed at the next invocation, when the new zip's
      sha256 differs from the manifest's).

    Raises :class:`hpstudy.core.errors.HpstudyError` for an unreadable folder file.
    """
    consumed = preprocessed_from(manifest)
    if consumed is None:
        return False
    on_disk = Path(raw_zip)
    if on_disk.exists():
        try:
            if cache.sha256(on_disk) != consumed:
                return False
        except OSError:
            return False
    source = dataset["source"]
    if folder:
        zip_digest = zip_content_digest(on_disk, cache) if on_disk.exists() else None
        setting = "dataset.path" if source == "folder" else "dataset.archive"
        return zip_digest is not None and zip_digest == folder_digest(folder, setting, cache)
    if source == "archive":
        try:
            return cache.sha256(dataset["archive"]) == consumed
        except OSError:
            return False
    # digits and Kaggle: the last fetch (its sidecar says) was of the same kind and gave the
    # bytes the arrays were made from
    meta = _json(raw_meta)
    if meta.get("source") != source or meta.get("sha256") != consumed:
        return False
    return source == "digits" or meta.get("kaggle_dataset") == dataset.get("kaggle_dataset")
