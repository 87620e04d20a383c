"""Checks on zip archives before anything reads them: integrity (CRC) and member names.

The pipeline never extracts an archive, but member names still end up in logs, manifests and
(for anyone who unzips the same file by hand) on disk, so names that would escape the folder
they are extracted into ("zip-slip") are refused outright rather than silently skipped.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path

from hpstudy.core.errors import HpstudyError


def _corrupt_fix() -> str:
    return (
        "It is probably a partial or corrupt download or copy: delete it and rerun the "
        "workflow so that it is fetched again (or download the archive again by hand)."
    )


def open_zip(path: str | os.PathLike) -> zipfile.ZipFile:
    """Open ``path`` as a zip for reading; raises :class:`HpstudyError` (file + fix) if it is
    missing or not a readable zip (e.g. truncated, so the central directory is gone)."""
    path = Path(path)
    if not path.is_file():
        raise HpstudyError(
            f"The archive {path} does not exist. Check the path (for `dataset.source: archive` "
            "it is `dataset.archive` in the config) or fetch the data again."
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise HpstudyError(
            f"The archive {path} is not a readable zip file ({err}). {_corrupt_fix()}"
        ) from None


def verify_zip(path: str | os.PathLike) -> int:
    """Check that ``path`` is a complete zip whose every member passes its CRC test.

    Returns the number of members. Raises :class:`HpstudyError` naming the file and the fix
    when it is missing, truncated, not a zip, or has a member whose data does not match.
    """
    with open_zip(path) as zf:
        try:
            first_bad = zf.testzip()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
            raise HpstudyError(f"The archive {path} is corrupt ({err}). {_corrupt_fix()}") from None
        count = len(zf.infolist())
    if first_bad is not None:
        raise HpstudyError(
            f"The archive {path} is corrupt: member {first_bad!r} fails its CRC check. "
            f"{_corrupt_fix()}"
        )
    return count


def is_symlink(info: zipfile.ZipInfo) -> bool:
    """Whether a zip entry records a symbolic link (Unix mode bits in ``external_attr``)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def unsafe_reason(name: str) -> str | None:
    """Why a member name could escape its extraction folder, or ``None`` when it is safe."""
    # Treat a backslash as a separator too: Windows tools honour it on extraction.
    normalised = name.replace("\\", "/")
    if "\x00" in name:
        return "contains a NUL byte"
    if normalised.startswith("/"):
        return "is an absolute path"
    if len(normalised) >= 2 and normalised[1] == ":":
        return "starts with a drive letter"
    if ".." in normalised.split("/"):
        return "contains a '..' component"
    return None


def safe_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """All entries of ``zf``; raises :class:`HpstudyError` if any could escape (zip-slip).

    Refused: absolute paths, drive letters, ``..`` components (with ``/`` or ``\\`` as the
    separator) and symbolic-link entries.
    """
    infos = zf.infolist()
    for info in infos:
        reason = "is a symbolic link" if is_symlink(info) else unsafe_reason(info.filename)
        if reason is not None:
            source = zf.filename or "the archive"
            raise HpstudyError(
                f"The archive {source} has an unsafe member {info.filename!r}: it {reason}, "
                "which could write outside the data folder when extracted (zip-slip). "
                "Nothing was read from it. Use an unmodified copy of the dataset archive."
            )
    return infos
