"""``hpstudy status``: where a sweep stands, read from its files while Snakemake runs.

Per study, search, selection (the final runs and other added runs) and sequential look: its
runs finished, running, waiting, failed and not planned yet; each running run's epoch and ETA;
the sweep's ETA at the jobs running at once (or ``--jobs``), queue time excluded.

A run is

- *finished* when its ``summary.json`` exists (written last);
- *running* when a process holds its lock (``/proc/locks``: this host only) or its
  ``metrics.csv`` is fresher than three of its epoch times (a lock is not a reliable signal
  across hosts on every shared file system);
- *failed* when its ``train.log`` ends in an ``hpstudy: error``;
- *waiting* otherwise;
- *not planned yet* when it exists only after a checkpoint: a search's later rounds, the final
  runs before selection, sequential seeds before their look.

Each run is counted once, under the first group that holds it. Reads the plan, the added-runs
files, the run folders and the logs only: never a checkpoint, never torch.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hpstudy.core import paths
from hpstudy.core.config import load_config
from hpstudy.core.errors import HpstudyError
from hpstudy.core.paths import TRAIN_LOG, Layout
from hpstudy.sweep import added_runs
from hpstudy.sweep.plan import Plan, Run, build_plan
from hpstudy.sweep.run_times import Timings, makespan, read_summary, timing_key

STATES = ("finished", "running", "waiting", "failed", "not planned yet")
FRESH_EPOCHS = 3  # metrics.csv younger than this many epoch times: the run is running
LOG_TAIL = 4096
SAMPLES_PER_KEY = 5  # finished runs read per timing key (a median of a few is enough)


@dataclass
class RunState:
    """One planned run's state; for a running run, its epochs done and ETA."""

    run: Run
    state: str
    done: int = 0
    epoch_s: float | None = None
    eta_s: float | None = None


@dataclass
class Group:
    """A study, search, selection or sequential look: its planned runs, and the runs it will
    plan after a checkpoint (each as its timing key and epochs; None: priced as the sweep's
    average run)."""

    kind: str
    name: str
    runs: list[Run] = field(default_factory=list)
    unplanned: list[tuple[tuple | None, int]] = field(default_factory=list)


def held_locks() -> dict[int, set[int]]:
    """Inode -> pids holding a lock, from ``/proc/locks`` (empty where there is none)."""
    held: dict[int, set[int]] = {}
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return held
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        for i, token in enumerate(fields):
            if token.count(":") == 2 and i > 0:
                held.setdefault(int(token.rsplit(":", 1)[1]), set()).add(int(fields[i - 1]))
                break
    return held


def lock_is_held(path: Path, held: dict[int, set[int]]) -> bool:
    """Whether the trainer that wrote its pid into the lock file holds the lock now."""
    try:
        inode = path.stat().st_ino
        holder = path.read_text(errors="replace").split()
    except OSError:
        return False
    pid = int(holder[1]) if len(holder) > 1 and holder[0] == "pid" and holder[1].isdigit() else 0
    return pid in held.get(inode, ())


def epoch_times(metrics: Path) -> list[float]:
    """The epoch times of a run's ``metrics.csv`` so far (empty where unreadable)."""
    try:
        with open(metrics, newline="", encoding="utf-8") as fh:
            return [float(row["epoch_time_s"]) for row in csv.DictReader(fh)]
    except (OSError, KeyError, ValueError):
        return []


