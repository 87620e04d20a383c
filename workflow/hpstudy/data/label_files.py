"""Label files: a CSV or JSON-lines file naming each image's file and class (and optionally
its split), beside a folder of images: Kaggle's ``train.csv`` + ``train/``, Hugging Face
``imagefolder``'s ``metadata.csv`` / ``metadata.jsonl`` (``file_name``, ``label``).

``hpstudy fetch`` stores the label file inside the raw zip under :data:`LABELS_PREFIX` (a
hidden folder, which the folder layouts ignore), followed by its path inside the image folder
when it lies there, so the zip alone is what preprocess reads. Names are looked up among the
zip's members only, so a label file (wherever it lies) can never make us read an image
outside the folder. A name is tried, in order: beside the label file, from the folder's top,
then without its extension (Kaggle's ids), then as the one member of that file name anywhere.
Without a split column, an image's split is its top folder's (``train/``, ``test/``,
``val/``...), else train.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from hpstudy.core.atomic import atomic_path
from hpstudy.core.errors import HpstudyError
from hpstudy.data.fetch import _fixed_info, sha256_file
from hpstudy.data.archive_layouts import KAGGLE_FOLDERS, SPLIT_FOLDERS, Members, SplitMembers
from hpstudy.data.zip_checks import unsafe_reason, verify_zip

LABELS_PREFIX = ".hpstudy/labels/"
FILE_COLUMNS = ("file_name", "filename", "file", "image", "image_id", "image_name", "path", "id")
LABEL_COLUMNS = ("label", "labels", "class", "class_name", "category", "target")
SPLIT_COLUMN = "split"
SPLIT_VALUES = {**SPLIT_FOLDERS, **KAGGLE_FOLDERS}
# files a labelled folder commonly holds beside its images; never listed as "not named"
NOT_IMAGES = {".csv", ".tsv", ".json", ".jsonl", ".txt", ".md", ".yaml", ".yml", ".parquet"}
SHOWN = 12


# --------------------------------------------------------------------------- fetch side


def label_member(labels: str | os.PathLike, folder: str | os.PathLike | None) -> str:
    """The zip member name the label file is stored under: its path inside ``folder`` when it
    lies there (so names beside it resolve), else its file name."""
    labels = Path(labels).expanduser().resolve()
    if folder is not None and Path(folder).is_dir():
        try:
            return LABELS_PREFIX + labels.relative_to(Path(folder).resolve()).as_posix()
        except ValueError:
            pass
    return LABELS_PREFIX + labels.name


def add_label_file(
    out_zip: str | os.PathLike,
    labels: str | os.PathLike,
    folder: str | os.PathLike | None = None,
    expected_sha256: str | None = None,
) -> dict:
    """Store the label file ``labels`` in the zip ``out_zip`` (copied, appended to, checked and
    renamed into place); returns the sidecar's label facts (path and sha256). Raises when the
    file is missing, or differs from ``expected_sha256`` (changed since the run was planned)."""
    given, labels = str(labels), Path(labels).expanduser()  # the sidecar keeps it as given
    if not labels.is_file():
        raise HpstudyError(
            f"The label file {labels} (from `dataset.labels`) does not exist. Set "
            "`dataset.labels` to the CSV or JSON-lines file naming each image's file and class."
        )
    digest = sha256_file(labels)
    if expected_sha256 and digest != expected_sha256:
        raise HpstudyError(
            f"The label file {labels} changed after the workflow was planned (sha256 "
            f"{digest[:12]}..., planned {expected_sha256[:12]}...). Rerun snakemake, which "
            "plans with the file as it is now."
        )
    data = labels.read_bytes()
    with atomic_path(out_zip) as tmp:
        shutil.copyfile(out_zip, tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(_fixed_info(label_member(labels, folder), len(data)), data)
        verify_zip(tmp)
    return {"labels": given, "labels_sha256": digest}


# --------------------------------------------------------------------------- reading


def _column(found: list[str], wanted: tuple[str, ...], name: str, where: str) -> str:
    lowered = {column.strip().lower(): column for column in found}
    for candidate in wanted:
        if candidate in lowered:
            return lowered[candidate]
    raise HpstudyError(
        f"The label file {where} has no {name} column (columns: {found}). Name it one of "
        f"{', '.join(wanted)} (or give the file exactly two columns: file, then class)."
    )


def read_label_rows(data: bytes, name: str, where: str) -> list[dict[str, str]]:
    """The rows of a label file as ``{"file", "label", "split"}`` strings (split may be "").
    JSON lines (``.jsonl``, ``.json``: one object a line, or one list of objects), else CSV
    (``.tsv``: tab-separated)."""
    text = data.decode("utf-8-sig", errors="replace")
    suffix = PurePosixPath(name).suffix.lower()
    try:
        if suffix in (".jsonl", ".json"):
            stripped = text.lstrip()
            records = (
                json.loads(stripped)
                if stripped.startswith("[")
                else [json.loads(line) for line in text.splitlines() if line.strip()]
            )
            if not all(isinstance(record, dict) for record in records):
                raise ValueError("every line must be one JSON object")
        else:
            reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
            records = list(reader)
    except (ValueError, csv.Error) as err:
        raise HpstudyError(
            f"The label file {where} cannot be read ({err}). Give a CSV with a header row, or "
            "JSON lines (one object per line), naming each image's file and class."
        ) from None
    columns = list(dict.fromkeys(key for record in records for key in record if key))
    if len(columns) == 2:  # file and class, whatever their names (id,breed; image,level)
        first_is_label = columns[0].strip().lower() in LABEL_COLUMNS
        file_col, label_col = columns[::-1] if first_is_label else columns
    else:
        file_col = _column(columns, FILE_COLUMNS, "file", where) if records else ""
        label_col = _column(columns, LABEL_COLUMNS, "class", where) if records else ""
    split_col = next((c for c in columns if c.strip().lower() == SPLIT_COLUMN), None)

    def text_of(record, column) -> str:
        value = record.get(column) if column else None
        return "" if value is None else str(value).strip()

    return [
        {"file": text_of(r, file_col), "label": text_of(r, label_col),
         "split": text_of(r, split_col).lower()}
        for r in records
    ]  # fmt: skip


class MemberIndex:
    """The zip's image candidates, looked up by path, path without extension and file name."""

    def __init__(self, infos: list[zipfile.ZipInfo]):
        self.by_path: dict[str, zipfile.ZipInfo] = {}
        self.by_stem: dict[str, list[str]] = {}
        self.by_name: dict[str, list[str]] = {}
        for info in infos:
            path = info.filename.replace("\\", "/")
            parts = [p for p in path.split("/") if p]
            hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
            if info.is_dir() or not parts or hidden:
                continue
            path = "/".join(parts)
            self.by_path[path] = info
            pure = PurePosixPath(path)
            self.by_stem.setdefault(str(pure.with_suffix("")), []).append(path)
            for key in {pure.name, pure.stem}:
                self.by_name.setdefault(key, []).append(path)

    def find(self, name: str, base: str) -> str | None:
        """The member path ``name`` (as written in the label file) names, or None."""
        name = name.replace("\\", "/").removeprefix("./")
        if not name or unsafe_reason(name):
            return None  # never looked up outside the folder
        tried = [f"{base}/{name}" if base else name, name]
        for path in tried:
            if path in self.by_path:
                return path
        for path in tried:
            if len(self.by_stem.get(path, [])) == 1:
                return self.by_stem[path][0]
        matches = self.by_name.get(PurePosixPath(name).name, [])
        return matches[0] if len(set(matches)) == 1 else None


