"""Digests of an array file's rows, kept beside it, so that a job streaming a split verifies
every row it reads as it reads it: the file is read once, never once to check and again to use.

``<split>_x.npy`` gets ``<split>_x.chunks``: a first line naming the format, a JSON line (the
array's sha256 and size, which must equal the manifest's; the .npy header's length and sha256;
the row count and row size) and then one 16-byte digest (sha256, truncated) per row. The
manifest (every train job's input) is not touched. The file is written by preprocess for new
data, or lazily, atomically, by the first job that streams older data: one sequential pass
computes the whole-file sha256 (checked against the manifest) and every row's digest together.
Concurrent first jobs (a shared file system under SLURM) each write the same content through
their own temporary file and rename it into place; a read-only data folder keeps the digests in
the job's memory instead. It is a cache: deleting it costs one pass over the array.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpstudy.core.atomic import atomic_write_bytes
from hpstudy.core.errors import HpstudyError

LOG = logging.getLogger("hpstudy.chunk_digests")
MAGIC = b"hpstudy-chunks 1\n"
DIGEST_BYTES = 16
BLOCK_BYTES = 16 << 20  # the sequential pass reads this much at a time


@dataclass(frozen=True)
class ChunkDigests:
    """What a ``.chunks`` file holds: where the rows are and what each must hash to."""

    array_sha256: str
    array_bytes: int
    header_bytes: int  # the .npy header: the rows start here
    header_sha256: str
    shape: tuple[int, ...]
    dtype: str
    digests: np.ndarray  # (rows, DIGEST_BYTES) uint8

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (one image)."""
        return int(np.prod(self.shape[1:], dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def facts(self) -> dict:
        """The JSON line of the file."""
        return {
            "array_sha256": self.array_sha256, "array_bytes": self.array_bytes,
            "header_bytes": self.header_bytes, "header_sha256": self.header_sha256,
            "shape": list(self.shape), "dtype": self.dtype, "digest_bytes": DIGEST_BYTES,
        }  # fmt: skip


def chunks_path(array_path: str | os.PathLike) -> Path:
    """``train_x.npy`` -> ``train_x.chunks`` beside it."""
    path = Path(array_path)
    return path.with_name(path.name.removesuffix(".npy") + ".chunks")


def row_digest(row) -> bytes:
    """One row's digest (sha256 of its bytes, truncated)."""
    return hashlib.sha256(row).digest()[:DIGEST_BYTES]


def read_npy_header(stream) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) from a ``.npy`` stream at its start, which it leaves at
    the data; ValueError when it is no ``.npy`` file."""
    version = np.lib.format.read_magic(stream)
    reader = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    return reader(stream)


def parse_header(head: bytes, path: Path) -> tuple[int, tuple[int, ...], str]:
    """(header length, shape, dtype) of a C-order, object-free ``.npy`` file's first bytes."""
    stream = io.BytesIO(head)
    try:
        shape, fortran, dtype = read_npy_header(stream)
    except ValueError as err:
        raise HpstudyError(f"{path} is not a NumPy .npy file ({err}).") from None
    if fortran or dtype.hasobject:
        raise HpstudyError(f"{path} holds Fortran-ordered or Python-object data; rebuild it.")
    return stream.tell(), tuple(int(s) for s in shape), dtype.str


def compute(path: Path) -> ChunkDigests:
    """One sequential pass over ``path``: its sha256 and every row's digest."""
    whole = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        head = fh.read(1 << 16)
        header_bytes, shape, dtype = parse_header(head, path)
        row = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
        rows = shape[0] if shape else 0
        digests = np.empty((rows, DIGEST_BYTES), np.uint8)
        fh.seek(0)
        header = fh.read(header_bytes)
        whole.update(header)
        per_block = max(1, BLOCK_BYTES // max(row, 1))
        buffer = bytearray(per_block * row)
        done = 0
        while done < rows:
            count = min(per_block, rows - done)
            view = memoryview(buffer)[: count * row]
            got = fh.readinto(view)
            if got != len(view):
                raise HpstudyError(f"{path} is shorter than its header says; rebuild it.")
            whole.update(view)
            for i in range(count):
                digests[done + i] = np.frombuffer(
                    row_digest(view[i * row : (i + 1) * row]), np.uint8
                )
            done += count
        whole.update(fh.read())  # trailing bytes (none in a sound file) still count
        size = fh.tell()
    return ChunkDigests(
        whole.hexdigest(),
        size,
        header_bytes,
        hashlib.sha256(header).hexdigest(),
        shape,
        dtype,
        digests,
    )


def encode(chunks: ChunkDigests) -> bytes:
    """The ``.chunks`` file's bytes."""
    line = json.dumps(chunks.facts(), sort_keys=True).encode() + b"\n"
    return MAGIC + line + chunks.digests.tobytes()


def decode(data: bytes) -> ChunkDigests | None:
    """A ``.chunks`` file's content, or None when it is not one (or is cut short)."""
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    try:
        facts = json.loads(data[len(MAGIC) : end])
        shape = tuple(int(s) for s in facts["shape"])
        body = np.frombuffer(data, np.uint8, offset=end + 1)
        if facts["digest_bytes"] != DIGEST_BYTES or len(body) != shape[0] * DIGEST_BYTES:
            return None
        return ChunkDigests(
            facts["array_sha256"], int(facts["array_bytes"]), int(facts["header_bytes"]),
            facts["header_sha256"], shape, facts["dtype"], body.reshape(shape[0], DIGEST_BYTES),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def write_chunk_digests(array_path: str | os.PathLike) -> ChunkDigests:
    """Compute and write ``array_path``'s ``.chunks`` file (preprocess calls it for new data);
    returns what it holds."""
    chunks = compute(Path(array_path))
    atomic_write_bytes(chunks_path(array_path), encode(chunks), durable=False)
    return chunks


def chunk_digests(array_path: str | os.PathLike, sha256: str, size: int | None) -> ChunkDigests:
    """The row digests of the array the manifest describes (``sha256``, ``size``): read from
    its ``.chunks`` file when that file was made from this very array, else computed in one
    pass (checked against the manifest) and written for the next job."""
    path = Path(array_path)
    try:
        known = decode(chunks_path(path).read_bytes())
    except OSError:
        known = None
    if known is not None and known.array_sha256 == sha256 and size in (None, known.array_bytes):
        return known
    LOG.info("computing the row digests of %s (once: kept in %s)", path, chunks_path(path).name)
    chunks = compute(path)
    if chunks.array_sha256 != sha256 or size not in (None, chunks.array_bytes):
        raise HpstudyError(
            f"The processed array {path} does not match its manifest: its sha256 differs from "
            "the one the manifest records. It was changed, truncated or replaced after "
            "preprocessing, so training refuses to use it. Rebuild the arrays with `snakemake "
            "--forcerun preprocess --until preprocess`, then run snakemake again."
        )
    try:
        atomic_write_bytes(chunks_path(path), encode(chunks), durable=False)
    except OSError as err:  # a read-only data folder: keep them for this job only
        LOG.warning("cannot write %s (%s); the digests serve this job only", chunks_path(path), err)
    return chunks