def log_failed(log: Path) -> bool:
    """Whether a run's log ends in an ``hpstudy: error`` paragraph (no log record after it)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - LOG_TAIL))
            lines = fh.read().decode("utf-8", "replace").rstrip().splitlines()
    except OSError:
        return False
    errors = [i for i, line in enumerate(lines) if line.startswith("hpstudy: error")]
    # a log record (it starts with its time stamp) after the error: the run went on
    return bool(errors) and not any(line[:1].isdigit() for line in lines[errors[-1] + 1 :])


def run_state(run: Run, layout: Layout, held, timings: Timings, size: int, now: float):
    """The state of one planned run (and, finished, its measured times into ``timings``:
    a few runs per timing key are enough, so a large sweep reads few summaries)."""
    folder = layout.run_dir(run.run_id)
    if os.path.isfile(f"{folder}/summary.json"):
        if timings.samples(timing_key(run.settings, size)) < SAMPLES_PER_KEY:
            summary = read_summary(f"{folder}/summary.json")
            if summary and "params" in summary:
                timings.add_summary(summary)
        return RunState(run, "finished")
    metrics = f"{folder}/metrics.csv"
    times = epoch_times(Path(metrics)) if os.path.isfile(metrics) else []
    epoch = sum(times) / len(times) if times else None
    fresh = False
    if epoch:
        timings.add(timing_key(run.settings, size), epoch)
        with contextlib.suppress(OSError):
            fresh = now - os.stat(metrics).st_mtime < FRESH_EPOCHS * epoch
    lock = Path(layout.lock_file(run.variant, run.trajectory, run.seed))
    if fresh or (held and lock_is_held(lock, held)):
        return RunState(run, "running", done=len(times), epoch_s=epoch)
    if os.path.isfile(f"{folder}/{TRAIN_LOG}") and log_failed(Path(folder) / TRAIN_LOG):
        return RunState(run, "failed")
    return RunState(run, "waiting")


def search_groups(config: dict, layout: Layout, variant: str) -> list[Group]:
    """Each search: the trials of the rounds proposed so far; later rounds not planned yet
    (under successive halving, rung r keeps the best 1/eta of rung r-1 and trains it
    ``min_epochs x eta^r`` epochs)."""
    groups = []
    for name, spec in config.get("search", {}).items():
        group, alive = Group("search", name), int(spec["trials_per_round"])
        base = {**config["train"], **spec.get("set", {})}
        key = timing_key(base, config["dataset"]["image_size"])
        halving = spec.get("halving")
        for round_ in range(int(spec["rounds"])):
            path = Path(layout.proposals(name, round_))
            if path.is_file():
                group.runs += [run for _, run in added_runs.read(path, variant, config["dataset"])]
            else:  # the same arithmetic as hpstudy.tuning.search, which imports torch
                epochs = halving["min_epochs"] * halving["eta"] ** round_ if halving else None
                group.unplanned += [(key, int(epochs or base["epochs"]))] * alive
            if halving:
                alive = max(1, alive // int(halving["eta"]))
        groups.append(group)
    return groups


def added_groups(config: dict, layout: Layout, plan: Plan) -> list[Group]:
    """Runs added by the selection step (the final runs) and any other ``*-runs.json`` file;
    the final runs are not planned yet while the selection has not run, the sequential seeds
    (at their worst case) before their look."""
    groups, found = [], set()
    for path in sorted(Path(layout.selection_file(paths.BEST_FILE)).parent.glob("*-runs.json")):
        stem = path.name.removesuffix("-runs.json")
        found.add(stem)
        pairs = added_runs.read(path, plan.variant, config["dataset"])
        groups.append(Group("selection", f"{stem} runs", [run for _, run in pairs]))
    if config.get("final") and "final" not in found:
        winners = len(plan.studies) + len(config.get("search", {}))
        unplanned = [(None, 0)] * (winners * len(config["final"]["seeds"]))
        groups.append(Group("selection", "final runs", unplanned=unplanned))
    sequential = (config.get("findings") or {}).get("sequential")
    if sequential and "sequential" not in found:
        seeds = len(config["seeds"])
        extra = int(sequential.get("max_seeds", seeds)) - seeds
        points = len({run.name for run in plan.runs.values()})  # settings, each once
        if extra > 0:
            groups.append(Group("sequential", "looks", unplanned=[(None, 0)] * (points * extra)))
    return groups


@dataclass
class SweepStatus:
    """Every group with its runs' states, and the sweep's ETA."""

    groups: list[Group]
    states: dict[str, RunState]  # run id -> state, each run once
    owner: dict[str, str]  # run id -> the label of the group it is counted under
    eta_s: float | None
    unplanned_s: float | None
    jobs: int
    unpriced: list[str]


def label(group: Group) -> str:
    """``study lr``, ``search small``, ``selection final runs``."""
    return f"{group.kind} {group.name}"


def collect(config: dict, jobs: int | None = None, now: float | None = None) -> SweepStatus:
    """The status of a validated config's sweep, read from disk now."""
    now = time.time() if now is None else now
    layout, plan = Layout.from_config(config), build_plan(config)
    size = int(config["dataset"]["image_size"])
    groups = [Group("study", name, [plan.runs[rid] for rid in s.run_ids()])
              for name, s in plan.studies.items()]  # fmt: skip
    groups += search_groups(config, layout, plan.variant) + added_groups(config, layout, plan)
    held, timings = held_locks(), Timings()
    states, owner = {}, {}
    for group in groups:
        for run in group.runs:
            if run.run_id not in states:
                states[run.run_id] = run_state(run, layout, held, timings, size, now)
                owner[run.run_id] = label(group)
    return _with_etas(groups, states, owner, timings, size, jobs, now, layout)


