"""Decode one image file into a fixed-size RGB array row, the way the seed's loader did.

The seed used torchvision's ``ImageFolder`` (PIL open + ``convert("RGB")``) followed by
``transforms.Resize((s, s))``, which on PIL images is PIL's bilinear resize (antialiased).
Doing the same here gives pixel-identical arrays.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

# Raster formats a photo dataset plausibly contains; anything else is "not an image".
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")


@contextlib.contextmanager
def strict_decoding() -> Iterator[None]:
    """Make PIL raise on truncated files for the duration (another library may relax it)."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def failure_reason(err: Exception) -> str:
    """Why an image did not decode, in words that are the same from run to run."""
    if isinstance(err, UnidentifiedImageError):
        return "not a decodable image (unrecognised format)"
    # Drop object addresses so the manifest is identical from run to run.
    message = re.sub(r" at 0x[0-9a-fA-F]+", "", str(err))
    return f"failed to decode: {message}" if message else f"failed to decode ({type(err).__name__})"


def decode_image_into(
    data: bytes,
    row: np.ndarray,
    size: int,
    on_decoded: Callable[[Image.Image], object] | None = None,
) -> bool | str:
    """Decode ``data`` into ``row`` (size x size x 3 uint8).

    Returns whether the image had to be resized, or a string saying why it could not be
    decoded (truncated, not an image, unsupported mode); ``row`` is then left as it was.
    ``on_decoded``, if given, is then called with the RGB PIL image the row was copied from
    (saving a copy back out of the row, e.g. to fingerprint it).
    """

    def stretched(img: Image.Image) -> tuple[Image.Image, bool]:
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        resized = rgb.size != (size, size)
        return (rgb.resize((size, size), Image.BILINEAR) if resized else rgb), resized

    return decode_with(data, row, stretched, on_decoded)


def decode_with(
    data: bytes,
    row: np.ndarray,
    prepare: Callable[[Image.Image], tuple[Image.Image, bool]],
    on_decoded: Callable[[Image.Image], object] | None = None,
) -> bool | str:
    """Decode ``data``, turn it into the row's image with ``prepare`` (which says whether it
    resized) and copy that into ``row``: whether it resized, or why it could not be decoded
    (``row`` then left as it was). ``on_decoded`` gets the image the row was copied from."""
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            img.load()  # force the full decode now, so a truncated file fails here
            image, resized = prepare(img)
            # tobytes + frombuffer is the cheapest copy out of PIL (np.asarray goes via a
            # slower array-interface path).
            row[...] = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(row.shape)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return failure_reason(err)
    if on_decoded is not None:
        on_decoded(image)
    return resized
