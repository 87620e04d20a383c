"""The splits a training job computes on, each held whole on the device or streamed
(:mod:`hpstudy.training.memory_budget` decides, :mod:`hpstudy.training.streaming` streams).

With ``train_on: train+val`` and the training split streamed, the train and validation arrays
are streamed as one split (train first, then val, as the loop's ``joined`` concatenates them),
and no validation split is left, as in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from hpstudy.training.arrays import load_split, read_verified_array
from hpstudy.training.batches import DeviceSplit
from hpstudy.training.memory_budget import memory_budget, streamed_units
from hpstudy.training.streaming import StreamedImages, streamed_split

LOG = logging.getLogger("hpstudy.splits")


def _labels(data_dir: Path, entries: list[dict], manifest: dict, device) -> torch.Tensor:
    parts = []
    for entry in entries:
        name = entry["y"]
        array = read_verified_array(
            data_dir / name, manifest["sha256"][name], manifest.get("bytes", {}).get(name), "int64"
        )
        parts.append(torch.from_numpy(array))
    return torch.cat(parts).to(device)


def units(settings: dict, manifest: dict) -> dict[str, list[str]]:
    """The units of data the job holds or streams as one: ``train`` (with ``val`` when the run
    trains on both), ``val`` when evaluated, ``test``."""
    has_val = "val" in manifest["splits"]
    joined = has_val and settings["train_on"] == "train+val"
    out = {"train": ["train", "val"] if joined else ["train"], "test": ["test"]}
    if has_val and not joined:
        out["val"] = ["val"]
    return out


def load_splits(
    settings: dict, manifest: dict, data_dir, device: torch.device
) -> tuple[DeviceSplit, DeviceSplit, DeviceSplit | None]:
    """(train, test, val) of a run: in memory or streamed, as ``in_memory`` and the budget say.
    A streamed ``train`` already holds the validation images of a train+val run (val None)."""
    data_dir = Path(data_dir)
    plan = units(settings, manifest)
    sizes = {
        unit: sum(manifest.get("bytes", {}).get(manifest["splits"][s]["x"], 0) for s in splits)
        for unit, splits in plan.items()
    }
    budget = memory_budget(device)
    streamed = streamed_units(settings.get("in_memory", "auto"), sizes, budget)
    loaded: dict[str, DeviceSplit | None] = {"val": None}
    for unit, splits in plan.items():
        entries = [manifest["splits"][s] for s in splits]
        if unit in streamed:
            LOG.info("streaming %s (%.0f MB; memory budget %.0f MB)", "+".join(splits),
                     sizes[unit] / 2**20, budget / 2**20)  # fmt: skip
            labels = _labels(data_dir, entries, manifest, device)
            loaded[unit] = streamed_split(data_dir, entries, manifest, device, labels)
        else:
            loaded[unit] = load_split(data_dir, splits[0], device, manifest)
            if len(splits) == 2:  # in memory: the loop joins train and val itself
                loaded["val"] = load_split(data_dir, splits[1], device, manifest)
    return loaded["train"], loaded["test"], loaded["val"]


def streamed_images(*splits: DeviceSplit | None) -> list[StreamedImages]:
    """The streamed ones among ``splits``."""
    return [s.images for s in splits if s is not None and isinstance(s.images, StreamedImages)]
