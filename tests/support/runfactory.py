"""Synthetic run folders in the training step's format, with chosen curves.

``write_run`` writes ``params.json``, ``metrics.csv``, ``summary.json`` and ``model.pt`` exactly
where and as the training step does (the run's identity, name and folder come from the real
``hpstudy.training.identity`` and ``hpstudy.core.paths``), so the results stage can be
tested without training anything. ``Sweep`` groups runs into studies and aggregates them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hpstudy.core import paths
from hpstudy.core.run_record import CLASS_SCORE_COLUMNS, METRIC_COLUMNS
from hpstudy.report import aggregate
from hpstudy.report.tables import read_table
from hpstudy.training import identity

POST_DATA = {
    "name": "intel-image-classification", "image_size": 150, "num_classes": 6,
    "train_count": 14034, "test_count": 3000,
}  # fmt: skip


def approach(start: float, end: float, epochs: int = 10) -> list[float]:
    """A curve moving geometrically from ``start`` towards ``end`` (still moving at the end)."""
    t = np.arange(epochs)
    return [float(v) for v in end + (start - end) * np.exp(-t / (epochs / 3))]


def _per_epoch(value: float | Sequence[float], n: int) -> list[float]:
    return [float(v) for v in value] if isinstance(value, Sequence) else [float(value)] * n


def write_run(
    runs_dir: str | Path,
    *,
    seed: int = 0,
    data: dict | None = None,
    train_loss: Sequence[float] | None = None,
    test_loss: Sequence[float] | None = None,
    test_acc: Sequence[float] | None = None,
    val_acc: Sequence[float] | None = None,
    epoch_time_s: float | Sequence[float] = 2.0,
    peak_memory_mb: float | Sequence[float] = 100.0,
    param_count: int = 1000,
    conv_param_count: int | None = None,
    diverged: bool = False,
    correct: Sequence[bool] | None = None,
    val_balanced_acc: Sequence[float] | None = None,
    labels: Sequence[int] | None = None,
    pred: Sequence[int] | None = None,
    **settings,
) -> str:
    """Write one finished run below ``runs_dir``; returns its run id.

    ``settings`` are training settings (the rest take the schema's defaults); curves default
    to a healthy run of ``settings['epochs']`` epochs; a diverged run ends in a non-finite
    train loss. The final predictions get right the test images ``correct`` says (default:
    the first ``final accuracy x test_count`` images); ``labels`` and ``pred`` give the saved
    test labels (default: the classes in turn) and predictions outright. ``val_acc`` gives the
    run a validation curve (its loss mirrors the test loss); without it the validation
    columns are empty. ``val_balanced_acc`` writes the run as a run that computes per-epoch
    balanced accuracy and macro-F1 does (macro-F1 a point below; the test scores below the test
    accuracy); without it the run is one trained before those scores existed (its metrics.csv
    lacks them)."""
    data = {**POST_DATA, **(data or {})}
    full = identity.canonical_settings(settings)
    ident = identity.run_identity(full, seed)
    name = identity.run_name(ident)
    variant = f"{data['name']}-{data['image_size']}"
    run_id = paths.run_id(variant, name, seed)
    n = len(test_acc) if test_acc is not None else full["epochs"]
    train_loss = list(train_loss) if train_loss is not None else approach(1.6, 0.3, n)
    test_loss = list(test_loss) if test_loss is not None else approach(1.7, 0.5, n)
    test_acc = list(test_acc) if test_acc is not None else approach(0.3, 0.85, n)
    if diverged:
        train_loss[-1] = math.nan
    times, memory = _per_epoch(epoch_time_s, n), _per_epoch(peak_memory_mb, n)
    val = list(val_acc) if val_acc is not None else [math.nan] * n
    val_loss = [t if math.isfinite(v) else math.nan for t, v in zip(test_loss, val, strict=True)]
    rows = [
        [e + 1, train_loss[e], min(1.0, test_acc[e] + 0.05), val_loss[e], val[e], test_loss[e],
         test_acc[e], full["lr"], times[e], 0.8 * times[e], 0.2 * times[e], 1000 / times[e],
         memory[e]]
        for e in range(n)
    ]  # fmt: skip
    params = {
        "run_id": run_id, "variant": variant, "name": name, "seed": seed, "identity": ident,
        "trajectory": identity.run_name(identity.trajectory_identity(ident)), "settings": full,
        "data": {**data, "classes": [f"c{i}" for i in range(data["num_classes"])],
                 "val_count": data.get("val_count", 0)},
    }  # fmt: skip
    finite = [(a, e + 1) for e, a in enumerate(test_acc) if math.isfinite(a)]
    best_acc, best_epoch = max(finite, key=lambda v: (v[0], -v[1]))
    min_loss, min_epoch = min((v, e + 1) for e, v in enumerate(test_loss))
    conv = param_count // 2 if conv_param_count is None else conv_param_count
    has_val = val_acc is not None
    best_val, best_val_epoch = (
        max(((a, e + 1) for e, a in enumerate(val)), key=lambda v: (v[0], -v[1]))
        if has_val
        else (None, None)
    )
    summary = {
        "run_id": run_id, "final_test_acc": test_acc[-1], "best_test_acc": best_acc,
        "best_epoch": best_epoch,
        "final_train_loss": None if diverged else train_loss[-1],
        "final_test_loss": test_loss[-1], "min_test_loss": min_loss,
        "min_test_loss_epoch": min_epoch,
        "final_val_acc": val[-1] if has_val else None,
        "final_val_loss": val_loss[-1] if has_val else None, "best_val_acc": best_val,
        "best_val_epoch": best_val_epoch,
        "min_val_loss": min(val_loss) if has_val else None,
        "min_val_loss_epoch": val_loss.index(min(val_loss)) + 1 if has_val else None,
        "kept_epoch": n, "stopped_early": False, "epochs_completed": n, "diverged": diverged,
        "diverged_epoch": n if diverged else None,
        "diverged_reason": "non-finite train loss" if diverged else None,
        "total_time_s": float(sum(times)),
        "mean_epoch_time_s": float(np.mean(times)), "param_count": param_count,
        "conv_param_count": conv, "fc_param_count": param_count - conv,
        "peak_memory_mb": float(max(memory)), "device": "cpu", "device_name": "test cpu",
        "precision": "fp32",
        "torch_version": "0", "git_revision": "abc", "params": params,
    }  # fmt: skip
    run_dir = Path(runs_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.json").write_text(json.dumps(params, indent=2))
    columns = METRIC_COLUMNS[: len(rows[0])]
    if val_balanced_acc is not None:
        scores = [list(val_balanced_acc), [v - 0.01 for v in val_balanced_acc],
                  [a - 0.03 for a in test_acc], [a - 0.04 for a in test_acc]]  # fmt: skip
        columns = METRIC_COLUMNS
        rows = [row + [s[e] for s in scores] for e, row in enumerate(rows)]
        for name, values in zip(CLASS_SCORE_COLUMNS, scores, strict=True):
            summary[f"final_{name}"] = values[-1]
            summary[f"best_{name}"] = max(values)
    lines = [",".join(columns)] + [",".join(repr(v) for v in row) for row in rows]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (run_dir / "model.pt").write_bytes(b"weights")
    n_test, classes = data["test_count"], data["num_classes"]
    if correct is None:
        right = round(test_acc[-1] * n_test) if math.isfinite(test_acc[-1]) else 0
        correct = np.arange(n_test) < right
    label = np.asarray(labels) if labels is not None else np.arange(n_test) % classes
    if pred is None:
        pred = np.where(np.asarray(correct, bool), label, (label + 1) % classes)
    pred = np.asarray(pred)
    np.savez(run_dir / "predictions.npz", label=label.astype(np.int16),
             pred=pred.astype(np.int16), prob=np.full(n_test, 0.9, np.float32))  # fmt: skip
    return run_id


class Sweep:
    """Studies of synthetic runs under ``root``, aggregated into ``root/results``."""

    def __init__(self, root: str | Path, data: dict | None = None) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.out = self.root / "results"
        self.data = data
        self.membership: dict[str, dict] = {}

    def study(
        self,
        name: str,
        param: str | Sequence[str],
        points: Sequence,
        seeds: Sequence[int] = (0,),
        curves: Callable | None = None,
        **settings,
    ) -> list[str]:
        """One run per point and seed. ``param`` is a key (``points`` its values) or a list of
        keys (``points`` tuples of values); ``curves(point, seed)`` returns extra
        ``write_run`` arguments for that run."""
        keys = [param] if isinstance(param, str) else list(param)
        entry = self.membership.setdefault(name, {"params": keys, "mode": "product", "points": []})
        run_ids = []
        for point in points:
            values = dict(zip(keys, [point] if isinstance(param, str) else point, strict=True))
            for seed in seeds:
                extra = {**settings, **(curves(point, seed) if curves else {})}
                data = extra.pop("data", self.data)
                run_id = write_run(self.runs_dir, seed=seed, data=data, **{**extra, **values})
                entry["points"].append({"run_id": run_id, "values": values})
                run_ids.append(run_id)
        return run_ids

    def post_weight_decay_study(self, curves: Callable) -> list[str]:
        """The post's weight-decay study: decay 0.01 against 1.0 at batch 450, 4 epochs, three
        seeds; ``curves(decay, seed)`` as for :meth:`study`."""
        return self.study("wd", "weight_decay", [0.01, 1.0], seeds=(0, 1, 2), epochs=4,
                          batch_size=450, curves=curves)  # fmt: skip

    def aggregate(self) -> dict[str, Path]:
        """Write the results tables; returns their paths by file name."""
        return aggregate.write_results(self.runs_dir, self.membership, self.out)

    def tables(self, *names: str):
        """Aggregate, then read back the named tables (default: summary and metrics)."""
        paths = self.aggregate()
        return [read_table(paths[n]) for n in (names or ("summary.csv", "metrics.csv"))]
