"""Load a processed data variant for training, checking every array against its manifest.

``manifest.json`` records each array file's size and sha256. An array is read once into
memory, its digest computed over the very buffer that is then used (never reading the file
twice), and its header parsed from that buffer: a changed, truncated or substituted file is
refused with one paragraph naming it and the fix, instead of being trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from hpstudy.core import manifest as manifest_file
from hpstudy.core.chunk_digests import read_npy_header
from hpstudy.core.errors import HpstudyError
from hpstudy.training.batches import DeviceSplit

LOG = logging.getLogger("hpstudy.training.arrays")
REBUILD_FIX = (
    "Rebuild the arrays with `snakemake --forcerun preprocess --until preprocess` (finished runs "
    "are kept when the rebuilt manifest is the same), then run snakemake again"
)


def load_manifest(data_dir: str | Path) -> dict:
    """The processed data's manifest.json (classes, image size, splits, file digests)."""
    path = Path(data_dir) / manifest_file.FILE
    try:
        manifest = manifest_file.read(data_dir)
    except FileNotFoundError as err:
        raise HpstudyError(
            f"No processed dataset at {data_dir}: {path} is missing. Run the preprocess step "
            "(`snakemake` builds it) or pass the folder that holds manifest.json as --data-dir."
        ) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HpstudyError(f"{path} is not valid JSON ({err}). {REBUILD_FIX}.") from err
    if not isinstance(manifest, dict) or "splits" not in manifest or "sha256" not in manifest:
        raise HpstudyError(f"{path} is not an hpstudy manifest. {REBUILD_FIX}.")
    return manifest


def _refuse(path: Path, reason: str) -> HpstudyError:
    return HpstudyError(
        f"The processed array {path} does not match its manifest: {reason}. It was changed, "
        f"truncated or replaced after preprocessing, so training refuses to use it. {REBUILD_FIX}."
    )


def read_verified_array(path: Path, sha256: str, size: int | None, dtype: str) -> np.ndarray:
    """Read the ``.npy`` at ``path`` into memory, check its size and digest against the
    manifest and its header (``dtype``, no Python objects), and return the array."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise _refuse(path, "the file is missing") from None
    if size is not None and actual != size:
        raise _refuse(path, f"it has {actual:,} bytes where the manifest records {size:,}")
    buffer = np.empty(actual, dtype=np.uint8)
    with open(path, "rb", buffering=0) as fh:
        view, filled = memoryview(buffer), 0
        while filled < actual and (got := fh.readinto(view[filled:])):
            filled += got
    if filled != actual or hashlib.sha256(buffer).hexdigest() != sha256:
        raise _refuse(path, "its sha256 differs from the one the manifest records")
    header = io.BytesIO(buffer[: min(actual, 1 << 16)].tobytes())
    try:
        shape, fortran, found = read_npy_header(header)
    except ValueError as err:
        raise _refuse(path, f"it is not a NumPy .npy file ({err})") from None
    if found.hasobject:
        raise HpstudyError(
            f"The processed array {path} holds Python objects, not numbers: loading it would "
            f"run pickled code, so it is refused. {REBUILD_FIX}."
        )
    if found != np.dtype(dtype) or fortran:
        raise _refuse(
            path, f"it holds {found} in {'Fortran' if fortran else 'C'} order, not {dtype}"
        )
    count = int(np.prod(shape))
    return np.frombuffer(buffer, dtype=found, count=count, offset=header.tell()).reshape(shape)


def load_split(
    data_dir: str | Path, split: str, device: torch.device, manifest: dict | None = None
) -> DeviceSplit:
    """A processed split, verified against the manifest, on ``device`` as uint8 images and
    int64 labels."""
    data_dir = Path(data_dir)
    manifest = manifest or load_manifest(data_dir)
    entry = manifest["splits"].get(split)
    if entry is None:
        raise HpstudyError(
            f"The dataset at {data_dir} has no {split!r} split in manifest.json. {REBUILD_FIX}."
        )
    sizes = manifest.get("bytes", {})
    start = time.perf_counter()
    arrays = []
    for name, dtype in ((entry["x"], "uint8"), (entry["y"], "int64")):
        if name not in manifest["sha256"]:
            raise HpstudyError(
                f"manifest.json in {data_dir} records no digest for {name}. {REBUILD_FIX}."
            )
        arrays.append(
            read_verified_array(data_dir / name, manifest["sha256"][name], sizes.get(name), dtype)
        )
    x, y = arrays
    channels = int(manifest.get("channels", 3))  # absent: every variant before it was RGB
    if x.ndim != 4 or x.shape[3] != channels or len(x) != len(y) or y.ndim != 1:
        raise _refuse(
            data_dir / entry["x"],
            f"shape {x.shape} with {len(y)} labels is not N x H x W x {channels}",
        )
    LOG.debug(
        "loaded and verified %s (%.1f MB) in %.2f s",
        split,
        x.nbytes / 1e6,
        time.perf_counter() - start,
    )
    return DeviceSplit(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device))
