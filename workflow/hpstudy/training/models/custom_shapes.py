"""The shape of the post's custom CNN, without torch: its three conv layers and the image
sizes they accept. Read when the sweep is built (to refuse an image size before any job runs)
and by :mod:`hpstudy.models.custom` to build the network."""

from __future__ import annotations

from collections.abc import Sequence

# (in_channels, out_channels, padding, bias) of the post's three conv layers
CONV_LAYOUT = ((3, 10, 1, False), (10, 20, 1, True), (20, 10, 0, True))


def feature_side(image_size: int, widths: Sequence[int]) -> int:
    """Side of the last feature map (0 if some layer would be empty) for a square input."""
    side = image_size
    for (_, _, padding, _), width in zip(CONV_LAYOUT, widths, strict=True):
        side = side + 2 * padding - width + 1  # conv, stride 1
        if side < 2:  # the 2x2 max pool needs at least two pixels
            return 0
        side //= 2
    return side


def minimum_image_size(widths: Sequence[int]) -> int:
    """The smallest square image side the custom CNN accepts with these kernel widths."""
    size = 1
    while feature_side(size, widths) < 1:
        size += 1
    return size


def flatten_size(image_size: int, widths: Sequence[int]) -> int:
    """Features entering the first linear layer (2250 for the post's 150 px and 5-5-7); 0 when
    the image is too small."""
    return CONV_LAYOUT[-1][1] * feature_side(image_size, widths) ** 2
