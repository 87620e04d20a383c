"""Where a raw zip's images and classes come from, for preprocess: the folder layouts
(:mod:`hpstudy.data.archive_layouts`), a stored label file (:mod:`hpstudy.data.label_files`) or Parquet
shards (:mod:`hpstudy.data.parquet_source`), and how each image is shaped
(:mod:`hpstudy.data.resize`). Every source gives the same :class:`~hpstudy.data.archive_layouts.Members`,
so the splits are completed, decoded, fingerprinted and audited alike."""

from __future__ import annotations

import argparse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from hpstudy.core import schema
from hpstudy.data.label_files import label_members
from hpstudy.data.parquet_source import ParquetImageBytes, parquet_members
from hpstudy.data.resize import CHANNELS, RESIZE_MODES
from hpstudy.core.errors import HpstudyError
from hpstudy.data.archive_layouts import (
    Members,
    check_split_settings,
    complete_splits,
    drop_imageless_classes,
    find_members,
)


@dataclass(frozen=True)
class SourceOptions:
    """The preprocessing settings beyond the split fractions: where the test split comes from,
    the resize mode, the channels, and whether the zip's classes come from a stored label file
    or from Parquet shards (else from its folders)."""

    test_from: str | None = None
    resize: str = "stretch"
    channels: int = 3
    labels: bool = False
    parquet: bool = False

    def check(self) -> None:
        """Refuse settings out of range, before anything is read."""
        if self.resize not in RESIZE_MODES or self.channels not in CHANNELS:
            raise HpstudyError(
                f"`dataset.resize` must be one of {', '.join(RESIZE_MODES)} (got "
                f"{self.resize!r}) and `dataset.channels` 3 or 1 (got {self.channels!r})."
            )
        if self.labels and self.parquet:
            raise HpstudyError(
                "`dataset.labels` does not apply to `dataset.source: parquet` (its classes are "
                "the label column): remove one of the two."
            )


@dataclass
class PlacedSource:
    """A zip's members in their splits, how to read one member's bytes (None: the zip
    member's own), the manifest's extra facts, and what to close after decoding."""

    members: Members
    read: object = None
    facts: dict = field(default_factory=dict)
    closers: list = field(default_factory=list)

    def close(self) -> None:
        """Release what reading held (a Parquet source's memory map)."""
        for close in self.closers:
            close()


def place_source(
    zip_path: str | Path,
    infos: list[zipfile.ZipInfo],
    options: SourceOptions,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    has_image=None,
) -> PlacedSource:
    """The members of ``zip_path`` by its source, with the test and validation splits
    completed (:func:`~hpstudy.data.archive_layouts.complete_splits`). With ``has_image`` (zip members ->
    whether one decodes), classes of images in the zip without a decodable image are dropped
    first (:func:`~hpstudy.data.archive_layouts.drop_imageless_classes`; not for Parquet rows)."""
    options.check()
    check_split_settings(test_fraction, val_fraction, split_seed, options.test_from)
    placed = PlacedSource(Members("", {}, []))
    if options.parquet:
        members, files, image_column = parquet_members(zip_path, infos)
        placed = PlacedSource(members, ParquetImageBytes(files, image_column), {}, [files.close])
    elif options.labels:
        members, facts = label_members(zip_path, infos)
        placed = PlacedSource(members, None, {"labels": facts})
    else:
        placed = PlacedSource(find_members(zip_path, infos))
    try:
        if has_image is not None and not options.parquet:
            drop_imageless_classes(placed.members, has_image)
        complete_splits(
            zip_path, placed.members, test_fraction, val_fraction, split_seed, options.test_from
        )
    except BaseException:
        placed.close()
        raise
    return placed


def shape_facts(options: SourceOptions) -> dict:
    """The manifest's record of the image shape: only what is not the default, so manifests of
    the default shape stay byte-identical (every training job depends on the manifest)."""
    facts: dict = {}
    if options.resize != "stretch":
        facts["resize"] = options.resize
    if options.channels != 3:
        facts["channels"] = options.channels
    return facts


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``hpstudy preprocess`` that fill :class:`SourceOptions`."""
    parser.add_argument(
        "--test-from", choices=("train", "val"),
        help="data without a test split: carve it from train (by --test-fraction) or use the "
        "data's own val/ (valid/, validation/) as the test split",
    )  # fmt: skip
    parser.add_argument("--resize", choices=RESIZE_MODES, default=schema.default("dataset", "resize"),
                        help="stretch to a square, crop the centre, or pad")  # fmt: skip
    parser.add_argument("--channels", type=int, choices=CHANNELS,
                        default=schema.default("dataset", "channels"),
                        help="3 (RGB) or 1 (grayscale, kept as one channel)")  # fmt: skip
    parser.add_argument("--labels", action="store_true",
                        help="classes (and splits) from the label file fetch stored in the zip")  # fmt: skip
    parser.add_argument("--parquet", action="store_true",
                        help="the zip holds Parquet shards with an image and a label column")  # fmt: skip


def source_options(args: argparse.Namespace) -> SourceOptions:
    """The :class:`SourceOptions` parsed ``hpstudy preprocess`` options give."""
    return SourceOptions(args.test_from, args.resize, args.channels, args.labels, args.parquet)
