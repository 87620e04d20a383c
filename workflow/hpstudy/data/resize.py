"""Decode one image into a fixed-size row with a chosen resize mode and channel count.

``stretch`` with three channels is :func:`hpstudy.data.decode.decode_image_into` itself (the post's
``Resize((s, s))``), byte for byte. The other shapes follow torchvision on PIL images, so a
user's own torchvision pipeline gives the same pixels:

* ``crop``: ``Resize(s)`` (the shorter side to ``s``, the longer ``int(s * long / short)``)
  then ``CenterCrop(s)`` (offsets ``int(round((side - s) / 2))``);
* ``pad``: the longer side to ``s`` and the shorter to ``int(s * short / long)`` (v2's
  ``Resize(None, max_size=s)``), then centred on a black square (``CenterCrop(s)``'s
  padding: ``(s - side) // 2`` before);
* one channel: ``convert("RGB")`` then ``convert("L")`` (``ImageFolder`` then
  ``Grayscale()``: ITU-R 601-2 luma), before resizing, as the RGB conversion is today.

Every resize is PIL's bilinear, which antialiases (torchvision's default on PIL images).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from hpstudy.data.decode import decode_image_into, decode_with

RESIZE_MODES = ("stretch", "crop", "pad")
CHANNELS = (3, 1)


def crop_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """``(width, height)`` after ``Resize(size)``: the shorter side to ``size``."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def pad_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """``(width, height)`` after the longer side goes to ``size`` (at least one pixel each)."""
    if width <= height:
        return max(1, int(size * width / height)), size
    return size, max(1, int(size * height / width))


def _resized(img: Image.Image, shape: tuple[int, int]) -> Image.Image:
    return img if img.size == shape else img.resize(shape, Image.BILINEAR)


def shape_image(img: Image.Image, size: int, mode: str) -> Image.Image:
    """``img`` (already in its output mode, RGB or L) as a ``size`` x ``size`` image."""
    if mode == "stretch":
        return _resized(img, (size, size))
    if mode == "crop":
        img = _resized(img, crop_shape(*img.size, size))
        left = int(round((img.width - size) / 2.0))
        top = int(round((img.height - size) / 2.0))
        return img.crop((left, top, left + size, top + size))
    img = _resized(img, pad_shape(*img.size, size))
    square = Image.new(img.mode, (size, size), 0)
    square.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return square


def converted(img: Image.Image, channels: int) -> Image.Image:
    """``img`` in RGB (three channels) or in L (one), the way ImageFolder (+ Grayscale) does."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    if channels == 3:
        return rgb
    return img if img.mode == "L" else rgb.convert("L")


def decode_shaped_into(
    data: bytes,
    row: np.ndarray,
    size: int,
    mode: str,
    channels: int,
    on_decoded: Callable[[Image.Image], object] | None = None,
) -> bool | str:
    """Decode ``data`` into ``row`` (size x size x channels uint8), resized by ``mode``.

    Returns whether the image had to be resized, or why it could not be decoded (``row`` is
    then left as it was); ``on_decoded`` gets the PIL image the row was copied from.
    """

    def shaped(img: Image.Image) -> tuple[Image.Image, bool]:
        image = converted(img, channels)
        return shape_image(image, size, mode), image.size != (size, size)

    return decode_with(data, row, shaped, on_decoded)


def image_decoder(size: int, mode: str = "stretch", channels: int = 3):
    """The function ``(data, row, on_decoded) -> outcome`` decoding one image for these
    settings: today's :func:`~hpstudy.data.decode.decode_image_into` for ``stretch`` in RGB."""
    if mode not in RESIZE_MODES or channels not in CHANNELS:
        raise ValueError(f"resize {mode!r} / channels {channels!r}")
    if mode == "stretch" and channels == 3:
        return lambda data, row, on_decoded=None: decode_image_into(data, row, size, on_decoded)
    return lambda data, row, on_decoded=None: decode_shaped_into(
        data, row, size, mode, channels, on_decoded
    )
