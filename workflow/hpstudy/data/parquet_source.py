"""Parquet shards as a dataset source (``dataset.source: parquet``), as Hugging Face
``datasets`` writes them: an image column of encoded bytes (a struct ``{bytes, path}``, or
plain binary) and a label column, one file or a folder of shards
(``train-00000-of-00002.parquet``, ``test-00000-of-00001.parquet``, ``train/0000.parquet``).

``hpstudy fetch`` packs the shards into the raw zip like a folder of images (stored, so each
shard is read in place through a memory map); preprocess reads them with pyarrow, shard by
shard and row group by row group, never the whole dataset at once. A row's split is its split
column's value, else its shard's (file name prefix or folder), else train. Class names come
from the dataset's ``features`` metadata (the ``huggingface`` key of the Parquet schema
metadata) when it names the label column's classes, else from the label values.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
import threading
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from hpstudy.core.atomic import atomic_path
from hpstudy.core.errors import HpstudyError
from hpstudy.data.fetch import _fixed_info, folder_digest, pack_folder
from hpstudy.data.archive_layouts import SPLIT_FOLDERS, Members, SplitMembers
from hpstudy.data.zip_checks import verify_zip

IMAGE_COLUMNS = ("image", "img", "picture", "pixel_values")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "fine_label")
SPLIT_COLUMN = "split"
SHARD_SPLIT = re.compile(r"^(train|test|val|valid|validation)(?:[-_.]|$)")


class ParquetRow(NamedTuple):
    """One image of a shard: its name in the manifest (``<shard>#<row>``) and where it lies."""

    filename: str
    shard: str
    group: int
    row: int  # within the row group


# --------------------------------------------------------------------------- fetch side


def _source_error(path: Path, problem: str) -> HpstudyError:
    return HpstudyError(
        f"The Parquet source {path} (from `dataset.path`) {problem}. Set `dataset.path` to a "
        ".parquet file or to a folder of shards (e.g. train-00000-of-00002.parquet, "
        "test-00000-of-00001.parquet) and rerun."
    )


def pack_parquet(path: str | os.PathLike, out_zip: str | os.PathLike) -> int:
    """Pack one ``.parquet`` file, or a folder holding shards, into the deterministic raw zip
    at ``out_zip``; returns the number of files."""
    path = Path(path).expanduser()
    if path.is_dir():
        count = pack_folder(path, out_zip, setting="dataset.path")
        with zipfile.ZipFile(out_zip) as zf:
            if not any(name.endswith(".parquet") for name in zf.namelist()):
                Path(out_zip).unlink()
                raise _source_error(path, "holds no .parquet file")
        return count
    if not path.is_file() or path.is_symlink():
        raise _source_error(path, "does not exist" if not path.exists() else "is a link")
    if path.suffix != ".parquet":
        raise _source_error(path, "is no .parquet file")
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(_fixed_info(path.name, path.stat().st_size), path.read_bytes())
        verify_zip(tmp)
    return 1


def source_digest(path: str | os.PathLike) -> str:
    """A cheap digest of a Parquet source's listing (a folder's, or one file's path, size
    and modification time), so a changed source is packed again."""
    path = Path(path).expanduser()
    if path.is_dir():
        return folder_digest(path, "dataset.path")
    info = path.stat()
    return hashlib.sha256(f"{path.name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()).hexdigest()


# --------------------------------------------------------------------------- reading


class ShardFiles:
    """The shards inside the raw zip, opened as pyarrow ParquetFiles: stored members through
    one memory map of the zip (no copy), compressed ones (a zip made by hand) read whole."""

    def __init__(self, zip_path: Path, infos: list[zipfile.ZipInfo]):
        import pyarrow as pa

        self.zip_path = zip_path
        self._infos = {info.filename: info for info in infos}
        self._buffers: dict[str, object] = {}
        with open(zip_path, "rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._whole = pa.py_buffer(self._map)
        self._lock = threading.Lock()

    def buffer(self, name: str):
        """The bytes of shard ``name`` as a pyarrow buffer."""
        import pyarrow as pa

        with self._lock:
            if name not in self._buffers:
                info = self._infos[name]
                if info.compress_type == zipfile.ZIP_STORED:
                    local = self._map[info.header_offset : info.header_offset + 30]
                    name_len, extra_len = struct.unpack("<HH", local[26:30])
                    start = info.header_offset + 30 + name_len + extra_len
                    self._buffers[name] = self._whole.slice(start, info.compress_size)
                else:
                    with zipfile.ZipFile(self.zip_path) as zf:
                        self._buffers[name] = pa.py_buffer(zf.read(info))
            return self._buffers[name]

    def open(self, name: str):
        """A ParquetFile reading shard ``name``; raises :class:`HpstudyError` when unreadable."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(pa.BufferReader(self.buffer(name)))
        except (OSError, ValueError, pa.ArrowException) as err:
            raise HpstudyError(
                f"The Parquet shard {name} in {self.zip_path} is not readable ({err}). Check "
                "the file (a partial download?) and fetch the data again."
            ) from None

    def close(self) -> None:
        """Release the buffers and the memory map."""
        self._buffers.clear()
        self._whole = None
        self._map.close()


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {name.lower(): name for name in names}
    return next((lowered[w] for w in wanted if w in lowered), None)


def _columns(schema, shard: str) -> tuple[str, str]:
    """The image and the label column of a shard's Arrow schema."""
    import pyarrow as pa

    def image_like(field) -> bool:
        kind = field.type
        if pa.types.is_struct(kind):
            return kind.get_field_index("bytes") >= 0
        return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)

    images = [f.name for f in schema if image_like(f)]
    image = _pick(images, IMAGE_COLUMNS) or (images[0] if len(images) == 1 else None)
    others = [f.name for f in schema if f.name not in images and f.name != SPLIT_COLUMN]
    label = _pick(others, LABEL_COLUMNS) or (others[0] if len(others) == 1 else None)
    if image is None or label is None:
        raise HpstudyError(
            f"The Parquet shard {shard} has no {'image' if image is None else 'label'} column "
            f"that can be told apart (columns: {schema.names}). Expected an image column of "
            "encoded bytes (a struct {bytes, path}, as Hugging Face datasets writes it, or "
            f"binary) named one of {', '.join(IMAGE_COLUMNS)}, and a label column named one "
            f"of {', '.join(LABEL_COLUMNS)}."
        )
    return image, label


def label_names(schema, label: str) -> list[str] | None:
    """The class names the ``huggingface`` schema metadata gives the label column, or None."""
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        features = json.loads(raw)["info"]["features"] if raw else {}
        names = features.get(label, {}).get("names")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return [str(name) for name in names] if isinstance(names, list) and names else None


def shard_split(name: str) -> str:
    """The split a shard's path says (``train-00000-of-00002.parquet``, ``test/0000.parquet``,
    ``data/validation-...``), else train."""
    for part in reversed(PurePosixPath(name).parts):
        found = SHARD_SPLIT.match(part.lower())
        if found:
            return SPLIT_FOLDERS[found.group(1)]
    return "train"


def _label_text(value, names: list[str] | None) -> str | None:
    """A row's class name (None: unlabelled, e.g. -1 or null)."""
    if value is None or (isinstance(value, int) and value < 0):
        return None
    if names is not None and isinstance(value, int):
        return names[value] if value < len(names) else None
    return str(value)


def parquet_members(zip_path: str | Path, infos: list[zipfile.ZipInfo]):
    """Place every row of the zip's Parquet shards in its split with its class; returns
    (:class:`Members` of :class:`ParquetRow` items, the :class:`ShardFiles`, the image column).
    Reads the label and split columns only, shard by shard."""
    zip_path = Path(zip_path)
    shards = sorted(
        info.filename
        for info in infos
        if info.filename.endswith(".parquet")
        and not any(p.startswith(".") for p in info.filename.split("/"))
    )
    if not shards:
        raise _source_error(zip_path, "holds no .parquet file")
    files = ShardFiles(zip_path, infos)
    members = Members("parquet", {"train": SplitMembers(), "test": SplitMembers()}, [])
    image_column, names, numeric = None, None, True
    for shard in shards:
        parquet = files.open(shard)
        schema = parquet.schema_arrow
        image, label = _columns(schema, shard)
        image_column = image_column or image
        names = names or label_names(schema, label)
        wanted = [label] + ([SPLIT_COLUMN] if SPLIT_COLUMN in schema.names else [])
        offset = 0
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=wanted)
            labels = table.column(label).to_pylist()
            splits = table.column(SPLIT_COLUMN).to_pylist() if len(wanted) > 1 else None
            for row, value in enumerate(labels):
                item = ParquetRow(f"{shard}#{offset + row}", shard, group, row)
                name = _label_text(value, names)
                if name is None:
                    members.skipped.append({"member": item.filename, "reason": "no label"})
                    continue
                numeric &= isinstance(value, int)
                split = SPLIT_FOLDERS.get(str(splits[row]).lower()) if splits else None
                members.splits.setdefault(split or shard_split(shard), SplitMembers()).add(
                    item, name
                )
            offset += len(labels)
    if names is not None:
        members.order = names
    elif numeric:
        placed = {n for split in members.splits.values() for n in split.class_names}
        members.order = sorted(placed, key=int)
    return members, files, image_column


class ParquetImageBytes:
    """``(archive, item) -> bytes``: the encoded image of a :class:`ParquetRow`, with the row
    group being read cached per thread (rows come in order, so each group is read once per
    thread that touches it)."""

    def __init__(self, files: ShardFiles, image_column: str):
        self.files = files
        self.image_column = image_column
        self._local = threading.local()

    def __call__(self, archive, item: ParquetRow) -> bytes:
        key = (item.shard, item.group)
        if getattr(self._local, "key", None) != key:
            table = self.files.open(item.shard).read_row_group(
                item.group, columns=[self.image_column]
            )
            column = table.column(self.image_column).combine_chunks()
            if hasattr(column.type, "get_field_index"):  # struct {bytes, path}
                column = column.field("bytes")
            self._local.key, self._local.column = key, column
        # no bytes (an image stored by path only) decodes as no image: skipped and listed
        return self._local.column[item.row].as_py() or b""
