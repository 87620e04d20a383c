"""Build Kaggle-layout dataset zips for tests and benchmarks (imported as ``zipfactory``)."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("buildings", "forest", "glacier", "mountain", "sea", "street")


def jpeg_bytes(image: Image.Image, quality: int = 95) -> bytes:
    """``image`` encoded as JPEG."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (150, 150)) -> Image.Image:
    """A single-colour RGB image of ``size`` (width, height)."""
    return Image.new("RGB", size, colour)


def photo_like(rng: np.random.Generator, size: tuple[int, int] = (150, 150)) -> Image.Image:
    """Smooth random texture plus grain: compresses like a photo (~15 KB at quality 75)."""
    width, height = size
    coarse = rng.integers(0, 256, size=(height // 2 + 2, width // 2 + 2, 3), dtype=np.uint8)
    base = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    # Luminance grain: JPEG keeps luma at full resolution, so this is what costs bytes.
    grain = rng.normal(0, 40, size=(height, width, 1))
    pixels = np.clip(np.asarray(base, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def class_colour(index: int) -> tuple[int, int, int]:
    """A distinct, JPEG-friendly solid colour per class index."""
    return ((index * 40 + 20) % 256, (index * 90 + 60) % 256, (255 - index * 35) % 256)


def kaggle_names(split: str, class_name: str | None, file_name: str, nested: bool = True) -> str:
    """Member name in the Kaggle layout (double nesting unless ``nested`` is False)."""
    folder = f"seg_{split}/seg_{split}" if nested else f"seg_{split}"
    return f"{folder}/{class_name}/{file_name}" if class_name else f"{folder}/{file_name}"


def write_zip(path: Path, members: Iterable[tuple[str, bytes]]) -> Path:
    """Write ``(name, data)`` members to a zip at ``path`` (deflated, like Kaggle's)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def add_symlink(path: Path, name: str, target: str) -> None:
    """Append a symbolic-link entry ``name`` -> ``target`` to the zip at ``path``."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, target)


def solid_dataset(
    classes: Iterable[str] = CLASSES[:3],
    train_per_class: int = 3,
    test_per_class: int = 2,
    pred: int = 0,
    size: tuple[int, int] = (150, 150),
    nested: bool = True,
) -> list[tuple[str, bytes]]:
    """Members of a small Kaggle-layout dataset whose images are solid class colours."""
    members = []
    for index, class_name in enumerate(classes):
        data = jpeg_bytes(solid(class_colour(index), size))
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for i in range(count):
                members.append((kaggle_names(split, class_name, f"{i}.jpg", nested), data))
    for i in range(pred):
        data = jpeg_bytes(solid((128, 128, 128), size))
        members.append((kaggle_names("pred", None, f"{i}.jpg", nested), data))
    return members


def photo_dataset(
    path: Path, train: int, test: int, pred: int = 0, quality: int = 75, seed: int = 0
) -> Path:
    """A benchmark-size zip of photo-like 150x150 JPEGs spread over the six Intel classes.

    Images are drawn from a pool of distinct textures (generating each one is slower than
    decoding it), so the zip has realistic sizes without a long set-up.
    """
    rng = np.random.default_rng(seed)
    pool = [jpeg_bytes(photo_like(rng), quality) for _ in range(256)]
    members = []
    for split, count in (("train", train), ("test", test)):
        for i in range(count):
            class_name = CLASSES[i % len(CLASSES)]
            members.append((kaggle_names(split, class_name, f"{i}.jpg"), pool[i % len(pool)]))
    for i in range(pred):
        members.append((kaggle_names("pred", None, f"{i}.jpg"), pool[i % len(pool)]))
    return write_zip(path, members)


def image_bytes(image: Image.Image, fmt: str = "JPEG") -> bytes:
    """``image`` encoded as ``fmt`` (any format PIL writes: JPEG, PNG, BMP, ...)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


FORMAT_SUFFIX = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp"}


def layout_name(layout: str, split: str, class_name: str, file_name: str, val: str = "val"):
    """Member name of one image in ``layout`` (kaggle, train-test or class-folders)."""
    if layout == "kaggle":
        return kaggle_names(split, class_name, file_name)
    if layout == "train-test":
        return f"{val if split == 'val' else split}/{class_name}/{file_name}"
    return f"{class_name}/{file_name}"


def layout_dataset(
    layout: str,
    counts: dict[str, int],
    classes: Iterable[str] = CLASSES[:3],
    formats: Iterable[str] = ("JPEG",),
    wrapper: str | None = None,
    val: str = "val",
) -> list[tuple[str, bytes]]:
    """Members of a small dataset in ``layout`` with ``counts[split]`` solid-colour images per
    class (class-folders: give only "train"), cycling through ``formats``; under ``wrapper/``
    when given."""
    formats = list(formats)
    members = []
    for index, class_name in enumerate(classes):
        for split, count in counts.items():
            for i in range(count):
                fmt = formats[i % len(formats)]
                data = image_bytes(solid(class_colour(index), (40, 30)), fmt)
                file_name = f"{split}-{i:02d}.{FORMAT_SUFFIX[fmt]}"
                name = layout_name(layout, split, class_name, file_name, val)
                members.append((f"{wrapper}/{name}" if wrapper else name, data))
    return members


def write_folder(root: Path, members: Iterable[tuple[str, bytes]]) -> Path:
    """Write ``(name, data)`` members as files below ``root`` (the folder form of a zip)."""
    for name, data in members:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