def _split_of(row: dict[str, str], path: str, where: str) -> str:
    """The split a row names, else its image's top folder's, else train."""
    if row["split"]:
        if row["split"] not in SPLIT_VALUES:
            raise HpstudyError(
                f"The label file {where} names the split {row['split']!r} for {row['file']}; "
                "a split column holds train, test, val (valid, validation) or nothing."
            )
        return SPLIT_VALUES[row["split"]]
    top = path.split("/")[0]
    return SPLIT_VALUES.get(top, "train") if "/" in path else "train"


def _shown(names: list[str]) -> str:
    more = f", ... ({len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def coverage_text(where: str, named: int, skipped: list[dict[str, str]]) -> str:
    """The one paragraph on a label file's coverage, from the skipped entries
    :func:`label_members` made: images it names that the folder lacks, and images of the
    folder it does not name (empty when both are none)."""
    missing = [e["member"] for e in skipped if e["reason"].startswith("named in the label")]
    unnamed = [e["member"] for e in skipped if e["reason"] == "not named in the label file"]
    parts = []
    if missing:
        parts.append(f"{len(missing)} named but not in the folder ({_shown(missing)})")
    if unnamed:
        parts.append(f"{len(unnamed)} in the folder but not named ({_shown(unnamed)})")
    if not parts:
        return ""
    return f"The label file {where} names {named} images: {'; '.join(parts)}."


