"""What checking the processed arrays against their manifest costs a training job.

Writes a processed split of the real training set's size (14,034 images of 150x150x3 uint8,
947 MB) and its manifest to a temporary folder, then times, several times each: reading the
array into memory without any check (``np.load``), and hpstudy's ``load_split`` (one read into
memory, sha256 over that same buffer, header checks, tensor view). The difference is the
digest's cost per job. Nothing is asserted: the figures are for the notes. Usage::

    python benchmarks/data_load.py [--images 14034] [--size 150] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hpstudy.core import manifest
from hpstudy.training.arrays import load_split


def write_split(folder: Path, images: int, size: int) -> int:
    """A processed train split with its manifest; returns the array's size in bytes."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(images, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, 6, size=images).astype(np.int64)
    manifest.write_arrays(folder, {"train": (x, y)}, size, [str(i) for i in range(6)], "bench")
    return (folder / "train_x.npy").stat().st_size


def timed(function, repeat: int) -> list[float]:
    """Wall seconds of ``repeat`` calls (the file is in the page cache after the first)."""
    function()  # warm the page cache: a job reads arrays the preprocess step just wrote
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=14_034)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        size = write_split(folder, args.images, args.size)
        plain = timed(lambda: np.load(folder / "train_x.npy"), args.repeat)
        verified = timed(lambda: load_split(folder, "train", torch.device("cpu")), args.repeat)
        digest = hashlib.sha256()
        data = (folder / "train_x.npy").read_bytes()
        start = time.perf_counter()
        digest.update(data)
        sha = time.perf_counter() - start
    mb = size / 1e6
    print(f"train_x.npy: {mb:,.0f} MB ({args.images:,} images of {args.size}x{args.size})")
    print(f"np.load, no check:          median {statistics.median(plain):.2f} s  ({plain})")
    print(f"load_split, size + sha256:  median {statistics.median(verified):.2f} s  ({verified})")
    print(f"sha256 alone: {sha:.2f} s ({mb / 1000 / sha:.2f} GB/s); the check costs "
          f"{statistics.median(verified) - statistics.median(plain):+.2f} s per job")  # fmt: skip


if __name__ == "__main__":
    main()
