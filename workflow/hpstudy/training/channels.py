"""One input channel (``dataset.channels: 1``): grayscale images kept as one channel end to end.

The models are built for RGB (their modules are digested into every run's identity and stay as
they are); this module turns the model's first convolution into a one-channel one after it is
built, by summing its weights over the RGB axis: the usual way to feed grayscale to an
ImageNet-pretrained network (the response to a gray image equals the RGB layer's to that image
copied into three channels), and for a freshly initialised layer it gives the variance a
one-channel layer of the same kind would draw. No random number is drawn, so everything else is
initialised exactly as in a three-channel run.

Part of the code digest of one-channel runs only (:func:`hpstudy.training.identity.code_digest`).
"""

from __future__ import annotations

import torch
from torch import nn

from hpstudy.core.errors import HpstudyError


def input_channels(manifest: dict) -> int:
    """The channels of the processed images: ``channels`` in the manifest (3 when absent:
    every variant written before it existed is RGB)."""
    return int(manifest.get("channels", 3))


def model_input_channels(channels: int, normalization: str) -> int:
    """The channels the model receives. ``normalization: imagenet`` normalises each of three
    RGB channels by its own mean and std, so a gray image is fed as three equal channels
    (:func:`gray_as_rgb`) and the model keeps its three-channel first layer."""
    return 3 if normalization == "imagenet" else channels


def gray_as_rgb(split):
    """A one-channel split seen as three equal channels, without copying it: a stride-0 view
    in memory (each batch gathered from it is a real three-channel batch), or a streamed split
    told to widen its batches. Returns the split."""
    images = split.images
    if isinstance(images, torch.Tensor):
        split.images = images.expand(*images.shape[:3], 3)
    else:
        images.widen_to = 3
    return split


def first_convolution(model: nn.Module) -> nn.Conv2d:
    """The layer that takes the image: the one convolution with three input channels."""
    found = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3]
    if len(found) != 1:
        raise HpstudyError(
            f"{type(model).__name__} has {len(found)} convolutions taking three channels, so "
            "the layer that takes the image is not known and the model cannot take one-channel "
            "images; use dataset.channels: 3 for this model, or normalization: imagenet (which "
            "feeds the gray channel to all three)."
        )
    return found[0]


def adapt_to_channels(model: nn.Module, channels: int) -> nn.Module:
    """Make ``model`` take ``channels`` (1 or 3) input channels, in place; returns it.

    The first convolution's weight tensor keeps its identity (the optimizer built on the model
    still holds it) and memory format; only its data becomes the sum over the RGB axis."""
    if channels == 3:
        return model
    if channels != 1:
        raise HpstudyError(f"dataset.channels must be 1 or 3, not {channels}.")
    conv = first_convolution(model)
    weight = conv.weight
    fmt = torch.channels_last if weight.is_contiguous(memory_format=torch.channels_last) else None
    with torch.no_grad():
        summed = weight.sum(dim=1, keepdim=True)
        weight.data = summed.contiguous(memory_format=fmt or torch.contiguous_format)
    conv.in_channels = 1
    return model
