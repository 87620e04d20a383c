"""The one exception type users see, and the one sentence for a full disk."""

from __future__ import annotations

import errno
import os

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class HpstudyError(Exception):
    """An error caused by the user's input (config, credentials, archive, images, ...).

    The message is one paragraph that names the input and says how to fix it; the CLI prints
    it without a traceback and exits nonzero. It must never contain a secret.
    """


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is a write that failed for lack of space (or quota)."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


def disk_full(path: str | os.PathLike | None) -> HpstudyError:
    """The paragraph for a write that ran out of space."""
    where = f"writing {path}" if path else "writing a file"
    return HpstudyError(
        f"The disk is full: {where} failed (no space left on device or quota exceeded). Nothing "
        "half-written was kept: every output goes to a temporary name first and takes its real "
        "name only when complete. Free space on that file system (or point `paths:` in the "
        "config at a larger one), then rerun: finished work is kept and an interrupted run "
        "resumes from its last checkpoint."
    )
