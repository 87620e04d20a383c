"""Resume checkpoints: everything needed to continue a run exactly after its last full epoch.

A checkpoint holds the model, optimizer and grad-scaler states, torch's random number
generators (dropout draws from them; batches come from a generator keyed by seed and epoch),
the epoch and the metric rows so far. It holds only tensors and plain containers, so it loads
with ``torch.load(weights_only=True)``.

Each file starts with the sha256 of what follows, checked when it is loaded. A save renames the
previous checkpoint to ``prev.pt`` before the new one takes the name ``last.pt`` (both renames
atomic), so a checkpoint that fails its digest -- a flipped byte on disk, a kill between the two
renames -- falls back to the one before it, and only when neither is sound does the run start
afresh.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import torch

from hpstudy.core.atomic import atomic_path, clean_stale_temps, prune_empty_dirs

LOG = logging.getLogger("hpstudy.training.checkpoint")
LAST, PREVIOUS = "last.pt", "prev.pt"
MAGIC = b"hpstudy-checkpoint 2\n"
FORMAT_VERSION = 2


class CorruptCheckpoint(Exception):
    """A checkpoint file whose digest or contents do not check out."""


def encode(state: dict) -> bytes:
    """A checkpoint file's bytes: magic line, digest line, torch payload."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    return MAGIC + f"sha256 {hashlib.sha256(payload).hexdigest()}\n".encode() + payload


def decode(data: bytes) -> dict:
    """The state in a checkpoint file's bytes; raises CorruptCheckpoint when it does not verify."""
    if not data.startswith(MAGIC):
        raise CorruptCheckpoint("not an hpstudy checkpoint of this format")
    digest_line, _, payload = data[len(MAGIC) :].partition(b"\n")
    expected = digest_line.removeprefix(b"sha256 ").decode("ascii", "replace")
    if hashlib.sha256(payload).hexdigest() != expected:
        raise CorruptCheckpoint("its sha256 does not match its contents")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # a payload torch cannot read despite its digest
        raise CorruptCheckpoint(f"torch cannot read it ({type(err).__name__})") from err


def save_checkpoint(checkpoint_dir: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` as ``last.pt`` in ``checkpoint_dir``, keeping the previous one."""
    folder = Path(checkpoint_dir)
    last = folder / LAST
    data = encode({"format": FORMAT_VERSION, **state})
    with atomic_path(last) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if last.exists():
            os.replace(last, folder / PREVIOUS)
    return last


def load_checkpoint(
    checkpoint_dir: str | os.PathLike, trajectory: str, max_epoch: int
) -> dict | None:
    """The newest sound checkpoint of this trajectory at or before ``max_epoch``, else None.

    ``trajectory`` is the run's identity without its length (canonical JSON). A corrupt
    ``last.pt`` falls back to ``prev.pt`` with a warning; one of another trajectory (other
    settings or training code), or one beyond ``max_epoch``, is not used.
    """
    folder = Path(checkpoint_dir)
    corrupt = 0
    for name in (LAST, PREVIOUS):
        path = folder / name
        if not path.is_file():
            continue
        try:
            state = decode(path.read_bytes())
        except (CorruptCheckpoint, OSError) as err:
            LOG.warning("checkpoint %s is corrupt (%s); trying an earlier one", path, err)
            corrupt += 1
            continue
        if state.get("trajectory") != trajectory:
            LOG.warning("checkpoint %s belongs to other settings or code; not resumed", path)
            return None
        if state["epoch"] > max_epoch:
            LOG.info("checkpoint %s is past epoch %d; not resumed", path, max_epoch)
            continue
        return state
    if corrupt:  # say where the "earlier one" went: nowhere
        LOG.warning("no sound checkpoint left in %s; starting afresh from epoch 1", folder)
    return None


def rng_state() -> dict:
    """torch's generator states (CPU, and every GPU once CUDA is in use)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def restore_rng_state(state: dict) -> None:
    """Put back what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def remove_checkpoints(checkpoint_dir: str | os.PathLike, root: str | os.PathLike) -> None:
    """Delete a finished trajectory's checkpoints and the folders they leave empty (up to
    ``root``, the checkpoints folder)."""
    folder = Path(checkpoint_dir)
    for name in (LAST, PREVIOUS):
        (folder / name).unlink(missing_ok=True)
    clean_stale_temps(folder)
    prune_empty_dirs(folder, root)
