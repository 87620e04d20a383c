"""The device data path (airbench style): a whole split lives on the device as one uint8 tensor.

Each epoch a permutation drawn from a generator seeded by (seed, epoch) picks the batches, which
are gathered by index on the device and converted to float there. No DataLoader, no worker
processes, no per-epoch decoding; and because the order depends only on (seed, epoch), a resumed
run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator that depends only on (seed, epoch), so resumed epochs replay exactly."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


@dataclass
class DeviceSplit:
    """One split on the device: ``images`` uint8 (N, H, W, 3), ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class BatchOptions:
    """How batches are turned into model input."""

    batch_size: int
    normalization: str = "none"  # "none" | "imagenet"
    flip: bool = False  # random horizontal flip (training only)
    channels_last: bool = False


def to_model_input(images: torch.Tensor, normalization: str, channels_last: bool) -> torch.Tensor:
    """uint8 NHWC batch -> float32 NCHW in [0, 1] (the seed's ToTensor), optionally normalised."""
    # permuting NHWC gives an NCHW view whose memory is already channels_last
    x = images.permute(0, 3, 1, 2)
    x = x.float() if channels_last else x.contiguous().float()
    x = x.div_(255)  # the seed's ToTensor: float(x) / 255
    if normalization == "imagenet":
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = x.sub_(mean).div_(std)
    return x


def train_batches(
    split: DeviceSplit, options: BatchOptions, seed: int, epoch: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled (and optionally flipped) batches; the last partial batch included."""
    generator = epoch_generator(seed, epoch)
    order = torch.randperm(len(split), generator=generator).to(split.images.device)
    flips = None
    if options.flip:
        flips = (torch.rand(len(split), generator=generator) < 0.5).to(split.images.device)
    for start in range(0, len(split), options.batch_size):
        index = order[start : start + options.batch_size]
        images = split.images[index]
        if flips is not None:
            flip_now = flips[start : start + options.batch_size].view(-1, 1, 1, 1)
            images = torch.where(flip_now, images.flip(2), images)  # dim 2 is W in NHWC
        yield (
            to_model_input(images, options.normalization, options.channels_last),
            split.labels[index],
        )


def eval_batches(
    split: DeviceSplit, options: BatchOptions
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The split in order, in batches of ``options.batch_size``, never flipped."""
    for start in range(0, len(split), options.batch_size):
        images = split.images[start : start + options.batch_size]
        yield (
            to_model_input(images, options.normalization, options.channels_last),
            split.labels[start : start + options.batch_size],
        )
