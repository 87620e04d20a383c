"""Atomic file writes and the package's one temporary-file naming.

Everything is written to a temporary sibling and renamed into place only once complete
(``os.replace`` is atomic on POSIX within one file system), so a reader or a rerun never sees
a half-written file. Temporary names are ``.<name>.tmp-<pid>@<host>``: hidden, matched by
``.dvcignore`` (``*.tmp-*``), and telling which process on which machine owns them, so the step
that owns a folder can remove what a killed process left behind (:func:`clean_stale_temps`)
without touching the files of a process that is still writing (two configs may share data).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from hpstudy.core.errors import disk_full, is_disk_full

LOG = logging.getLogger("hpstudy.core.atomic")
TEMP_MARK = ".tmp-"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)@(?P<host>.+)$")


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


def temp_name(path: str | os.PathLike) -> Path:
    """The temporary sibling of ``path`` this process writes it through."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}@{_host()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def stale_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Temporary files in ``folder`` (of the file ``name`` only, if given) left by processes
    of this machine that have ended."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, found = _host(), []
    for entry in folder.iterdir():
        match = _TEMP_NAME.match(entry.name)
        if not match or (name is not None and match["name"] != name):
            continue
        if match["host"] == host and not _pid_alive(int(match["pid"])):
            found.append(entry)
    return found


def clean_stale_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove what :func:`stale_temps` finds; returns what was removed."""
    removed = []
    for path in stale_temps(folder, name):
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
            LOG.info("removed %s, left by a process that ended", path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` on success, delete it on error.

    Whatever an ended process left while writing the same file is removed first: the writer
    of a file owns its temporary copies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent, path.name)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full(path) from err
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically; ``durable``: fsynced before the rename, so a
    crash of the machine cannot leave an empty file under the final name either (files
    rebuilt whenever needed skip that cost)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def json_text(obj: object) -> str:
    """The package's JSON layout: indented, keys in insertion order, newline at the end."""
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json_text(obj))


def write_if_changed(path: str | os.PathLike, text: str, durable: bool = True) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds exactly it (its
    modification time then stays, so nothing downstream looks outdated); True if written."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text, durable)
    return True


def prune_empty_dirs(folder: str | os.PathLike, stop: str | os.PathLike) -> None:
    """Remove ``folder`` and then its parents while they are empty, up to (not including)
    ``stop``."""
    folder, stop = Path(folder).absolute(), Path(stop).absolute()
    while folder != stop and stop in folder.parents:
        if folder.exists():
            try:
                folder.rmdir()
            except OSError:  # not empty
                return
        folder = folder.parent
