"""Which zip member goes to which split: the accepted folder layouts, and the seeded,
stratified splits carved where the data brings none.

Accepted layouts, found from the member names alone, at the top of the zip or under one
wrapping folder (``intel/seg_train/...``):

* ``kaggle``: ``seg_train[/seg_train]/<class>/<image>`` and ``seg_test[/seg_test]/...``, plus
  the unlabelled, opt-in ``seg_pred[/seg_pred]/<image>``;
* ``train-test``: ``train/<class>/<image>`` and ``test/<class>/<image>``, with an optional
  validation folder ``val/``, ``valid/`` or ``validation/``;
* ``class-folders``: ``<class>/<image>`` only; the test split is carved here.

Any file is an image candidate (the decoder tells images by content, not by extension);
hidden files and ``__MACOSX`` folders are packaging noise and ignored silently.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpstudy.core.errors import HpstudyError

KAGGLE_FOLDERS = {"seg_train": "train", "seg_test": "test", "seg_pred": "pred"}
SPLIT_FOLDERS = {
    "train": "train",
    "test": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}
LAYOUTS = {
    "kaggle": "Kaggle seg_train/seg_test folders",
    "train-test": "train/test folders",
    "class-folders": "class folders (train/test split here)",
    "label-file": "a label file naming each image's file and class",
    "parquet": "Parquet shards with an image and a label column",
}
ACCEPTED = (
    "seg_train/<class>/<image> and seg_test/<class>/<image> (Kaggle; seg_train/seg_train/... "
    "too), train/<class>/<image> and test/<class>/<image> (optionally val/, valid/ or "
    "validation/ beside them), or <class>/<image> folders only (split here by "
    "`dataset.test_fraction`), each at the top or under one wrapping folder"
)
OUTSIDE = {
    "kaggle": "outside seg_train/, seg_test/ and seg_pred/",
    "train-test": "outside train/, test/ and val/ (valid/, validation/)",
}
SHOWN_ENTRIES = 12
TEST_FROM = (
    "Set `dataset.test_from: train` to carve the test split out of the training images (each "
    "class's `dataset.test_fraction`), or `dataset.test_from: val` to use the data's own "
    "validation split (val/, valid/ or validation/) as the test split"
)


@dataclass
class SplitMembers:
    """The zip entries of one split, in output order, with their class names (None: pred)."""

    infos: list[zipfile.ZipInfo] = field(default_factory=list)
    class_names: list[str | None] = field(default_factory=list)

    def add(self, info: zipfile.ZipInfo, class_name: str | None) -> None:
        """Append one member."""
        self.infos.append(info)
        self.class_names.append(class_name)


@dataclass
class Members:
    """A zip's members placed in a layout: ``splits`` maps train, test, pred (and val when
    the data brings one) to their members; ``skipped`` lists the files that fit no split."""

    layout: str
    splits: dict[str, SplitMembers]
    skipped: list[dict[str, str]]
    classes: list[str] = field(default_factory=list)
    split: dict[str, float | int | str] = field(default_factory=dict)  # how splits were made
    order: list[str] | None = None  # the source's own class order (e.g. Parquet's label names)
    dropped: list[str] = field(default_factory=list)  # class folders without a decodable image


def _parts(name: str) -> list[str]:
    return [part for part in name.replace("\\", "/").split("/") if part]


def _ignored(parts: list[str]) -> bool:
    # macOS resource forks and hidden files are packaging noise, not data.
    return any(part == "__MACOSX" or part.startswith(".") for part in parts)


def _files(infos: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The file entries worth placing, sorted by name, with their path parts."""
    files = []
    for info in sorted(infos, key=lambda info: info.filename):
        parts = _parts(info.filename)
        if info.is_dir() or info.filename.endswith("\\") or not parts or _ignored(parts):
            continue
        files.append((info, parts))
    return files


def _entries(paths: list[list[str]]) -> list[str]:
    """The top-level names of ``paths`` (path parts), folders ending in ``/``."""
    return sorted({parts[0] + ("/" if len(parts) > 1 else "") for parts in paths})


