"""Processed datasets for the benchmarks: arrays and a manifest exactly as ``hpstudy
preprocess`` writes them (so that a training job checks them as it checks real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpstudy.core import manifest

CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]


def write_processed(out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], size: int,
                    classes: list[str] = CLASSES, name: str = "bench") -> Path:  # fmt: skip
    """Save each split's images (uint8, N x size x size x 3) and labels (int64) in ``out``,
    with the manifest (counts, sizes and sha256 digests) that training checks them against."""
    labelled = {split: (x, y.astype(np.int64)) for split, (x, y) in splits.items()}
    return manifest.write_arrays(out, labelled, size, classes, name)


def random_processed(out: Path, counts: dict[str, int], size: int = 150, seed: int = 0) -> Path:
    """Random images of the real data's shape (six classes) for each split in ``counts``."""
    rng = np.random.default_rng(seed)
    splits = {
        split: (
            rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8),
            rng.integers(0, len(CLASSES), size=count),
        )
        for split, count in counts.items()
    }
    return write_processed(out, splits, size)
