"""Fingerprints of stored images, and the index that lists them beside the manifest.

Each stored image row (the uint8 pixels training reads) gets:

* an exact hash: the first 128 bits of the SHA-1 of its bytes, as 32 hex digits. It names
  the content (identical rows, identical hashes), it is no security measure; SHA-1 because
  current x86 and ARM CPUs compute it in hardware, twice as fast as BLAKE2 here;
* a 64-bit perceptual hash (dHash): the grayscale image shrunk to 9 x 8 by area averaging,
  one bit per pair of horizontal neighbours (set where the right one is brighter), row by
  row, as 16 hex digits. Near-identical images differ in few bits;
* a low-variance flag: grayscale standard deviation below :data:`LOW_VARIANCE_STD` (on
  0-255). Plain sky or blank images have near-random dHashes of their noise, so they are
  left out of the near-duplicate search.

``index.csv`` (one row per stored image) is deliberately outside the manifest: how audits
are computed can change without any training job looking outdated.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from hpstudy.core import paths
from hpstudy.core.errors import HpstudyError

LOW_VARIANCE_STD = 8.0
INDEX_FILE = paths.INDEX
INDEX_COLUMNS = ("split", "row", "member", "label", "class", "exact", "dhash", "low_variance")
_LEVELS = np.arange(256, dtype=np.float64)
_SQUARES = _LEVELS**2


class Fingerprint(NamedTuple):
    """The exact hash, the dHash and the low-variance flag of one image row."""

    exact: str
    dhash: str
    low_variance: bool


def fingerprint(row: np.ndarray, image: Image.Image | None = None) -> Fingerprint:
    """Fingerprint one C-contiguous height x width x 3 uint8 image row; ``image``, when given,
    is the RGB PIL image holding the same pixels (it saves a copy out of the row)."""
    exact = hashlib.sha1(row, usedforsecurity=False).hexdigest()[:32]
    if image is None:
        height, width = row.shape[:2]
        image = Image.frombuffer("RGB", (width, height), row, "raw", "RGB", 0, 1)
    gray = image.convert("L")
    small = np.frombuffer(gray.resize((9, 8), Image.BOX).tobytes(), dtype=np.uint8)
    small = small.reshape(8, 9)
    dhash = np.packbits(small[:, 1:] > small[:, :-1]).tobytes().hex()
    hist = np.array(gray.histogram(), dtype=np.float64)
    count = hist.sum()
    mean = hist @ _LEVELS / count
    variance = hist @ _SQUARES / count - mean * mean
    return Fingerprint(exact, dhash, bool(variance < LOW_VARIANCE_STD**2))


def index_text(rows: list[tuple]) -> str:
    """The CSV text of index rows, each in :data:`INDEX_COLUMNS` order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()


def read_index(data_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of ``<data_dir>/index.csv`` as dicts keyed by :data:`INDEX_COLUMNS`."""
    path = Path(data_dir) / INDEX_FILE
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = tuple(reader.fieldnames or ())
    except FileNotFoundError:
        raise HpstudyError(
            f"No image index at {path}: the processed data in {data_dir} predates it or was "
            "not preprocessed. Rerun the preprocess step (`hpstudy preprocess` or `snakemake "
            "--forcerun preprocess --until preprocess`), which writes it beside manifest.json."
        ) from None
    if header != INDEX_COLUMNS:
        raise HpstudyError(
            f"{path} is not an hpstudy image index (columns {list(header)}, expected "
            f"{list(INDEX_COLUMNS)}). Rerun the preprocess step to rewrite it."
        )
    return rows