def _wrapper(files) -> str | None:
    """The one folder every other folder sits in, unless it is a split folder itself."""
    folders = {parts[0] for _, parts in files if len(parts) > 1}
    if len(folders) != 1 or folders & (set(KAGGLE_FOLDERS) | set(SPLIT_FOLDERS)):
        return None
    return folders.pop()


def _place_in_split(rest: list[str], folder: str, split: str) -> tuple | str:
    """``(split, class)`` for ``<folder>[/<folder>]/<class>/<image>`` (pred: no class)."""
    if len(rest) > 1 and rest[0] == folder:  # Kaggle's double nesting seg_x/seg_x/...
        rest = rest[1:]
    if split == "pred":
        return (split, None) if len(rest) == 1 else f"expected {folder}/<image>"
    return (split, rest[0]) if len(rest) == 2 else f"expected {folder}/<class>/<image>"


def _placer(layout: str):
    """The function placing a member's path below the root, for ``layout``: ``(split,
    class)``, or why it fits no split."""
    if layout == "class-folders":
        return lambda rel: ("train", rel[0]) if len(rel) == 2 else "expected <class>/<image>"
    mapping = KAGGLE_FOLDERS if layout == "kaggle" else SPLIT_FOLDERS
    outside = OUTSIDE[layout]

    def place(rel: list[str]):
        if len(rel) < 2 or rel[0] not in mapping:
            return outside
        return _place_in_split(rel[1:], rel[0], mapping[rel[0]])

    return place


def _shown(entries: list[str]) -> str:
    more = f", ... ({len(entries) - SHOWN_ENTRIES} more)" if len(entries) > SHOWN_ENTRIES else ""
    return ", ".join(entries[:SHOWN_ENTRIES]) + more if entries else "no files"


def _one_val_folder(zip_path: Path, folders: set[str]) -> None:
    vals = sorted(name for name in folders if SPLIT_FOLDERS.get(name) == "val")
    if len(vals) > 1:
        raise HpstudyError(
            f"The archive {zip_path} has more than one validation folder "
            f"({', '.join(name + '/' for name in vals)}). Keep one (val/, valid/ or "
            "validation/) and merge the others into it."
        )


def _choose(zip_path: Path, files, wrapper: str | None) -> str:
    """The layout of the entries below the root (the wrapping folder, if any)."""
    paths = [parts for _, parts in files]
    below = [p[1:] for p in paths if len(p) > 1 and p[0] == wrapper] if wrapper else paths
    folders = {rel[0] for rel in below if len(rel) > 1}
    if folders & set(KAGGLE_FOLDERS):
        return "kaggle"
    if folders & set(SPLIT_FOLDERS):
        _one_val_folder(zip_path, folders)
        return "train-test"
    if any(len(rel) == 2 for rel in below):  # class folders holding files
        return "class-folders"
    inside = f"; inside {wrapper}/: {_shown(_entries(below))}" if wrapper else ""
    raise HpstudyError(
        f"The archive {zip_path} is in none of the accepted layouts (found: "
        f"{_shown(_entries(paths))}{inside}). Accepted: {ACCEPTED}. Arrange the images in one "
        "of these layouts (for `dataset.source: folder` the folder `dataset.path`, else the "
        "zip or folder `dataset.archive`) and rerun."
    )


def find_members(zip_path: str | Path, infos: list[zipfile.ZipInfo]) -> Members:
    """Detect the layout of the zip entries ``infos`` and group its files by split (sorted by
    name); files that fit no split are listed in ``skipped``. Raises :class:`HpstudyError`
    naming the accepted layouts and the entries found when none fits."""
    zip_path, files = Path(zip_path), _files(infos)
    wrapper = _wrapper(files)
    layout = _choose(zip_path, files, wrapper)
    depth = 1 if wrapper else 0
    place = _placer(layout)
    splits = {split: SplitMembers() for split in ("train", "test", "pred")}
    skipped = []
    for info, parts in files:
        inside = wrapper is None or (len(parts) > 1 and parts[0] == wrapper)
        where = place(parts[depth:]) if inside else f"outside {wrapper}/"
        if isinstance(where, str):
            skipped.append({"member": info.filename, "reason": f"not in the layout: {where}"})
            continue
        splits.setdefault(where[0], SplitMembers()).add(info, where[1])
    return Members(layout, splits, skipped)


