"""Resume checkpoints: everything needed to continue a run exactly after its last full epoch.

A checkpoint holds the model, optimizer and grad-scaler states, every random number generator's
state (Python, NumPy, torch CPU and CUDA), the epoch and the metric rows so far. It is written
atomically (temp file + rename), so a job killed at any moment leaves either the previous
checkpoint or the new one, and it holds only tensors and plain containers so that it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from hpstudy.atomic import atomic_path

LOG = logging.getLogger("hpstudy.checkpoint")
CHECKPOINT_NAME = "last.pt"
FORMAT_VERSION = 1


def checkpoint_path(checkpoint_dir: str | os.PathLike) -> Path:
    """Where a run's resume checkpoint lives."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def capture_rng_states() -> dict:
    """All RNG states, as tensors and plain values (accepted by ``weights_only`` loading)."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    states = {
        "python": {
            "version": py_version,
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss": py_gauss,
        },
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }
    return states


def restore_rng_states(states: dict) -> None:
    """Put back the RNG states saved by :func:`capture_rng_states`."""
    py = states["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = states["numpy"]
    np.random.set_state(
        (
            nps["name"],
            nps["keys"].numpy().astype(np.uint32),
            nps["pos"],
            nps["has_gauss"],
            nps["gauss"],
        )
    )
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    path: str | os.PathLike,
    *,
    settings: dict,
    epoch: int,
    model,
    optimizer,
    scaler,
    metrics_rows: list[dict],
) -> None:
    """Write the resume checkpoint after ``epoch`` (1-based, complete) atomically."""
    state = {
        "format": FORMAT_VERSION,
        "settings_json": json.dumps(settings, sort_keys=True),
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": capture_rng_states(),
        "metrics_rows": [dict(row) for row in metrics_rows],
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())


def load_checkpoint(path: str | os.PathLike, settings: dict) -> dict | None:
    """The checkpoint at ``path`` if it belongs to these settings, else None (fresh start).

    A checkpoint written for other settings, or one that cannot be read, is ignored with a
    warning: the run then starts from epoch 1 and overwrites it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        LOG.warning("ignoring unreadable checkpoint %s (%s); starting afresh", path, err)
        return None
    if state.get("format") != FORMAT_VERSION:
        LOG.warning("ignoring checkpoint %s of another format; starting afresh", path)
        return None
    if state.get("settings_json") != json.dumps(settings, sort_keys=True):
        LOG.warning("ignoring checkpoint %s written for other settings; starting afresh", path)
        return None
    return state


def apply_checkpoint(state: dict, *, model, optimizer, scaler) -> None:
    """Load model, optimizer, scaler and RNG states from a checkpoint into the live objects."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    restore_rng_states(state["rng"])
