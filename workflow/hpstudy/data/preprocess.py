"""Preprocess a dataset zip into uint8 NHWC arrays, one per split, plus a manifest.

The zip's layout (Kaggle's, train/test folders, or class folders only) and any split carved
here (test, validation) come from :mod:`hpstudy.data.archive_layouts`. Images are read straight from the
zip (never extracted), decoded fully, converted to RGB and resized to ``size`` x ``size``
exactly as the seed's ``torchvision.transforms.Resize((s, s))`` does on PIL images (PIL
bilinear, which antialiases). A member that does not decode is skipped and listed with its
reason. Each stored row is fingerprinted while decoding (:mod:`hpstudy.data.fingerprint`) into
``index.csv``, which the audit reads and ``drop_leaks`` uses. Arrays are written with
temporary names and renamed; the manifest, which downstream rules depend on, is written last.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpstudy.core import manifest as manifest_file
from hpstudy.core import schema
from hpstudy.core.atomic import (
    atomic_path,
    atomic_write_text,
    clean_stale_temps,
    json_text,
    temp_name,
    write_if_changed,
)
from hpstudy.data.split_decoding import NpyRowFile, ZipImageReader, decode_split
from hpstudy.data.image_classes import zip_has_image
from hpstudy.data.label_files import coverage_text
from hpstudy.data.sources import (
    SourceOptions,
    add_source_options,
    place_source,
    shape_facts,
    source_options,
)
from hpstudy.core.errors import HpstudyError, disk_full, is_disk_full
from hpstudy.data.fetch import sha256_file
from hpstudy.data.fingerprint import INDEX_FILE, Fingerprint, index_text
from hpstudy.data.decode import strict_decoding
from hpstudy.data.archive_layouts import LAYOUTS, SplitMembers
from hpstudy.data.zip_checks import open_zip, safe_members

MANIFEST = manifest_file.FILE
PRED_INDEX = "pred.json"


def _save_labels(path: Path, labels: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, labels.astype(np.int64))


def _compact(tmp_x: Path, keep: np.ndarray, final_x: Path) -> None:
    """Write only the rows ``keep`` of the array at ``tmp_x`` to ``final_x`` (in chunks)."""
    full = np.load(tmp_x, mmap_mode="r")
    rows = np.flatnonzero(keep)
    with atomic_path(final_x) as tmp:
        kept = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(rows),) + full.shape[1:]
        )
        for start in range(0, len(rows), 1024):
            kept[start : start + 1024] = full[rows[start : start + 1024]]
        kept.flush()
        del kept
    del full
    tmp_x.unlink()


@dataclass
class SplitResult:
    """What writing one split gave: its manifest entry, how many images were resized, the
    members skipped (with reasons), its rows of ``index.csv``, the exact hashes of its stored
    rows and how many copies of training images were dropped from it."""

    summary: dict
    resized: int
    skipped: list[dict[str, str]]
    index_rows: list[tuple]
    exact: set[str]
    dropped: int


def _decode_to_file(reader, members: SplitMembers, out_dir: Path, split: str, threads, leaks):
    """Decode a split into ``<split>_x.npy``, keeping the rows that decoded and whose exact
    hash is not in ``leaks``; returns (outcomes, fingerprints, rows kept, rows dropped)."""
    size = reader.size
    final_x = out_dir / f"{split}_x.npy"
    # decoded into a temporary file of its own name: compaction writes final_x through
    # final_x's temporary name while still reading this one
    tmp_x = temp_name(out_dir / f"{split}_x.partial.npy")
    shape = (len(members.infos), size, size, reader.channels)
    try:
        sink = NpyRowFile(tmp_x, shape)
        try:
            outcomes, prints = decode_split(reader, members.infos, sink, threads, split)
        finally:
            sink.close()
        decoded = np.array([isinstance(outcome, bool) for outcome in outcomes], dtype=bool)
        leaked = np.array([p is not None and p.exact in leaks for p in prints], dtype=bool)
        keep = decoded & ~leaked
        if keep.all():
            os.replace(tmp_x, final_x)
        else:
            _compact(tmp_x, keep, final_x)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(final_x) from err
        raise
    finally:
        tmp_x.unlink(missing_ok=True)
    return outcomes, prints, np.flatnonzero(keep).tolist(), int(leaked.sum())


def write_split(
    reader, members: SplitMembers, classes, out_dir: Path, split: str, threads: int, leaks=()
) -> SplitResult:
    """Decode one split into ``<split>_x.npy`` / ``<split>_y.npy``, leaving out images whose
    exact hash is in ``leaks``; returns its :class:`SplitResult`."""
    leaks = frozenset(leaks)
    outcomes, prints, kept, dropped = _decode_to_file(
        reader, members, out_dir, split, threads, leaks
    )
    index = {name: i for i, name in enumerate(classes)}
    names = [members.class_names[i] for i in kept]
    labels = np.array([-1 if name is None else index[name] for name in names], dtype=np.int64)
    final_y = out_dir / f"{split}_y.npy"
    _save_labels(final_y, labels)
    skipped = [
        {"member": info.filename, "reason": outcome}
        for info, outcome in zip(members.infos, outcomes, strict=True)
        if isinstance(outcome, str)
    ]
    per_class = Counter(name for name in names if name is not None)
    summary = {
        "count": len(kept),
        "per_class": {name: per_class.get(name, 0) for name in classes} if split != "pred" else {},
        "x": manifest_file.split_files(split)["x"],
        "y": final_y.name,
    }
    rows = [
        (split, row, members.infos[i].filename, int(label), name or "", *_print_fields(prints[i]))
        for row, (i, label, name) in enumerate(zip(kept, labels, names, strict=True))
    ]
    exact = {prints[i].exact for i in kept if prints[i] is not None}
    resized = sum(outcomes[i] is True for i in kept)
    return SplitResult(summary, resized, skipped, rows, exact, dropped)


def _print_fields(fp: Fingerprint | None) -> tuple[str, str, int | str]:
    return ("", "", "") if fp is None else (fp.exact, fp.dhash, int(fp.low_variance))


def _set_aside(path: Path) -> Path | None:
    """Move an existing index file to a temporary name (the folder then no longer claims to be
    complete); returns that name, or None when there was none."""
    if not path.exists():
        return None
    aside = temp_name(path)
    os.replace(path, aside)
    return aside


def _put_index(path: Path, record: dict, aside: Path | None) -> None:
    """Write the index file (manifest.json, pred.json) last. When its content is what the set-
    aside one held, the old file goes back in place unchanged (same modification time), so
    training jobs that depend on it do not look outdated."""
    text = json_text(record)
    if aside is not None and aside.read_text(encoding="utf-8") == text:
        os.replace(aside, path)
        return
    atomic_write_text(path, text)
    if aside is not None:
        aside.unlink(missing_ok=True)


def preprocess_archive(
    zip_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: int,
    threads: int = 1,
    name: str | None = None,
    pred: bool = False,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    drop_leaks: bool = False,
    source: SourceOptions | None = None,
) -> dict:
    """Preprocess the dataset zip at ``zip_path`` into ``out_dir``; returns the manifest.

    Writes ``{train,test}_{x,y}.npy`` (uint8 NHWC images, int64 labels), ``val_{x,y}.npy``
    when the data brings a validation folder or ``val_fraction`` > 0 carves one out of train
    (stratified, seeded by ``split_seed``), ``index.csv`` (each stored image's fingerprints)
    and, last, ``manifest.json`` with the layout, how carved splits were made, and each
    array's size and sha256. Class folders alone are split into train and test by
    ``test_fraction``. ``drop_leaks`` removes from test and val every exact copy of a training
    image (counted in the manifest). With ``pred``, decodes only the unlabelled ``seg_pred``
    images instead, into ``pred_{x,y}.npy`` and ``pred.json`` (nothing trains on them; they
    are opt-in). Raises :class:`HpstudyError` for a missing or corrupt zip, an unsafe member
    (before anything is written), a zip in no accepted layout or without train/test images,
    or class folders that differ between splits. ``source`` (:class:`SourceOptions`) says
    where the test split comes from, how images are shaped, and whether the classes come from
    a stored label file or Parquet shards.
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    source = source or SourceOptions()
    if size < 1 or threads < 1:
        raise HpstudyError(f"The image size ({size}) and threads ({threads}) must be >= 1.")
    if pred and (source.labels or source.parquet or source.test_from):
        raise HpstudyError(
            "`dataset.pred` reads the unlabelled seg_pred/ folder of the Kaggle layout; it "
            "does not combine with `dataset.labels`, `dataset.test_from` or Parquet sources."
        )
    with open_zip(zip_path) as archive:
        infos = safe_members(archive)
        placed = place_source(
            zip_path, infos, source, test_fraction, 0.0 if pred else val_fraction, split_seed,
            has_image=functools.partial(zip_has_image, archive),
        )  # fmt: skip
    try:
        return _preprocess_placed(
            zip_path, out_dir, size, threads, name, pred, drop_leaks, source, placed
        )
    finally:
        placed.close()


def _preprocess_placed(zip_path, out_dir, size, threads, name, pred, drop_leaks, source, placed):
    """Write the splits of placed members, the index and, last, the manifest."""
    members = placed.members
    splits = members.splits
    wanted = ("pred",) if pred else tuple(s for s in ("train", "test", "val") if s in splits)
    index = out_dir / (PRED_INDEX if pred else MANIFEST)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    aside = _set_aside(index)
    for split in ("pred",) if pred else ("train", "test", "val"):
        for kind in ("x", "y"):
            (out_dir / f"{split}_{kind}.npy").unlink(missing_ok=True)
    reader = ZipImageReader(
        zip_path, size, "pred" not in wanted, (source.resize, source.channels), placed.read
    )
    results = _write_splits(reader, members, out_dir, wanted, threads, drop_leaks)
    if not pred:
        rows = [row for result in results.values() for row in result.index_rows]
        write_if_changed(out_dir / INDEX_FILE, index_text(rows))
    manifest = _manifest(zip_path, out_dir, name, size, members, results, pred, drop_leaks)
    if not pred:  # after the layout; only what is not the default (see shape_facts)
        extra = {**shape_facts(source), **placed.facts}
        keys = list(manifest)
        at = keys.index("layout") + 1
        manifest = {**{k: manifest[k] for k in keys[:at]}, **extra,
                    **{k: manifest[k] for k in keys[at:]}}  # fmt: skip
    _put_index(index, manifest, aside)
    return manifest


def _write_splits(reader, members, out_dir, wanted, threads, drop_leaks):
    """Write each wanted split (train first: its exact hashes are the leaks of the others)."""
    zip_path = reader.zip_path
    results: dict[str, SplitResult] = {}
    leaks: frozenset[str] = frozenset()
    try:
        with strict_decoding():
            for split in wanted:
                results[split] = write_split(
                    reader, members.splits[split], members.classes, out_dir, split, threads, leaks
                )
                if split == "train" and drop_leaks:
                    leaks = frozenset(results["train"].exact)
                elif results[split].dropped and not results[split].summary["count"]:
                    raise HpstudyError(
                        f"Every {split} image of {zip_path} is an exact copy of a training "
                        "image, so `dataset.drop_leaks` left the split empty. Check the "
                        "dataset (a test folder holding the training images?) or turn "
                        "`dataset.drop_leaks` off."
                    )
    finally:
        reader.close()
    return results


def _manifest(zip_path, out_dir, name, size, members, results, pred, drop_leaks) -> dict:
    """The manifest (or pred.json) of the written splits; keys appear only when they say
    something (``split`` when a split was carved, ``leaks_dropped`` with ``drop_leaks``)."""
    outputs = [result.summary[kind] for result in results.values() for kind in ("x", "y")]
    skipped = list(members.skipped)
    for result in results.values():
        skipped.extend(result.skipped)
    manifest = {"name": name or zip_path.stem, "image_size": size, "layout": members.layout}
    if members.split and not pred:
        manifest["split"] = dict(members.split)
    manifest["classes"] = members.classes
    if members.dropped and not pred:  # only then: other data keeps a byte-identical manifest
        manifest["classes_dropped"] = members.dropped
    manifest["splits"] = {split: result.summary for split, result in results.items()}
    if drop_leaks and not pred:
        manifest["leaks_dropped"] = {s: r.dropped for s, r in results.items() if s != "train"}
    manifest |= {
        "resized": sum(result.resized for result in results.values()),
        "skipped": sorted(skipped, key=lambda entry: entry["member"]),
        **manifest_file.file_facts(out_dir, outputs, sha256_file),
        "source": {"sha256": sha256_file(zip_path), "size_bytes": zip_path.stat().st_size},
    }
    return manifest


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``hpstudy preprocess``."""
    parser = argparse.ArgumentParser(
        prog="hpstudy preprocess",
        description="Decode, check and resize the images of a dataset zip into .npy arrays.",
    )
    parser.add_argument("--archive", required=True, help="data/raw/<name>.zip")
    parser.add_argument("--out-dir", required=True, help="data/processed/<name>-<size>")
    parser.add_argument("--size", type=int, required=True, help="output height = width")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", help="dataset name in the manifest (default: zip name)")
    parser.add_argument(
        "--pred", action="store_true", help="decode only the unlabelled seg_pred images"
    )
    parser.add_argument(
        "--test-fraction", type=float, default=schema.default("dataset", "test_fraction"),
        help="class folders only (no split folders): each class's share held out as test",
    )  # fmt: skip
    parser.add_argument(
        "--val-fraction", type=float, default=float(schema.default("dataset", "val_fraction")),
        help="each class's share of train held out as validation, unless the data brings a "
        "val/ folder (0: none)",
    )  # fmt: skip
    parser.add_argument("--split-seed", type=int, help="seed of every carved split",
                        default=schema.default("dataset", "split_seed"))  # fmt: skip
    parser.add_argument(
        "--drop-leaks", action="store_true",
        help="remove from test and val every exact copy of a training image",
    )  # fmt: skip
    add_source_options(parser)
    return parser


def _report(args, manifest: dict) -> None:
    """The log lines of ``hpstudy preprocess``: counts, layout, carved splits, leaks, skips."""
    counts = ", ".join(f"{split} {s['count']}" for split, s in manifest["splits"].items())
    print(
        f"hpstudy preprocess: {args.out_dir}: {counts} images in {len(manifest['classes'])} "
        f"classes; {manifest['resized']} resized, {len(manifest['skipped'])} skipped",
        file=sys.stderr,
    )
    layout = manifest["layout"]
    print(f"  layout: {LAYOUTS[layout]} ({layout})", file=sys.stderr)
    if "split" in manifest:
        settings = ", ".join(f"{key} {value}" for key, value in manifest["split"].items())
        print(f"  splits carved here: {settings}", file=sys.stderr)
    if args.val_fraction > 0 and "val_fraction" not in manifest.get("split", {}) and not args.pred:
        print("  the data brings a validation folder: --val-fraction ignored", file=sys.stderr)
    if "leaks_dropped" in manifest:
        dropped = ", ".join(f"{n} from {split}" for split, n in manifest["leaks_dropped"].items())
        print(f"  exact copies of training images dropped: {dropped}", file=sys.stderr)
    if "labels" in manifest:
        labels = manifest["labels"]
        where = f"{labels['file']} (in {args.archive})"
        print(f"  {coverage_text(where, labels['named'], manifest['skipped'])}", file=sys.stderr)
    if "classes_dropped" in manifest:
        print(f"  class folders dropped, holding no decodable image: "
              f"{', '.join(manifest['classes_dropped'])}", file=sys.stderr)  # fmt: skip
    for entry in manifest["skipped"]:
        print(f"  skipped {entry['member']}: {entry['reason']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hpstudy preprocess``."""
    args = build_parser().parse_args(argv)
    manifest = preprocess_archive(
        args.archive,
        args.out_dir,
        args.size,
        args.threads,
        args.name,
        pred=args.pred,
        test_fraction=args.test_fraction,
        val_fraction=args.val_fraction,
        split_seed=args.split_seed,
        drop_leaks=args.drop_leaks,
        source=source_options(args),
    )
    _report(args, manifest)
    return 0
