"""Synthetic run folders in the training step's contract format, with chosen curves.

``write_run`` writes ``params.json``, ``metrics.csv`` and ``summary.json`` exactly as the
training step does, so the results stage can be tested without training anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hpstudy.run_files import METRIC_COLUMNS

DEFAULT_SETTINGS = {
    "model": "custom",
    "pretrained": False,
    "weights": None,
    "kernel_width": [5, 5, 7],
    "optimizer": "adam",
    "lr": 1e-4,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "batch_size": 256,
    "eval_batch_size": 500,
    "epochs": 10,
    "normalization": "none",
    "flip": False,
    "precision": "fp32",
    "deterministic": False,
    "device": "auto",
    "keep_checkpoint": False,
    "dataset": "intel-image-classification-150",
    "image_size": 150,
    "num_classes": 6,
}


def label(value) -> str:
    """A run-id label for a value (the sweep's own formatter is not needed here)."""
    if isinstance(value, list | tuple):
        return "-".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.0e}" if value and abs(value) < 1e-3 else f"{value:g}"
    return str(value)


def approach(start: float, end: float, epochs: int = 10) -> list[float]:
    """A curve moving geometrically from ``start`` towards ``end`` (still moving at the end)."""
    t = np.arange(epochs)
    return [float(v) for v in end + (start - end) * np.exp(-t / (epochs / 3))]


def write_run(
    runs_dir: str | Path,
    *,
    experiment: str = "learning_rate",
    param: str = "lr",
    value=1e-4,
    seed: int = 0,
    train_loss: Sequence[float] | None = None,
    test_loss: Sequence[float] | None = None,
    test_acc: Sequence[float] | None = None,
    epoch_time_s: float | Sequence[float] = 2.0,
    peak_memory_mb: float | Sequence[float] = 100.0,
    param_count: int = 1000,
    diverged: bool = False,
    run_id: str | None = None,
    **settings,
) -> Path:
    """Write one run folder below ``runs_dir`` and return it.

    ``value`` is the swept value (set as ``settings[param]`` too); curves default to a healthy
    run of ``settings['epochs']`` epochs. A diverged run stops with a non-finite train loss."""
    params = dict(DEFAULT_SETTINGS)
    params.update(settings)
    params[param] = value
    run_id = run_id or f"{experiment}/{param}-{label(value)}/seed-{seed}"
    params.update(run_id=run_id, experiment=experiment, param=param, value=label(value), seed=seed)
    n = len(test_acc) if test_acc is not None else params["epochs"]
    train_loss = list(train_loss) if train_loss is not None else approach(1.6, 0.3, n)
    test_loss = list(test_loss) if test_loss is not None else approach(1.7, 0.5, n)
    test_acc = list(test_acc) if test_acc is not None else approach(0.3, 0.85, n)
    if diverged:
        train_loss[-1] = math.nan
    times = _per_epoch(epoch_time_s, n)
    memory = _per_epoch(peak_memory_mb, n)
    rows = [
        [e + 1, train_loss[e], min(1.0, test_acc[e] + 0.05), test_loss[e], test_acc[e],
         params["lr"], times[e], 0.8 * times[e], 0.2 * times[e], 1000 / times[e], memory[e]]
        for e in range(n)
    ]  # fmt: skip
    run_dir = Path(runs_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.json").write_text(json.dumps(params, indent=2))
    lines = [",".join(METRIC_COLUMNS)] + [",".join(str(v) for v in row) for row in rows]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    best = int(np.nanargmax(test_acc))
    summary = {
        "run_id": run_id,
        "experiment": experiment,
        "final_test_acc": test_acc[-1],
        "best_test_acc": test_acc[best],
        "best_epoch": best + 1,
        "final_train_loss": train_loss[-1],
        "final_test_loss": test_loss[-1],
        "epochs_completed": n,
        "diverged": diverged,
        "diverged_epoch": n if diverged else None,
        "total_time_s": float(sum(times)),
        "mean_epoch_time_s": float(np.mean(times)),
        "param_count": param_count,
        "device": "cpu",
        "device_name": "test cpu",
        "torch_version": "0",
        "git_revision": "abc",
        "peak_memory_mb": float(max(memory)),
        "settings": params,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=True))
    return run_dir


def _per_epoch(value: float | Sequence[float], n: int) -> list[float]:
    return [float(v) for v in value] if isinstance(value, Sequence) else [float(value)] * n


def write_study(
    runs_dir: str | Path,
    experiment: str,
    param: str,
    values: Sequence,
    seeds: Sequence[int] = (0,),
    curves=None,
    **settings,
) -> list[Path]:
    """Write one run per value x seed; ``curves(value, seed)`` returns extra ``write_run``
    keyword arguments (curves, times, sizes) for that run."""
    dirs = []
    for value in values:
        for seed in seeds:
            extra = dict(settings)
            extra.update(curves(value, seed) if curves else {})
            dirs.append(
                write_run(
                    runs_dir, experiment=experiment, param=param, value=value, seed=seed, **extra
                )
            )
    return dirs
