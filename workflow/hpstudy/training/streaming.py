"""Streaming a split that does not fit in memory (``train.in_memory``): batches read from the
array files as training asks for them, in the order the in-memory path would gather them.

A streamed split is a :class:`~hpstudy.training.batches.DeviceSplit` whose ``images`` is a
:class:`StreamedImages`: indexing it with a batch's indices (training) or a slice (evaluation)
returns the same uint8 batch on the device that indexing the in-memory tensor returns, so the
loop and the batches module (both digested into every run's identity) run unchanged and the
numbers are the same bit for bit. Labels are small and stay in memory.

Before each epoch :meth:`StreamedImages.plan_epoch` draws the epoch's permutation exactly as
:func:`hpstudy.training.batches.train_batches` does (``randperm`` from
:func:`~hpstudy.training.batches.epoch_generator`), and a background thread reads the batches
ahead: ``pread`` of each row (sorted by offset, runs of adjacent rows in one call), every row
checked against its digest (:mod:`hpstudy.core.chunk_digests`), and on a GPU copied from pinned
memory on a side stream, so reads and copies overlap compute. Evaluation reads slices in order
the same way. A request the thread did not foresee is read directly (still verified): the
prefetch is only a guess. ``pread`` rather than a memory map keeps the job's resident memory
flat: pages of a mapped file would stay in its RSS, while read pages are reclaimable cache."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from pathlib import Path

import numpy as np
import torch

from hpstudy.core.chunk_digests import ChunkDigests, chunk_digests, parse_header, row_digest
from hpstudy.core.errors import HpstudyError
from hpstudy.training.batches import DeviceSplit, epoch_generator

PREFETCH = 4  # batches read ahead


def _offer(sink: queue.Queue, stop: threading.Event, item) -> bool:
    """Put ``item`` into ``sink`` unless the consumer stops first; whether it was put."""
    while not stop.is_set():
        try:
            sink.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


class ArraySource:
    """One ``.npy`` file of images, opened for reading rows; its header checked on opening."""

    def __init__(self, path: Path, chunks: ChunkDigests) -> None:
        self.path, self.chunks = Path(path), chunks
        self.fd = os.open(self.path, os.O_RDONLY)
        head = os.pread(self.fd, chunks.header_bytes, 0)
        if hashlib.sha256(head).hexdigest() != chunks.header_sha256 or parse_header(
            head, self.path
        ) != (chunks.header_bytes, chunks.shape, chunks.dtype):
            raise self.refuse("its header differs from the one its row digests were made from")
        self.rows, self.row_bytes = chunks.shape[0], chunks.row_bytes

    def refuse(self, reason: str) -> HpstudyError:
        """The paragraph for an array that changed under the job."""
        return HpstudyError(
            f"The processed array {self.path} does not match its manifest: {reason}. It was "
            "changed, truncated or replaced after preprocessing, so training refuses to use it. "
            "Rebuild the arrays with `snakemake --forcerun preprocess --until preprocess`, then "
            "run snakemake again."
        )

    def read(self, local: np.ndarray, out: np.ndarray, positions: np.ndarray) -> None:
        """Rows ``local`` (ascending) into ``out[positions]``, each verified."""
        size, start = self.row_bytes, 0
        while start < len(local):
            end = start + 1  # a run of rows adjacent both in the file and in ``out``
            while (
                end < len(local)
                and local[end] == local[end - 1] + 1
                and positions[end] == positions[end - 1] + 1
            ):
                end += 1
            view = memoryview(out[positions[start] : positions[start] + end - start]).cast("B")
            offset = self.chunks.header_bytes + int(local[start]) * size
            if os.preadv(self.fd, [view], offset) != len(view):
                raise self.refuse("it is shorter than its header says")
            for k in range(end - start):
                expected = self.chunks.digests[local[start + k]].tobytes()
                if row_digest(view[k * size : (k + 1) * size]) != expected:
                    raise self.refuse(f"row {int(local[start + k])} differs from its digest")
            start = end

    def close(self) -> None:
        """Close the file."""
        os.close(self.fd)


class StreamedImages:
    """The images of one split (or of several joined, train then val) read on demand."""

    def __init__(self, sources: list[ArraySource], device: torch.device) -> None:
        self.sources, self.device = sources, device
        shapes = {s.chunks.shape[1:] for s in sources}
        if len(shapes) != 1:
            raise HpstudyError(f"the joined arrays have different image shapes: {sorted(shapes)}")
        self.row_shape = shapes.pop()
        self.starts = np.cumsum([0] + [s.rows for s in sources])
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.planned: list[np.ndarray] = []  # the batches the prefetcher reads, in order
        self.queue: queue.Queue | None = None
        self.stop = threading.Event()
        self.checked = False  # the current pass's first batch was compared with the plan
        self.widen_to: int | None = None  # gray fed as three equal channels (imagenet norm)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, H, W, C), like the in-memory tensor's."""
        shape = (len(self), *self.row_shape)
        return shape if self.widen_to is None else (*shape[:3], self.widen_to)

    # --- reading ---------------------------------------------------------------------------
    def read(self, index: np.ndarray) -> torch.Tensor:
        """The rows ``index`` (in that order) as a uint8 tensor on the device."""
        pinned = self.device.type == "cuda"
        host = torch.empty((len(index), *self.row_shape), dtype=torch.uint8, pin_memory=pinned)
        out = host.numpy()
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        which = np.searchsorted(self.starts, ordered, side="right") - 1
        for number, source in enumerate(self.sources):
            mine = which == number
            if mine.any():
                source.read(ordered[mine] - self.starts[number], out, order[mine])
        if self.stream is None:
            return host
        with torch.cuda.stream(self.stream):
            batch = host.to(self.device, non_blocking=True)
        return batch

    def _prefetch(self, batches: list[np.ndarray], sink: queue.Queue, stop: threading.Event):
        try:
            for index in batches:
                item = (index, self.read(index))
                if self.stream is not None:
                    event = torch.cuda.Event()
                    event.record(self.stream)
                    item = (*item, event)
                if not _offer(sink, stop, item):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            _offer(sink, stop, err)

    def _start(self, batches: list[np.ndarray]) -> None:
        self.halt()
        self.stop = threading.Event()
        self.queue = queue.Queue(maxsize=PREFETCH)
        self.planned = list(batches)
        self.checked = False
        threading.Thread(
            target=self._prefetch, args=(batches, self.queue, self.stop), daemon=True
        ).start()

    def halt(self) -> None:
        """Stop the prefetching thread (it drops what it holds)."""
        self.stop.set()
        self.queue, self.planned = None, []

    def plan_epoch(self, seed: int, epoch: int, batch_size: int) -> None:
        """Read the training batches of ``epoch`` ahead, in :func:`hpstudy.training.batches.
        train_batches`' order: the same generator, the same ``randperm``."""
        order = torch.randperm(len(self), generator=epoch_generator(seed, epoch)).numpy()
        self._start([order[s : s + batch_size] for s in range(0, len(self), batch_size)])

    def _foreseen(self, key) -> bool:
        """Whether ``key`` asks for the next prefetched batch. Indices on the CPU are compared
        every time; on a GPU only the first batch of a pass (reading them back would wait for
        the device each batch): the rest follow from the same permutation."""
        if self.queue is None or not self.planned:
            return False
        expected = self.planned[0]
        if isinstance(key, np.ndarray):
            return np.array_equal(expected, key)
        if key.device.type != "cpu" and self.checked:
            return key.shape == expected.shape
        self.checked = True
        return np.array_equal(expected, key.cpu().numpy())

    def _take(self, key) -> torch.Tensor:
        """The batch ``key`` asks for (widened to ``widen_to`` channels when set)."""
        batch = self._next(key)
        return batch if self.widen_to is None else batch.expand(*batch.shape[:3], self.widen_to)

    def _next(self, key) -> torch.Tensor:
        """The next prefetched batch when it is the one asked for, else a direct read."""
        if not self._foreseen(key):
            self.halt()
            index = key if isinstance(key, np.ndarray) else key.cpu().numpy()
            return self.read(index.astype(np.int64, copy=False))
        self.planned.pop(0)
        item = self.queue.get()
        if isinstance(item, BaseException):
            self.halt()
            raise item
        if len(item) == 3:  # on a GPU: the compute stream waits for the copy (the host does not)
            current = torch.cuda.current_stream(self.device)
            current.wait_event(item[2])
            item[1].record_stream(current)
        if not self.planned:
            self.halt()
        return item[1]

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("streamed images take slices of step 1 only")
            if start == 0:  # an evaluation pass starts: read its batches ahead
                size = max(stop, 1)
                self._start(
                    [np.arange(s, min(s + size, len(self))) for s in range(0, len(self), size)]
                )
            return self._take(np.arange(start, stop))
        if not isinstance(key, torch.Tensor):
            key = np.asarray(key, dtype=np.int64)
        return self._take(key)

    def close(self) -> None:
        """Stop prefetching and close the files."""
        self.halt()
        for source in self.sources:
            source.close()


def streamed_split(
    data_dir: str | Path,
    entries: list[dict],
    manifest: dict,
    device: torch.device,
    labels: torch.Tensor,
) -> DeviceSplit:
    """A split (several joined, in order, for train+val) streamed from its image arrays, with
    its labels (already loaded and verified) on ``device``."""
    sources = []
    for entry in entries:
        name = entry["x"]
        chunks = chunk_digests(
            Path(data_dir) / name, manifest["sha256"][name], manifest.get("bytes", {}).get(name)
        )
        sources.append(ArraySource(Path(data_dir) / name, chunks))
    images = StreamedImages(sources, device)
    if len(images) != len(labels):
        raise HpstudyError(f"{len(images)} images but {len(labels)} labels in {data_dir}")
    return DeviceSplit(images, labels)