def _with_etas(groups, states, owner, timings: Timings, size, jobs, now, layout) -> SweepStatus:
    """Each running run's ETA from its own epoch times; the sweep's from the measured times
    of runs like each waiting one, on ``jobs`` slots (default: the runs running now)."""
    remaining, unpriced = [], set()
    for state in states.values():
        if state.state not in ("running", "waiting"):
            continue
        run = state.run
        key, epochs = timing_key(run.settings, size), int(run.settings["epochs"])
        seconds = timings.run_time(key, epochs, loose=True)
        if state.state == "running" and state.epoch_s:
            metrics = Path(layout.run_file(run.run_id, "metrics.csv"))
            since = now - metrics.stat().st_mtime if metrics.is_file() else 0.0
            seconds = max(0.0, (epochs - state.done) * state.epoch_s - since)
        if state.state == "running":
            state.eta_s = seconds
        if seconds is None:
            unpriced.add(f"{run.settings['model']} at {size} px on device {run.settings['device']}")
        remaining.append(seconds)
    slots = jobs or max(1, sum(s.state == "running" for s in states.values()))
    average = _average_run(states, timings, size)
    later = [timings.run_time(key, epochs, loose=True) if key else average
             for group in groups for key, epochs in group.unplanned]  # fmt: skip
    return SweepStatus(
        groups, states, owner,
        eta_s=makespan(remaining, slots) if None not in remaining else None,
        unplanned_s=makespan(later, slots) if later and None not in later else None,
        jobs=slots, unpriced=sorted(unpriced),
    )  # fmt: skip


def _average_run(states, timings: Timings, size: int) -> float | None:
    """The mean seconds of the sweep's planned runs (what a run not planned yet is priced at
    when its settings are not known yet)."""
    times = [timings.run_time(timing_key(s.run.settings, size), int(s.run.settings["epochs"]),
                              loose=True) for s in states.values()]  # fmt: skip
    times = [t for t in times if t is not None]
    return sum(times) / len(times) if times else None


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``; ``unknown`` for None."""
    if seconds is None:
        return "unknown"
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def counts(status: SweepStatus) -> dict[str, dict[str, int]]:
    """Group label -> state -> runs; each run under the group that owns it, plus ``sweep``."""
    table = {label(g): dict.fromkeys(STATES, 0) for g in status.groups}
    for run_id, state in status.states.items():
        table[status.owner[run_id]][state.state] += 1
    for group in status.groups:
        table[label(group)]["not planned yet"] += len(group.unplanned)
    table["sweep"] = {s: sum(row[s] for row in table.values()) for s in STATES}
    return table


def render(status: SweepStatus, source: str) -> str:
    """The status as text: the table of states, the running runs, the ETAs."""
    table = counts(status)
    width = max(len(name) for name in table)
    lines = [f"{source}: {len(status.states)} runs planned", ""]
    lines.append(" " * width + "".join(f"  {s:>8}" for s in STATES))
    for name, row in table.items():
        if name == "sweep":
            lines.append("-" * (width + sum(max(8, len(s)) + 2 for s in STATES)))
        lines.append(name.ljust(width) + "".join(f"  {row[s]:>{max(8, len(s))}}" for s in STATES))
    running = [s for s in status.states.values() if s.state == "running"]
    if running:
        lines += ["", "running:"]
        for state in running:
            epochs = state.run.settings["epochs"]
            lines.append(f"  {state.run.run_id}  epoch {min(state.done + 1, epochs)}/{epochs}"
                         f"  ETA {duration(state.eta_s)}")  # fmt: skip
    failed = [s.run.run_id for s in status.states.values() if s.state == "failed"]
    if failed:
        lines += ["", "failed (see each run's train.log): " + ", ".join(failed)]
    lines.append("")
    lines.append(f"sweep ETA: {duration(status.eta_s)} at {status.jobs} job(s) at once "
                 "(queue time excluded; failed runs not counted)")  # fmt: skip
    if table["sweep"]["not planned yet"]:
        lines.append(f"  then about {duration(status.unplanned_s)} more for the runs not "
                     "planned yet (at their worst case)")  # fmt: skip
    if status.unpriced:
        lines.append("  not measured yet, so not priced: " + "; ".join(status.unpriced))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``hpstudy status [--configfile F] [--jobs N] [--watch]``."""
    parser = argparse.ArgumentParser(prog="hpstudy status", description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--jobs", type=int, help="jobs at once for the ETA (default: the "
                        "runs running now)")  # fmt: skip
    parser.add_argument("--watch", action="store_true", help="refresh in place every 2 s")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        raise HpstudyError(f"--jobs {args.jobs}: give a positive number of jobs at once.")
    config = load_config(args.configfile)
    while True:
        text = render(collect(config, args.jobs), args.configfile)
        if not args.watch:
            sys.stdout.write(text)
            return 0
        sys.stdout.write("\033[H\033[J" + text)  # clear the screen, then draw
        sys.stdout.flush()
        try:
            time.sleep(2)
        except KeyboardInterrupt:
            return 0
