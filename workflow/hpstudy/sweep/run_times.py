"""How long a run takes, from the runs already trained: the one timing model behind
``hpstudy status`` (a sweep's ETA) and ``hpstudy sweep --estimate`` (the next sweep's cost).

A run is priced by its *timing key*, the settings that set its speed: model, image size,
batch size and device (as the config asks for it). A measured run contributes its mean epoch
time and its start-up seconds; a run is priced at ``start-up + epochs x epoch time`` from the
runs with its key, or (``loose=True``, for status) from runs of the same model, image size
and device at any batch size. Reads ``summary.json`` files only: no torch, no pandas.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

TimingKey = tuple  # (model, image_size, batch_size, device)


def timing_key(settings: dict, image_size: int) -> TimingKey:
    """The settings that set a run's speed."""
    return (settings["model"], int(image_size), int(settings["batch_size"]), settings["device"])


def key_label(key: TimingKey) -> str:
    """``custom at 48 px, batch 32, device auto``."""
    model, size, batch, device = key
    return f"{model} at {size} px, batch {batch}, device {device}"


def device_seconds(summary: dict) -> dict[str, float]:
    """A finished run's device-seconds: ``train``, ``evaluation``, ``startup`` (as the run
    recorded them; a run trained before they were recorded: its epoch times as training,
    start-up unknown, 0)."""
    if "train_device_s" in summary:
        return {
            "train": float(summary["train_device_s"]),
            "evaluation": float(summary.get("eval_device_s") or 0.0),
            "startup": float(summary.get("startup_device_s") or 0.0),
        }
    return {"train": float(summary.get("total_time_s") or 0.0), "evaluation": 0.0, "startup": 0.0}


@dataclass
class Timings:
    """Measured epoch times and start-ups by timing key."""

    epoch_s: dict[TimingKey, list[float]] = field(default_factory=dict)
    startup_s: dict[TimingKey, list[float]] = field(default_factory=dict)

    def add(self, key: TimingKey, epoch_s: float, startup_s: float | None = None) -> None:
        """One measured run (or a running run's epochs so far)."""
        if epoch_s and epoch_s > 0:
            self.epoch_s.setdefault(key, []).append(float(epoch_s))
        if startup_s:
            self.startup_s.setdefault(key, []).append(float(startup_s))

    def samples(self, key: TimingKey) -> int:
        """How many runs of ``key`` were measured."""
        return len(self.epoch_s.get(key, ()))

    def add_summary(self, summary: dict) -> None:
        """A finished run's ``summary.json`` content."""
        params = summary["params"]
        key = timing_key(params["settings"], params["data"]["image_size"])
        self.add(key, summary.get("mean_epoch_time_s"), summary.get("startup_device_s"))

    def _pick(self, table: dict, key: TimingKey, loose: bool) -> float | None:
        if key in table:
            return statistics.median(table[key])
        if loose:
            near = [v for k, values in table.items() if k[:2] + k[3:] == key[:2] + key[3:]
                    for v in values]  # fmt: skip
            if near:
                return statistics.median(near)
        return None

    def epoch_time(self, key: TimingKey, loose: bool = False) -> float | None:
        """Seconds per epoch for ``key`` (None: never measured)."""
        return self._pick(self.epoch_s, key, loose)

    def run_time(self, key: TimingKey, epochs: int, loose: bool = False) -> float | None:
        """Seconds a run of ``epochs`` epochs takes, start-up included (None: unpriced)."""
        epoch = self.epoch_time(key, loose)
        if epoch is None:
            return None
        return (self._pick(self.startup_s, key, loose) or 0.0) + epochs * epoch


def read_summary(path: str | os.PathLike) -> dict | None:
    """A ``summary.json``, or None where it is missing or half-written."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def measured_summaries(runs_root: str | os.PathLike) -> list[dict]:
    """Every finished run's summary under the runs folder (all data variants)."""
    found = []
    for path in sorted(Path(runs_root).glob("*/*/seed-*/summary.json")):
        summary = read_summary(path)
        if summary and "params" in summary:
            found.append(summary)
    return found


def makespan(durations: list[float], jobs: int) -> float:
    """Wall time of independent jobs on ``jobs`` slots, longest first to the freest slot."""
    slots = [0.0] * max(1, int(jobs))
    for duration in sorted(durations, reverse=True):
        slots[slots.index(min(slots))] += duration
    return max(slots)


# An epoch of a torchvision model against one of the custom CNN at the same image size and
# batch size: a ResNet18 epoch on the demo's 48 px digits took 15x the custom CNN's (2-core
# AVX2 CPU). Other torchvision models are at least as heavy.
ZOO_EPOCH_WORK = 15


def train_priority(settings: dict) -> int:
    """A train job's Snakemake priority: its work relative to the other runs' (epochs times an
    epoch's work), known before any run is measured. The longest runs start first, as
    :func:`makespan` assumes: a long run started last would leave the other slots idle while
    it trains on alone (on the demo a ResNet18 run is 49 s on a 2-core CPU, a custom CNN run
    5-10 s). It only orders the jobs that are ready; it changes no run's numbers."""
    work = 1 if settings["model"] == "custom" else ZOO_EPOCH_WORK
    return int(settings["epochs"]) * work