def _expected(layout: str, split: str) -> str:
    if layout == "kaggle":
        return f"seg_{split}/seg_{split}/<class>/<image> or seg_{split}/<class>/<image>"
    if layout == "train-test":
        return f"{split}/<class>/<image>"
    if layout in ("label-file", "parquet"):
        return f"{split} images (a split column, or shard or folder names)"
    return "<class>/<image> folders"


def class_list(zip_path: str | Path, members: Members) -> list[str]:
    """Sorted class names from the train folders; test (and val) must name the same ones."""
    splits, layout = members.splits, members.layout
    train = sorted(set(splits["train"].class_names))
    if not train:
        raise HpstudyError(
            f"The archive {zip_path} has no training images: expected "
            f"{_expected(layout, 'train')}. Check that it is the intel-image-classification "
            "zip or a dataset in one of the accepted layouts."
        )
    for split in ("test", "val"):
        names = sorted(set(splits[split].class_names)) if split in splits else None
        if names == []:
            fix = f" {TEST_FROM}." if split == "test" else ""
            raise HpstudyError(
                f"The archive {zip_path} has no {split} images: expected "
                f"{_expected(layout, split)}.{fix}"
            )
        if names is not None and names != train:
            only_train = sorted(set(train) - set(names))
            only_other = sorted(set(names) - set(train))
            folders = "seg_train and seg_test" if layout == "kaggle" else f"train and {split}"
            raise HpstudyError(
                f"The archive {zip_path} has different class folders in train and {split} "
                f"(only in train: {only_train}, only in {split}: {only_other}). Every class "
                f"must have a folder in both {folders}."
            )
    return train


def carve_count(n: int, fraction: float) -> int:
    """How many of a class's ``n`` images a split of ``fraction`` takes: ``round(n *
    fraction)``, at least one when the class has two or more, never all of them."""
    if n < 2:
        return 0
    return min(max(round(n * fraction), 1), n - 1)


def carve(
    members: SplitMembers, classes: list[str], fraction: float, seed: int, stream: int
) -> tuple[SplitMembers, SplitMembers]:
    """Split ``members`` into (kept, carved), stratified per class and seeded: class number
    ``c`` gives :func:`carve_count` of its members, drawn by
    ``numpy.random.default_rng([seed, stream, c])`` (``stream`` keeps the test and the
    validation draws apart). Both parts keep the members' order."""
    by_class: dict[str | None, list[int]] = {}
    for i, name in enumerate(members.class_names):
        by_class.setdefault(name, []).append(i)
    chosen: set[int] = set()
    for index, name in enumerate(classes):
        rows = by_class.get(name, [])
        rng = np.random.default_rng([seed, stream, index])
        picked = rng.choice(len(rows), size=carve_count(len(rows), fraction), replace=False)
        chosen.update(rows[i] for i in picked.tolist())
    kept, carved = SplitMembers(), SplitMembers()
    for i, (info, name) in enumerate(zip(members.infos, members.class_names, strict=True)):
        (carved if i in chosen else kept).add(info, name)
    return kept, carved


def _carvable(zip_path: Path, members: SplitMembers, split: str, setting: str) -> list[str]:
    """The sorted classes of ``members``; each needs two images to give one to ``split``."""
    counts: dict[str, int] = {}
    for name in members.class_names:
        counts[name] = counts.get(name, 0) + 1
    few = sorted(name for name, count in counts.items() if count < 2)
    if few:
        raise HpstudyError(
            f"The archive {zip_path} has classes with a single training image ({few}), which "
            f"cannot give an image to a {split} split carved by `{setting}`. Add images to "
            f"those classes or remove their folders."
        )
    return sorted(counts)


def assign_splits(
    zip_path: str | Path,
    infos: list[zipfile.ZipInfo],
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    test_from: str | None = None,
) -> Members:
    """Place the zip entries ``infos`` in their layout (:func:`find_members`) and complete the
    splits (:func:`complete_splits`)."""
    check_split_settings(test_fraction, val_fraction, split_seed, test_from)
    members = find_members(zip_path, infos)
    return complete_splits(zip_path, members, test_fraction, val_fraction, split_seed, test_from)


