"""Preprocess a Kaggle-layout zip into uint8 NHWC arrays, one per split, plus a manifest.

Images are read straight from the zip (never extracted), decoded fully, converted to RGB and
resized to ``size`` x ``size`` exactly as the seed's ``torchvision.transforms.Resize((s, s))``
does on PIL images (PIL bilinear, which antialiases). A member that does not decode is skipped
and listed with its reason. Arrays are written with temporary names and renamed; the
manifest, which downstream rules depend on, is written last.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpstudy.atomic import atomic_path, atomic_write_text, clean_stale_temps, json_text, temp_name
from hpstudy.errors import HpstudyError, disk_full, is_disk_full
from hpstudy.fetch import sha256_file
from hpstudy.images import decode_image_into, strict_decoding
from hpstudy.zipcheck import open_zip, safe_members

SPLIT_FOLDERS = {"seg_train": "train", "seg_test": "test", "seg_pred": "pred"}
SPLITS = ("train", "test", "pred")
MANIFEST = "manifest.json"
PRED_INDEX = "pred.json"
CHUNK = 64  # images per thread-pool task: large enough to amortise scheduling
PROGRESS_SECONDS = 5.0  # keeps the rule's log short


@dataclass
class SplitMembers:
    """The zip entries of one split, in output order, with their class names (None: pred)."""

    infos: list[zipfile.ZipInfo] = field(default_factory=list)
    class_names: list[str | None] = field(default_factory=list)


def _ignored(parts: list[str]) -> bool:
    # macOS resource forks and hidden files are packaging noise, not data.
    return any(part == "__MACOSX" or part.startswith(".") for part in parts)


def locate_member(name: str) -> tuple[str, str | None] | str | None:
    """Place one member name in the layout.

    Returns ``(split, class_name)`` for an image candidate (class ``None`` for pred), ``None``
    for an entry to ignore silently, or a string saying why the entry does not fit the layout.
    """
    parts = [part for part in name.replace("\\", "/").split("/") if part]
    if name.endswith(("/", "\\")) or not parts or _ignored(parts):
        return None
    starts = [i for i, part in enumerate(parts[:2]) if part in SPLIT_FOLDERS]
    if not starts:
        return "outside seg_train/, seg_test/ and seg_pred/"
    folder = parts[starts[0]]
    rest = parts[starts[0] + 1 :]
    if len(rest) > 1 and rest[0] == folder:  # Kaggle's double nesting seg_x/seg_x/...
        rest = rest[1:]
    split = SPLIT_FOLDERS[folder]
    if split == "pred":
        return (split, None) if len(rest) == 1 else f"expected {folder}/<image>"
    return (split, rest[0]) if len(rest) == 2 else f"expected {folder}/<class>/<image>"


def collect_members(
    infos: list[zipfile.ZipInfo],
) -> tuple[dict[str, SplitMembers], list[dict[str, str]]]:
    """Group zip entries by split (sorted by name) and list those that fit no split."""
    splits = {split: SplitMembers() for split in SPLITS}
    skipped = []
    for info in sorted(infos, key=lambda info: info.filename):
        if info.is_dir():
            continue
        place = locate_member(info.filename)
        if place is None:
            continue
        if isinstance(place, str):
            skipped.append({"member": info.filename, "reason": f"not in the layout: {place}"})
            continue
        split, class_name = place
        splits[split].infos.append(info)
        splits[split].class_names.append(class_name)
    return splits, skipped


def class_list(zip_path: Path, splits: dict[str, SplitMembers]) -> list[str]:
    """Sorted class names from the train folders; the test folders must name the same ones."""
    train = sorted(set(splits["train"].class_names))
    test = sorted(set(splits["test"].class_names))
    if not train:
        raise HpstudyError(
            f"The archive {zip_path} has no training images: expected "
            "seg_train/seg_train/<class>/*.jpg or seg_train/<class>/*.jpg. Check that it is "
            "the intel-image-classification zip (or one in the same layout)."
        )
    if not test:
        raise HpstudyError(
            f"The archive {zip_path} has no test images: expected "
            "seg_test/seg_test/<class>/*.jpg or seg_test/<class>/*.jpg."
        )
    if train != test:
        only_train = sorted(set(train) - set(test))
        only_test = sorted(set(test) - set(train))
        raise HpstudyError(
            f"The archive {zip_path} has different class folders in train and test "
            f"(only in train: {only_train}, only in test: {only_test}). Every class must "
            "have a folder in both seg_train and seg_test."
        )
    return train


class NpyRowFile:
    """A uint8 ``.npy`` file whose rows are written at their offsets with ``os.pwrite``.

    Writing through a memory map costs a page fault per 4 KiB on first touch, which was a
    third of the per-image time; positioned writes from each thread's reusable buffer avoid
    that and need no lock.
    """

    def __init__(self, path: Path, shape: tuple[int, ...]):
        # open_memmap writes the header and sizes the (sparse) file; rows come later.
        header_only = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
        del header_only
        self.row_bytes = int(np.prod(shape[1:]))
        self.data_offset = path.stat().st_size - shape[0] * self.row_bytes
        self._fd = os.open(path, os.O_WRONLY)

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        """Write ``rows`` (contiguous uint8) as rows ``start, start + 1, ...``."""
        view = memoryview(np.ascontiguousarray(rows)).cast("B")
        position = self.data_offset + start * self.row_bytes
        while view:
            written = os.pwrite(self._fd, view, position)
            view, position = view[written:], position + written

    def close(self) -> None:
        """Close the file descriptor."""
        os.close(self._fd)


class ZipImageReader:
    """Decode zip members chunk by chunk, with one ZipFile handle and buffer per thread.

    A ZipFile shares one file handle behind a lock, so threads reading through a single one
    would serialise; separate handles let reads, inflation and decoding overlap.
    """

    def __init__(self, zip_path: Path, size: int):
        self.zip_path = zip_path
        self.size = size
        self._local = threading.local()
        self._handles: list[zipfile.ZipFile] = []
        self._lock = threading.Lock()

    def _thread_state(self) -> tuple[zipfile.ZipFile, np.ndarray]:
        if getattr(self._local, "zip", None) is None:
            self._local.zip = zipfile.ZipFile(self.zip_path)
            self._local.rows = np.zeros((CHUNK, self.size, self.size, 3), dtype=np.uint8)
            with self._lock:
                self._handles.append(self._local.zip)
        return self._local.zip, self._local.rows

    def read_chunk(self, infos, start: int, stop: int, results: list, sink: NpyRowFile) -> None:
        """Decode ``infos[start:stop]`` into rows ``start:stop`` of ``sink``; outcomes go to
        ``results`` (rows of skipped members hold leftovers and are dropped later)."""
        archive, rows = self._thread_state()
        for i in range(start, stop):
            try:
                data = archive.read(infos[i])
            except (zipfile.BadZipFile, EOFError, OSError) as err:
                results[i] = HpstudyError(
                    f"The archive {self.zip_path} is corrupt: reading {infos[i].filename!r} "
                    f"failed ({err}). Delete it and rerun so that it is fetched again."
                )
                continue
            results[i] = decode_image_into(data, rows[i - start], self.size)
        sink.write_rows(start, rows[: stop - start])

    def close(self) -> None:
        """Close every per-thread handle."""
        for handle in self._handles:
            handle.close()
        self._handles.clear()


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, mininterval=PROGRESS_SECONDS)


def decode_split(reader: ZipImageReader, infos, sink: NpyRowFile, threads: int, desc: str):
    """Decode every member of a split into ``sink``; returns one outcome per member.

    An outcome is ``True`` (resized), ``False`` (already the right size) or a string (why it
    was skipped); a corrupt archive raises :class:`HpstudyError`.
    """
    results: list = [None] * len(infos)
    bounds = [(i, min(i + CHUNK, len(infos))) for i in range(0, len(infos), CHUNK)]
    with _progress(len(infos), desc) as bar:
        if threads <= 1:
            for start, stop in bounds:
                reader.read_chunk(infos, start, stop, results, sink)
                bar.update(stop - start)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                jobs = [
                    (pool.submit(reader.read_chunk, infos, start, stop, results, sink), stop)
                    for start, stop in bounds
                ]
                for (job, stop), (start, _) in zip(jobs, bounds, strict=True):
                    job.result()
                    bar.update(stop - start)
    for outcome in results:
        if isinstance(outcome, HpstudyError):
            raise outcome
    return results


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


def write_split(reader, members: SplitMembers, classes, out_dir: Path, split: str, threads: int):
    """Decode one split into ``<split>_x.npy`` / ``<split>_y.npy``; returns its summary."""
    size = reader.size
    final_x, final_y = out_dir / f"{split}_x.npy", out_dir / f"{split}_y.npy"
    # decoded into a temporary file of its own name: compaction writes final_x through
    # final_x's temporary name while still reading this one
    tmp_x = temp_name(out_dir / f"{split}_x.partial.npy")
    shape = (len(members.infos), size, size, 3)
    try:
        sink = NpyRowFile(tmp_x, shape)
        try:
            outcomes = decode_split(reader, members.infos, sink, threads, split)
        finally:
            sink.close()
        keep = np.array([isinstance(outcome, bool) for outcome in outcomes], dtype=bool)
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
    index = {name: i for i, name in enumerate(classes)}
    names = [name for name, kept in zip(members.class_names, keep, strict=True) if kept]
    labels = np.array([-1 if name is None else index[name] for name in names], dtype=np.int64)
    _save_labels(final_y, labels)
    skipped = [
        {"member": info.filename, "reason": outcome}
        for info, outcome in zip(members.infos, outcomes, strict=True)
        if isinstance(outcome, str)
    ]
    per_class = Counter(name for name in names if name is not None)
    summary = {
        "count": int(keep.sum()),
        "per_class": {name: per_class.get(name, 0) for name in classes} if split != "pred" else {},
        "x": final_x.name,
        "y": final_y.name,
    }
    return summary, sum(outcome is True for outcome in outcomes), skipped


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
) -> dict:
    """Preprocess the Kaggle-layout zip at ``zip_path`` into ``out_dir``; returns the manifest.

    Writes ``{train,test}_{x,y}.npy`` (uint8 NHWC images, int64 labels) and, last,
    ``manifest.json`` with each array's size and sha256. With ``pred``, decodes only the
    unlabelled ``seg_pred`` images instead, into ``pred_{x,y}.npy`` and ``pred.json`` (nothing
    trains on them; they are opt-in). Raises :class:`HpstudyError` for a missing or corrupt
    zip, an unsafe member (before anything is written), a zip without train/test images, or
    train/test class folders that differ.
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    if size < 1 or threads < 1:
        raise HpstudyError(f"The image size ({size}) and threads ({threads}) must be >= 1.")
    with open_zip(zip_path) as archive:
        infos = safe_members(archive)
    splits, skipped = collect_members(infos)
    classes = class_list(zip_path, splits)
    wanted = ("pred",) if pred else ("train", "test")
    index = out_dir / (PRED_INDEX if pred else MANIFEST)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    aside = _set_aside(index)
    for split in wanted:
        for kind in ("x", "y"):
            (out_dir / f"{split}_{kind}.npy").unlink(missing_ok=True)
    reader = ZipImageReader(zip_path, size)
    summaries, resized = {}, 0
    try:
        with strict_decoding():
            for split in wanted:
                summary, split_resized, split_skipped = write_split(
                    reader, splits[split], classes, out_dir, split, threads
                )
                summaries[split], resized = summary, resized + split_resized
                skipped.extend(split_skipped)
    finally:
        reader.close()
    outputs = [name for summary in summaries.values() for name in (summary["x"], summary["y"])]
    manifest = {
        "name": name or zip_path.stem,
        "image_size": size,
        "classes": classes,
        "splits": summaries,
        "resized": resized,
        "skipped": sorted(skipped, key=lambda entry: entry["member"]),
        "sha256": {output: sha256_file(out_dir / output) for output in outputs},
        "bytes": {output: (out_dir / output).stat().st_size for output in outputs},
        "source": {"sha256": sha256_file(zip_path), "size_bytes": zip_path.stat().st_size},
    }
    _put_index(index, manifest, aside)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hpstudy preprocess``."""
    args = build_parser().parse_args(argv)
    manifest = preprocess_archive(
        args.archive, args.out_dir, args.size, args.threads, args.name, pred=args.pred
    )
    counts = ", ".join(f"{split} {s['count']}" for split, s in manifest["splits"].items())
    print(
        f"hpstudy preprocess: {args.out_dir}: {counts} images in {len(manifest['classes'])} "
        f"classes; {manifest['resized']} resized, {len(manifest['skipped'])} skipped",
        file=sys.stderr,
    )
    for entry in manifest["skipped"]:
        print(f"  skipped {entry['member']}: {entry['reason']}", file=sys.stderr)
    return 0
