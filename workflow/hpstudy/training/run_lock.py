"""One trainer per run: an exclusive ``flock`` held for the life of the training process.

When Snakemake itself is killed, the training job it started can keep running; after
``snakemake --unlock`` a rerun would start a second trainer on the same run, and the two would
overwrite each other's checkpoints and outputs. The lock file lives in a folder that is never
deleted (``<checkpoints>/.locks/``), and the kernel releases the lock when its process ends,
however it ends, so a stale lock can never block a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from hpstudy.core.errors import HpstudyError


@contextlib.contextmanager
def run_lock(lock_file: str | os.PathLike, run_id: str) -> Iterator[None]:
    """Hold the run's lock for the duration; refuse at once when another process holds it."""
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise HpstudyError(
                f"Run {run_id} is already being trained by {holder} (lock {path}), so this job "
                "stops rather than train it twice. This happens when Snakemake was killed while "
                "its training job kept running: `snakemake --unlock` frees Snakemake's own lock "
                "but not the trainer. Let that trainer finish (its outputs then count as done) or "
                "stop it (e.g. `kill <pid>`), then run snakemake again."
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