def drop_imageless_classes(members: Members, has_image) -> list[str]:
    """Remove the classes none of whose members (in any labelled split) ``has_image(infos)``
    finds decodable; their members go to ``skipped`` and their names, sorted, to
    ``members.dropped``, which is returned."""
    labelled = [split for split in members.splits if split != "pred"]
    by_class: dict[str, list[zipfile.ZipInfo]] = {}
    for split in labelled:
        for info, name in zip(members.splits[split].infos, members.splits[split].class_names,
                              strict=True):  # fmt: skip
            by_class.setdefault(name, []).append(info)
    dropped = [name for name in sorted(by_class) if not has_image(by_class[name])]
    for split in labelled if dropped else ():
        kept = SplitMembers()
        for info, name in zip(members.splits[split].infos, members.splits[split].class_names,
                              strict=True):  # fmt: skip
            if name in dropped:
                reason = f"class folder {name!r} holds no decodable image: class dropped"
                members.skipped.append({"member": info.filename, "reason": reason})
            else:
                kept.add(info, name)
        members.splits[split] = kept
    members.dropped = dropped
    return dropped


def check_split_settings(
    test_fraction: float, val_fraction: float, split_seed: int, test_from: str | None = None
) -> None:
    """Refuse split settings out of range (before anything is read)."""
    if not 0.0 < test_fraction < 1.0 or not 0.0 <= val_fraction < 1.0 or split_seed < 0:
        raise HpstudyError(
            f"The split settings are out of range: `dataset.test_fraction` must lie in (0, 1) "
            f"(got {test_fraction}), `dataset.val_fraction` in [0, 1) (got {val_fraction}) "
            f"and `dataset.split_seed` must be >= 0 (got {split_seed})."
        )
    if test_from not in (None, "train", "val"):
        raise HpstudyError(f"`dataset.test_from` must be train or val, got {test_from!r}.")


def _test_from(zip_path: Path, members: Members, test_from: str | None) -> bool:
    """Apply ``test_from: val`` (the val split becomes test); returns whether the test split
    is to be carved out of train (class folders, or ``test_from: train``)."""
    splits = members.splits
    if test_from and splits.get("test") and splits["test"].infos:
        raise HpstudyError(
            f"The archive {zip_path} brings its own test split ({len(splits['test'].infos)} "
            f"images), so `dataset.test_from: {test_from}` has nothing to do: remove "
            "`dataset.test_from` from the config (it applies to data without a test split)."
        )
    if test_from == "val":
        if not (splits.get("val") and splits["val"].infos):
            raise HpstudyError(
                f"`dataset.test_from: val` needs a validation split in the data, and the "
                f"archive {zip_path} has none (expected {_expected(members.layout, 'val')}). "
                "Set `dataset.test_from: train` to carve the test split out of train instead."
            )
        splits["test"] = splits.pop("val")
        members.split["test_from"] = "val"
        return False
    if test_from == "train":
        members.split["test_from"] = "train"
    return test_from == "train" or members.layout == "class-folders"


def complete_splits(
    zip_path: str | Path,
    members: Members,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    test_from: str | None = None,
) -> Members:
    """Complete the splits of placed ``members``: the test split from ``test_from`` (``val``:
    the data's own validation split; ``train``, and always for class folders: ``test_fraction``
    of each class carved out of train) and, when ``val_fraction`` > 0 and no validation split
    is left, a validation split carved out of train. ``Members.split`` records how (empty when
    nothing was carved or moved)."""
    zip_path = Path(zip_path)
    splits = members.splits
    if _test_from(zip_path, members, test_from):
        classes = _carvable(zip_path, splits["train"], "test", "dataset.test_fraction")
        splits["train"], splits["test"] = carve(
            splits["train"], classes, test_fraction, split_seed, stream=0
        )
        members.split["test_fraction"] = test_fraction
    members.classes = class_list(zip_path, members)
    if members.order is not None:
        members.classes = list(members.order)
    if val_fraction > 0 and "val" not in splits:
        _carvable(zip_path, splits["train"], "validation", "dataset.val_fraction")
        splits["train"], splits["val"] = carve(
            splits["train"], members.classes, val_fraction, split_seed, stream=1
        )
        members.split["val_fraction"] = val_fraction
    if members.split:
        members.split["split_seed"] = split_seed
    return members
