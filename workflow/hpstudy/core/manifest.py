"""The processed data's manifest (``manifest.json``): the contract between the data stage,
which writes it beside the arrays, and training, which reads it and checks every array
against it. Its file name, each split's array names, the arrays' file facts (sha256 and
size) and the file itself are written and read here, by preprocess, the test factory and
the benchmarks alike.

Keys: ``name``, ``image_size``, ``classes``, ``splits`` (per split ``count``, ``x``, ``y``
and, from preprocess, ``per_class``), ``sha256`` and ``bytes`` (per array file); preprocess
adds the layout, how splits were carved, what it resized or skipped, and its source zip.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from hpstudy.core import paths

FILE = paths.MANIFEST


def split_files(split: str) -> dict[str, str]:
    """The array files of one split: ``{"x": "train_x.npy", "y": "train_y.npy"}``."""
    return {"x": f"{split}_x.npy", "y": f"{split}_y.npy"}


def sha256_file(path: str | Path) -> str:
    """A file's sha256, read in chunks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_facts(
    folder: Path, names: Iterable[str], digest: Callable[[Path], str] = sha256_file
) -> dict[str, dict]:
    """The manifest's ``sha256`` and ``bytes`` of the array files ``names`` in ``folder``."""
    names = list(names)
    return {
        "sha256": {name: digest(folder / name) for name in names},
        "bytes": {name: (folder / name).stat().st_size for name in names},
    }


def read(data_dir: str | Path) -> dict:
    """The manifest of a processed dataset folder, as written (JSON errors propagate: the
    reader says what to do about them)."""
    return json.loads((Path(data_dir) / FILE).read_text(encoding="utf-8"))


def write(folder: Path, manifest: dict, indent: int | None = None) -> Path:
    """Write ``manifest`` into ``folder`` (plainly: preprocess writes its own atomically)."""
    path = Path(folder) / FILE
    path.write_text(json.dumps(manifest, indent=indent))
    return path


def write_arrays(
    folder: Path,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    size: int,
    classes: list[str],
    name: str,
    per_class: bool = False,
    indent: int | None = None,
    **extra,
) -> Path:
    """Save each split's images and labels in ``folder`` with the manifest that training
    checks them against (``per_class`` counts as preprocess writes them; ``extra`` keys after
    the splits); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    entries, names = {}, []
    for split, (x, y) in splits.items():
        files = split_files(split)
        np.save(folder / files["x"], x)
        np.save(folder / files["y"], y)
        entries[split] = {"count": len(y)}
        if per_class:
            entries[split]["per_class"] = {c: int((y == i).sum()) for i, c in enumerate(classes)}
        entries[split] |= files
        names += files.values()
    manifest = {"name": name, "image_size": size, "classes": classes, "splits": entries}
    write(folder, manifest | extra | file_facts(folder, names), indent)
    return folder
