"""Digests of a dataset's bytes, so that the same content never fetches, preprocesses or
trains again: not a touched image, a copied folder (``cp -r``, ``rsync``, ``git checkout``), an
archive copied anew or an identical re-download.

A file's sha256 is remembered by its path, size and modification time (ns) in one small JSON
file (:data:`CACHE_FILE`, in the checkout's Snakemake folder), so a folder of images is read
once and afterwards only listed; a touched file is hashed once more, then remembered again.
A folder's *content digest* is the sha256 over its packed files' relative paths and sha256s; a
zip's content digest is taken the same way over its entries, so a folder and the zip packed
from it (:func:`hpstudy.data.fetch.pack_folder`) have the same content digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

from hpstudy.core.atomic import atomic_write_json
from hpstudy.core.errors import HpstudyError

CACHE_FILE = ".snakemake/hpstudy/content-digests.json"
# A file modified this recently may change again within the same tick of its clock without
# a new size or time ("racily clean"): hashed, but not remembered.
RACY_NS = 2_000_000_000
CHUNK = 1 << 20


class DigestCache:
    """sha256 of files, remembered by (path, size, mtime_ns) in the JSON file ``path`` (None:
    remembered in memory only). :meth:`save` writes it atomically when something was added."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else None
        self.entries: dict[str, list] = {}
        self.changed = False
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8")) if self.path else {}
            self.entries = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.entries = {}  # missing or damaged: a cache is rebuilt, never trusted blindly

    def sha256(self, path: str | os.PathLike, kind: str = "file") -> str:
        """The sha256 of the file at ``path`` (``kind`` "zip": its :func:`zip_content_digest`),
        from the cache when its size and modification time are unchanged. Raises OSError when
        the file cannot be read."""
        key = f"{kind}:{os.path.abspath(path)}"
        info = os.stat(path)
        stamp = [info.st_size, info.st_mtime_ns]
        entry = self.entries.get(key)
        if isinstance(entry, list) and entry[:2] == stamp and len(entry) == 3:
            return entry[2]
        digest = _hash_file(path) if kind == "file" else _hash_zip_entries(path)
        if time.time_ns() - info.st_mtime_ns > RACY_NS:
            self.entries[key] = [*stamp, digest]
            self.changed = True
        return digest

    def save(self) -> None:
        """Write the cache if it gained entries, forgetting files that no longer exist. A cache
        that cannot be written (a read-only checkout) is simply not kept."""
        if not (self.path and self.changed):
            return
        kept = {k: v for k, v in self.entries.items() if os.path.exists(k.split(":", 1)[1])}
        try:
            atomic_write_json(self.path, kept)
        except OSError:
            pass
        self.changed = False


def _hash_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_zip_entries(path: str | os.PathLike) -> str:
    """The content digest of a zip's file entries (directories left out)."""
    with zipfile.ZipFile(path) as zf:
        entries = []
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            digest = hashlib.sha256()
            with zf.open(info) as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
            entries.append((info.filename, digest.hexdigest()))
    return content_digest(entries)


def content_digest(entries: Iterable[tuple[str, str]]) -> str:
    """The sha256 over (relative path, sha256 of its bytes) pairs, in sorted order."""
    digest = hashlib.sha256()
    for rel, sha in sorted(entries):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def zip_content_digest(path: str | os.PathLike, cache: DigestCache) -> str | None:
    """The content digest of the zip at ``path``, or None when it is missing or unreadable."""
    try:
        return cache.sha256(path, kind="zip")
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None


def unreadable(path: Path, setting: str, err: OSError) -> HpstudyError:
    """The error for a dataset file that cannot be read."""
    return HpstudyError(
        f"The dataset file {path} (from `{setting}`) cannot be read ({err.strerror or err}). "
        f"Make it readable (e.g. `chmod a+r {path}`) or remove it from the folder, and rerun."
    )
