"""Balanced accuracy and macro-F1 per epoch, for the splits a run evaluates, computed from what
evaluation already predicts (no second pass over the data).

The loop (:mod:`hpstudy.training.loop`, digested into every run's identity) returns only the
test split's predictions; :class:`PredictionRecorder` wraps the network and keeps the predicted
classes of every batch computed in inference mode, i.e. by ``evaluate`` (validation first, then
test), so the validation split's scores come for free. Wrapping changes no number: it calls the
network and looks at its output."""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from hpstudy.core.class_scores import class_scores
from hpstudy.core.run_record import CLASS_SCORE_COLUMNS as EPOCH_COLUMNS

LOG = logging.getLogger("hpstudy.split_scores")
NAN_SCORES = dict.fromkeys(EPOCH_COLUMNS, math.nan)


class PredictionRecorder(nn.Module):
    """The network, recording the predicted class of every image it sees in inference mode."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.recorded: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The wrapped network's output, unchanged."""
        logits = self.net(images)
        if torch.is_inference_mode_enabled():
            self.recorded.append(logits.argmax(1))  # stays on the device: no sync per batch
        return logits

    def take(self) -> torch.Tensor:
        """Everything recorded since the last call, in order, on the CPU; then forget it."""
        preds = torch.cat(self.recorded).cpu() if self.recorded else torch.empty(0, dtype=int)
        self.recorded = []
        return preds


def epoch_scores(recorded: torch.Tensor, val_labels, test_labels, test_pred) -> dict:
    """One epoch's scores: ``recorded`` holds the validation split's predictions (when there is
    one) followed by the test split's, which must equal ``test_pred`` (evaluate's own)."""
    n_val = 0 if val_labels is None else len(val_labels)
    scores = dict(NAN_SCORES)
    if len(recorded) != n_val + len(test_labels) or not torch.equal(
        recorded[n_val:], test_pred.to(recorded.dtype)
    ):  # a secondary number is not worth a run: say so, leave the scores empty
        LOG.warning(
            "recorded %d predictions for %d validation and %d test images, or not evaluate's "
            "own; this epoch's balanced accuracy and macro-F1 are left empty",
            len(recorded), n_val, len(test_labels),
        )  # fmt: skip
        return scores
    splits = [("test", test_labels, recorded[n_val:])]
    if n_val:
        splits.append(("val", val_labels, recorded[:n_val]))
    for name, labels, preds in splits:
        for key, value in class_scores(labels.cpu().numpy(), preds.numpy()).items():
            scores[f"{name}_{key}"] = value
    return scores


def _pick(rows: list[dict], column: str, kept: dict) -> dict[str, float | None]:
    values = [(r.get(column, math.nan), r["epoch"]) for r in rows]
    values = [(v, e) for v, e in values if math.isfinite(v)]
    final = kept.get(column, math.nan)
    return {
        f"final_{column}": final if math.isfinite(final) else None,
        f"best_{column}": max(values, key=lambda v: (v[0], -v[1]))[0] if values else None,
    }


def summary_scores(rows: list[dict], kept: dict) -> dict:
    """summary.json's numbers: each score at the kept epoch (``final_``) and its best epoch's
    value (``best_``); null where a split was not evaluated or an older row lacks it."""
    out = {}
    for column in EPOCH_COLUMNS:
        out.update(_pick(rows, column, kept))
    return out
