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


def photo_like(rng: np.random.Generator, size: int = 150) -> bytes:
    """A JPEG (quality 75) of smooth random texture plus grain: it compresses like a photo
    (~15 KB at 150 px, as the Intel images do)."""
    import io

    from PIL import Image

    coarse = rng.integers(0, 256, size=(size // 2 + 2, size // 2 + 2, 3), dtype=np.uint8)
    base = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    grain = rng.normal(0, 40, size=(size, size, 1))  # luma at full resolution: what costs bytes
    pixels = np.clip(np.asarray(base, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def photo_zip(path: Path, train: int, test: int, pred: int = 0, seed: int = 0) -> Path:
    """A zip in the Kaggle layout of photo-like 150 px JPEGs over the six Intel classes, drawn
    from a pool of 256 textures (generating each image is slower than decoding it)."""
    import zipfile

    rng = np.random.default_rng(seed)
    pool = [photo_like(rng) for _ in range(256)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for split, count in (("train", train), ("test", test), ("pred", pred)):
            for i in range(count):
                folder = f"seg_{split}/seg_{split}"
                name = f"{i}.jpg" if split == "pred" else f"{CLASSES[i % len(CLASSES)]}/{i}.jpg"
                zf.writestr(f"{folder}/{name}", pool[i % len(pool)])
    return path
