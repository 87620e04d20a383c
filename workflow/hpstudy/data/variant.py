"""The name of one data variant: the dataset, its image size and every preprocessing setting
that changes the arrays, so that differently made arrays never share a folder (or a run id).

A setting at its default adds nothing, so the names of variants made before a setting existed
stay as they were (upgrading retrains nothing).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hpstudy.core.errors import HpstudyError
from hpstudy.core.formatting import format_value

LABELS_DIGEST_CHARS = 8  # of the label file's sha256, in the variant name


def labels_digest(path: str | Path) -> str:
    """The hex sha256 of the label file ``path`` (``dataset.labels``)."""
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except OSError as err:
        raise HpstudyError(
            f"Cannot read the label file {path} (from `dataset.labels`): {err.strerror}. Set "
            "`dataset.labels` to the CSV or JSON-lines file naming each image's file and class."
        ) from None


def data_variant(dataset: dict) -> str:
    """The name of the processed data a run trains on: the dataset, its image size and every
    preprocessing setting that is not at its default (``digits-48``, ``mine-64-val0.2``,
    ``ants-64-testfromval-crop-gray``, ``kaggle-32-labels1a2b3c4d``)."""
    parts = [dataset["name"], str(dataset["image_size"])]
    if dataset.get("val_fraction"):
        parts.append(f"val{format_value(float(dataset['val_fraction']))}")
    if dataset.get("test_fraction", 0.2) != 0.2:
        parts.append(f"test{format_value(float(dataset['test_fraction']))}")
    if dataset.get("split_seed", 0):
        parts.append(f"split{dataset['split_seed']}")
    if dataset.get("drop_leaks"):
        parts.append("noleaks")
    if dataset.get("test_from"):
        parts.append(f"testfrom{dataset['test_from']}")
    if dataset.get("labels"):
        parts.append(f"labels{labels_digest(dataset['labels'])[:LABELS_DIGEST_CHARS]}")
    if dataset.get("resize", "stretch") != "stretch":
        parts.append(dataset["resize"])
    if dataset.get("channels", 3) == 1:
        parts.append("gray")
    return "-".join(parts)