def label_members(zip_path: str | Path, infos: list[zipfile.ZipInfo]) -> tuple[Members, dict]:
    """Place the images of the zip by its stored label file: the members of each split with
    their classes (missing and unnamed images in ``skipped``), and the label facts for the
    manifest (file, sha256, counts). Raises when the zip holds no label file, or the file names
    no image or none that the folder holds."""
    zip_path = Path(zip_path)
    stored = [info for info in infos if info.filename.startswith(LABELS_PREFIX)]
    if len(stored) != 1:
        raise HpstudyError(
            f"The archive {zip_path} holds no label file (fetch stores it under "
            f"{LABELS_PREFIX}). Fetch the data again with `dataset.labels` set."
        )
    inner = stored[0].filename[len(LABELS_PREFIX) :]
    with zipfile.ZipFile(zip_path) as zf:
        data = zf.read(stored[0])
    where = f"{inner} (in {zip_path})"
    rows = read_label_rows(data, inner, where)
    if not rows:
        raise HpstudyError(
            f"The label file {where} names no images. Give it one row per image: its file and "
            "its class."
        )
    parent = str(PurePosixPath(inner).parent)
    index, base = MemberIndex(infos), "" if parent == "." else parent
    members, seen, missing, skipped = Members("label-file", {}, []), set(), [], []
    members.splits = {"train": SplitMembers(), "test": SplitMembers()}
    for row in rows:
        path = index.find(row["file"], base)
        if path is None or not row["label"]:
            missing.append(row["file"] or "(empty file name)")
            why = "no class given" if path and not row["label"] else "not in the folder"
            skipped.append({"member": row["file"], "reason": f"named in the label file, {why}"})
            continue
        if path in seen:
            continue  # named twice: the first row counts
        seen.add(path)
        split = _split_of(row, path, where)
        members.splits.setdefault(split, SplitMembers()).add(index.by_path[path], row["label"])
    if not seen:
        raise HpstudyError(
            f"None of the {len(rows)} images the label file {where} names is in the folder "
            f"(e.g. {_shown([r['file'] for r in rows][:3])}). Names are looked up beside the "
            "label file and from the folder's top, with or without their extension."
        )
    unnamed = sorted(
        path for path in index.by_path
        if path not in seen and PurePosixPath(path).suffix.lower() not in NOT_IMAGES
    )  # fmt: skip
    skipped += [{"member": path, "reason": "not named in the label file"} for path in unnamed]
    members.skipped = skipped
    placed = {name for split in members.splits.values() for name in split.class_names}
    if all(label.lstrip("-").isdigit() for label in placed):
        members.order = sorted(placed, key=int)  # numeric classes in numeric order (2 < 10)
    facts = {
        "file": inner,
        "sha256": hashlib.sha256(data).hexdigest(),
        "named": len(rows),
        "missing": len(missing),
        "unnamed": len(unnamed),
    }
    return members, facts
