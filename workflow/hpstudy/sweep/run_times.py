"""How long a run takes, from the runs already trained: the one timing model behind
``hpstudy status`` (a sweep's ETA) and ``hpstudy sweep --estimate`` (the next sweep's cost).

A run is priced by its *timing key*, the settings that set its speed: model, image size,
batch size and device (as the config asks for it). A measured run contributes its mean epoch
time and its job's fixed seconds (its wall time but its epochs: start-up, a final evaluation,
writing its predictions and weights; a run trained before these were recorded: its start-up);
a run is priced at ``fixed + epochs x epoch time`` (medians) from the runs with its key, or
(``loose=True``, for status) from runs of the same model, image size and device at any batch
size. A sweep's wall time adds, before each job, the scheduler's measured gap. Reads
``summary.json`` files only: no torch, no pandas.
"""

from __future__ import annotations

import bisect
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
    """Measured epoch times and fixed seconds by timing key, and the scheduler's gap."""

    epoch_s: dict[TimingKey, list[float]] = field(default_factory=dict)
    fixed_s: dict[TimingKey, list[float]] = field(default_factory=dict)  # a job but its epochs
    gap_s: float = 0.0  # between one job's end and the next one's start (scheduler_gap)

    def add(self, key: TimingKey, epoch_s: float, fixed_s: float | None = None) -> None:
        """One measured run (or a running run's epochs so far)."""
        if epoch_s and epoch_s > 0:
            self.epoch_s.setdefault(key, []).append(float(epoch_s))
        if fixed_s:
            self.fixed_s.setdefault(key, []).append(float(fixed_s))

    def samples(self, key: TimingKey) -> int:
        """How many runs of ``key`` were measured."""
        return len(self.epoch_s.get(key, ()))

    def add_summary(self, summary: dict) -> None:
        """A finished run's ``summary.json`` content."""
        params = summary["params"]
        key = timing_key(params["settings"], params["data"]["image_size"])
        fixed = summary.get("job_fixed_s", summary.get("startup_device_s"))
        self.add(key, summary.get("mean_epoch_time_s"), fixed)

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
        return (self._pick(self.fixed_s, key, loose) or 0.0) + epochs * epoch


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


def scheduler_gap(summaries: list[dict], longest_s: float = 30.0) -> float:
    """The median time from a job's end to the next job's start (Snakemake noticing the end,
    checking the outputs, starting a shell and an interpreter; the interpreter's exit): for
    each run started after another one ended, the time since the latest such end, left out
    where it is over ``longest_s`` (the sweep was waiting for something else, or stopped).
    0 where no run recorded when it started and ended."""
    ends = sorted(s["job_ended_at"] for s in summaries if "job_ended_at" in s)
    gaps = []
    for summary in summaries:
        start = summary.get("job_started_at")
        before = bisect.bisect_right(ends, start) if start is not None else 0
        if before and start - ends[before - 1] <= longest_s:
            gaps.append(start - ends[before - 1])
    return statistics.median(gaps) if gaps else 0.0


def makespan(durations: list[float], jobs: int, gap_s: float = 0.0) -> float:
    """Wall time of independent jobs on ``jobs`` slots, longest first to the freest slot;
    ``gap_s`` before each job that is still to run (a finished one is 0)."""
    slots = [0.0] * max(1, int(jobs))
    for duration in sorted(durations, reverse=True):
        slots[slots.index(min(slots))] += duration + (gap_s if duration else 0.0)
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
