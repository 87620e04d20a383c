"""Image shapes: crop, pad and one channel match torchvision on PIL images; stretch in RGB is
the decode path of every existing variant, byte for byte."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms
from torchvision.transforms import v2

from hpstudy.data.decode import decode_image_into
from hpstudy.data.resize import crop_shape, image_decoder, pad_shape

SIZE = 16


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def images() -> list[tuple[str, Image.Image]]:
    """Photos of every shape: wide, tall, square, smaller than the output, and a palette."""
    rng = np.random.default_rng(0)
    shapes = [(37, 23), (23, 37), (64, 48), (16, 16), (9, 13), (200, 31)]
    found = [
        (f"{w}x{h}", Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
        for w, h in shapes
    ]
    palette = found[0][1].convert("P", palette=Image.ADAPTIVE, colors=16)
    return [*found, ("palette", palette), ("gray", found[2][1].convert("L"))]


def reference(image: Image.Image, mode: str, channels: int) -> np.ndarray:
    """What a torchvision pipeline gives: ImageFolder's convert("RGB"), Grayscale, resize."""
    steps = [transforms.Grayscale(1)] if channels == 1 else []
    if mode == "stretch":
        steps.append(transforms.Resize((SIZE, SIZE)))
    elif mode == "crop":
        steps += [transforms.Resize(SIZE), transforms.CenterCrop(SIZE)]
    else:
        steps += [v2.Resize(size=None, max_size=SIZE), v2.CenterCrop(SIZE)]
    out = transforms.Compose(steps)(image.convert("RGB"))
    return np.asarray(out).reshape(SIZE, SIZE, channels)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_every_shape_matches_torchvision(mode, channels):
    decode = image_decoder(SIZE, mode, channels)
    for name, image in images():
        row = np.zeros((SIZE, SIZE, channels), dtype=np.uint8)
        outcome = decode(encoded(image), row)
        assert outcome is (image.size != (SIZE, SIZE)) or channels == 1, name
        assert np.array_equal(row, reference(image, mode, channels)), f"{name} {mode} {channels}"


def test_stretch_in_rgb_is_todays_decode_path_byte_for_byte():
    for _, image in images():
        data = encoded(image, "JPEG" if image.mode in ("RGB", "L") else "PNG")
        today, now = (np.zeros((SIZE, SIZE, 3), dtype=np.uint8) for _ in range(2))
        assert decode_image_into(data, today, SIZE) == image_decoder(SIZE)(data, now)
        assert today.tobytes() == now.tobytes()


def test_pad_keeps_black_borders_and_crop_keeps_the_centre():
    wide = Image.new("RGB", (40, 20), (200, 100, 50))
    row = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    image_decoder(SIZE, "pad")(encoded(wide), row)
    assert row[:4].max() == 0 and row[-4:].max() == 0 and (row[4:12] == (200, 100, 50)).all()
    assert pad_shape(40, 20, SIZE) == (16, 8) and crop_shape(40, 20, SIZE) == (32, 16)


def test_an_undecodable_image_leaves_the_row_and_says_why():
    row = np.full((SIZE, SIZE, 1), 7, dtype=np.uint8)
    outcome = image_decoder(SIZE, "crop", 1)(b"not an image", row)
    assert isinstance(outcome, str) and "not a decodable image" in outcome and (row == 7).all()
