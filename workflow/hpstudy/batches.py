"""The device data path (airbench style): a whole split lives on the device as one uint8 tensor.

Each epoch a permutation drawn from a generator seeded by (seed, epoch) picks the batches, which
are gathered by index on the device and converted to float there. No DataLoader, no worker
processes, no per-epoch decoding; and because the order depends only on (seed, epoch), a resumed
run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hpstudy.errors import HpstudyError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_manifest(data_dir: str | Path) -> dict:
    """The processed dataset's manifest.json (classes, image size, splits)."""
    path = Path(data_dir) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise HpstudyError(
            f"No processed dataset at {data_dir}: {path} is missing. Run the preprocess step "
            "(`snakemake` builds it) or pass the folder that holds manifest.json as --data-dir."
        ) from err
    except json.JSONDecodeError as err:
        raise HpstudyError(f"{path} is not valid JSON ({err}); rebuild the dataset.") from err


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


def load_split(data_dir: str | Path, split: str, device: torch.device) -> DeviceSplit:
    """Read a processed split once (memory-mapped) and move it to ``device`` as uint8."""
    manifest = load_manifest(data_dir)
    entry = manifest.get("splits", {}).get(split)
    if entry is None:
        raise HpstudyError(
            f"The dataset at {data_dir} has no {split!r} split in manifest.json; rebuild it."
        )
    x = np.load(Path(data_dir) / entry["x"], mmap_mode="r")
    y = np.load(Path(data_dir) / entry["y"], mmap_mode="r")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3 or len(x) != len(y):
        raise HpstudyError(
            f"{Path(data_dir) / entry['x']} is not uint8 N x H x W x 3 matching its labels "
            f"(got {x.dtype} {x.shape}, {len(y)} labels); rebuild the dataset."
        )
    # one host copy (the memory map is read-only), then one transfer to the device
    images = torch.from_numpy(np.array(x, copy=True)).to(device)
    labels = torch.from_numpy(np.array(y, dtype=np.int64, copy=True)).to(device)
    return DeviceSplit(images, labels)


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
    elif normalization != "none":
        raise HpstudyError(f"normalization {normalization!r} is not known: use none or imagenet.")
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
