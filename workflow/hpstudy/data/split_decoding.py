"""Decode the images of one split into the rows of a ``.npy`` file, with threads: one zip
handle and one row buffer per thread, positioned writes, and a fingerprint per decoded row
(:mod:`hpstudy.data.fingerprint`). What each member's bytes are and how an image is shaped are the
reader's settings (:mod:`hpstudy.data.sources`, :mod:`hpstudy.data.resize`)."""

from __future__ import annotations

import os
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hpstudy.data.resize import image_decoder
from hpstudy.core.errors import HpstudyError
from hpstudy.data.fingerprint import Fingerprint, fingerprint

CHUNK = 64  # images per thread-pool task: large enough to amortise scheduling
PROGRESS_SECONDS = 5.0  # keeps the rule's log short


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

    def __init__(
        self, zip_path: Path, size: int, fingerprints: bool = True, shape=("stretch", 3), read=None
    ):
        self.zip_path = zip_path
        self.size = size
        self.fingerprints = fingerprints
        # resize mode and channels; the member reader (a Parquet row's bytes, or the member's)
        self.channels = shape[1]
        self.decode = image_decoder(size, *shape)
        self.read = read or (lambda archive, info: archive.read(info))
        self._local = threading.local()
        self._handles: list[zipfile.ZipFile] = []
        self._lock = threading.Lock()

    def _thread_state(self) -> tuple[zipfile.ZipFile, np.ndarray]:
        if getattr(self._local, "zip", None) is None:
            self._local.zip = zipfile.ZipFile(self.zip_path)
            self._local.rows = np.zeros((CHUNK, self.size, self.size, self.channels), np.uint8)
            with self._lock:
                self._handles.append(self._local.zip)
        return self._local.zip, self._local.rows

    def read_chunk(
        self, infos, start: int, stop: int, results: list, sink: NpyRowFile, prints: list
    ) -> None:
        """Decode ``infos[start:stop]`` into rows ``start:stop`` of ``sink``; outcomes go to
        ``results`` (rows of skipped members hold leftovers and are dropped later) and the
        decoded rows' fingerprints to ``prints`` (when the reader takes them)."""
        archive, rows = self._thread_state()
        for i in range(start, stop):
            try:
                data = self.read(archive, infos[i])
            except (zipfile.BadZipFile, EOFError, OSError) as err:
                results[i] = HpstudyError(
                    f"The archive {self.zip_path} is corrupt: reading {infos[i].filename!r} "
                    f"failed ({err}). Delete it and rerun so that it is fetched again."
                )
                continue
            row = rows[i - start]
            take = self._taker(prints, i, row) if self.fingerprints else None
            results[i] = self.decode(data, row, take)
        sink.write_rows(start, rows[: stop - start])

    @staticmethod
    def _taker(prints: list, i: int, row: np.ndarray):
        def take(image) -> None:
            prints[i] = fingerprint(row, image)

        return take

    def close(self) -> None:
        """Close every per-thread handle."""
        for handle in self._handles:
            handle.close()
        self._handles.clear()


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, mininterval=PROGRESS_SECONDS)


def decode_split(reader: ZipImageReader, infos, sink: NpyRowFile, threads: int, desc: str):
    """Decode every member of a split into ``sink``; returns one outcome and one fingerprint
    (None when not taken or not decoded) per member.

    An outcome is ``True`` (resized), ``False`` (already the right size) or a string (why it
    was skipped); a corrupt archive raises :class:`HpstudyError`.
    """
    results: list = [None] * len(infos)
    prints: list[Fingerprint | None] = [None] * len(infos)
    bounds = [(i, min(i + CHUNK, len(infos))) for i in range(0, len(infos), CHUNK)]

    def read(start: int, stop: int) -> None:
        reader.read_chunk(infos, start, stop, results, sink, prints)

    with _progress(len(infos), desc) as bar:
        if threads <= 1:
            for start, stop in bounds:
                read(start, stop)
                bar.update(stop - start)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                jobs = [pool.submit(read, start, stop) for start, stop in bounds]
                for job, (start, stop) in zip(jobs, bounds, strict=True):
                    job.result()
                    bar.update(stop - start)
    for outcome in results:
        if isinstance(outcome, HpstudyError):
            raise outcome
    return results, prints
