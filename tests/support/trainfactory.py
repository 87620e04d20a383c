"""Tiny processed datasets in the contract format, and full run settings, for training tests.

The images are patterned so that a small CNN can learn them within an epoch or two: each class
has a bright stripe at its own position plus noise. Written directly (not via the preprocess
step) so the training tests do not depend on the data code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpstudy.core import manifest
from hpstudy.core.paths import Layout
from hpstudy.sweep import plan
from hpstudy.training import identity

CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]


def make_images(count: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 NHWC images whose class shows as a stripe position, and their labels."""
    labels = np.arange(count, dtype=np.int64) % len(CLASSES)
    rng.shuffle(labels)
    images = rng.integers(0, 120, size=(count, size, size, 3), dtype=np.uint8)
    band = max(1, size // len(CLASSES))
    for cls in range(len(CLASSES)):
        rows = slice(cls * band, (cls + 1) * band)
        images[labels == cls, rows, :, cls % 3] = 255
    return images, labels


def write_dataset(
    root: Path,
    *,
    size: int = 16,
    train: int = 96,
    test: int = 36,
    val: int = 0,
    seed: int = 0,
    name: str = "tiny",
) -> Path:
    """Write ``root/<name>-<size>/`` with train/test arrays and manifest.json; returns it."""
    rng = np.random.default_rng(seed)
    counts = (("train", train), ("test", test), ("val", val))
    splits = {split: make_images(count, size, rng) for split, count in counts if count}
    source = {"sha256": "0" * 64, "size_bytes": 0}
    return manifest.write_arrays(
        Path(root) / f"{name}-{size}", splits, size, CLASSES, name, per_class=True, indent=2,
        resized=0, skipped=[], source=source,
    )  # fmt: skip


# a tiny custom-CNN run on the CPU: the settings that differ from the schema's defaults
TINY = {
    "kernel_width": [3, 3, 3], "lr": 1e-3, "weight_decay": 0.0, "batch_size": 20,
    "eval_batch_size": 25, "epochs": 2, "device": "cpu",
}  # fmt: skip


def run_spec(root: Path, seed: int = 0, variant: str = "tiny-16", **overrides) -> dict:
    """The settings file content (what ``hpstudy train`` reads) of a tiny run below ``root``."""
    settings = identity.canonical_settings({**TINY, **overrides})
    run = plan.make_run(settings, seed, variant)
    return plan.run_spec(run, Layout(runs=str(root / "runs"), checkpoints=str(root / "ckpt")))


def read_metrics(path: Path) -> list[dict[str, str]]:
    """metrics.csv rows as dicts of strings (exact text, for bit-for-bit comparisons)."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
