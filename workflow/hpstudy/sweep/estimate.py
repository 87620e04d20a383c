"""``hpstudy sweep --estimate``: what a config will cost before anything runs.

Every run the config will train is priced from the runs already measured *on this machine*
(a run's ``summary.json`` names its device; this machine's CPU and GPUs are read from
``/proc/cpuinfo`` and ``nvidia-smi``) with the same model, image size, batch size and device
(:mod:`hpstudy.sweep.run_times`): the job's fixed seconds (start-up, writing its outputs)
plus its epochs times the median epoch time. A search
is priced at its rounds x trials (successive halving: each rung's survivors for the epochs they
add), the final runs at one winner per study and search times the final seeds, sequential
seeds at their worst case (``findings.sequential.max_seeds``); those whose settings are not
known before they are planned are priced at their study's average run. The wall time at
``--jobs`` runs at once: the independent runs packed longest first, a search's rounds one
after another, the final runs and sequential looks after the rest, each run still to train
after the scheduler's measured gap between one job's end and the next one's start
(:func:`~hpstudy.sweep.run_times.scheduler_gap`); queue time excluded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hpstudy.core import paths
from hpstudy.core.config import load_config
from hpstudy.core.errors import HpstudyError
from hpstudy.core.paths import Layout
from hpstudy.sweep import added_runs
from hpstudy.sweep.plan import build_plan
from hpstudy.sweep.plan import main as plan_main
from hpstudy.sweep.run_times import (
    Timings,
    key_label,
    makespan,
    measured_summaries,
    scheduler_gap,
    timing_key,
)


def machine_devices() -> set[str]:
    """This machine's device names as runs record them: its CPU model and its GPUs."""
    names = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                names.add(line.split(":", 1)[1].strip())
                break
    except OSError:
        pass
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=20)  # fmt: skip
            names |= {line.strip() for line in done.stdout.splitlines() if line.strip()}
        except (OSError, subprocess.SubprocessError):
            pass
    return names


def local_timings(runs_root: str | os.PathLike, devices: set[str] | None = None) -> Timings:
    """The measured times of every finished run under ``runs_root`` trained on this machine."""
    devices = machine_devices() if devices is None else devices
    timings = Timings()
    here = [s for s in measured_summaries(runs_root) if s.get("device_name") in devices]
    for summary in here:
        timings.add_summary(summary)
    timings.gap_s = scheduler_gap(here)
    return timings


@dataclass
class Estimate:
    """The priced plan: its runs, device-seconds, wall time and what could not be priced."""

    runs: int = 0
    finished: int = 0
    device_s: float = 0.0  # every run of the plan
    left_s: float = 0.0  # the runs not finished yet
    wall_s: float | None = None  # None: some run could not be priced
    jobs: int = 1
    notes: list[str] = field(default_factory=list)
    unpriced: dict[str, int] = field(default_factory=dict)  # timing key label -> runs


def _price(timings: Timings, settings: dict, size: int, epochs: int, est: Estimate):
    seconds = timings.run_time(timing_key(settings, size), epochs)
    if seconds is None:
        label = key_label(timing_key(settings, size))
        est.unpriced[label] = est.unpriced.get(label, 0) + 1
    return seconds


def _mean(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def estimate(config: dict, jobs: int = 1, timings: Timings | None = None) -> Estimate:
    """Price a validated config's sweep at ``jobs`` runs at once."""
    layout, plan = Layout.from_config(config), build_plan(config)
    timings = local_timings(layout.runs) if timings is None else timings
    size, est = int(config["dataset"]["image_size"]), Estimate(jobs=max(1, int(jobs)))
    grid, study_mean = _grid_runs(plan, layout, timings, size, est)
    searches = []
    for name, spec in config.get("search", {}).items():
        rounds, prices = _search_rounds(timings, config, layout, plan.variant, name, size, est)
        searches.append(rounds)
        study_mean[name] = _mean(prices)
        est.notes.append(f"search {name}: {spec['rounds']} rounds x {spec['trials_per_round']} "
                         "trials")  # fmt: skip
    later = _later_runs(config, plan, layout, timings, study_mean, est)
    batches = [grid, *(r for rounds in searches for r in rounds), *later]
    est.left_s = sum(s or 0.0 for batch in batches for s in batch)
    if all(None not in batch for batch in batches):
        # the grid and the searches side by side (a search's rounds one after another),
        # then the final runs and the sequential looks
        gap, jobs = timings.gap_s, est.jobs
        together = makespan(grid + [s for rounds in searches for r in rounds for s in r], jobs, gap)
        rounds_s = [sum(makespan(r, jobs, gap) for r in rounds) for rounds in searches]
        est.wall_s = max([together, *rounds_s]) + sum(makespan(b, jobs, gap) for b in later)
    return est


def _grid_runs(plan, layout: Layout, timings: Timings, size: int, est: Estimate):
    """The studies' distinct runs' prices (0 for a finished one) and each study's average."""
    left, seen, study_mean = [], {}, {}
    for name, study in plan.studies.items():
        prices = []
        for rid in study.run_ids():
            if rid in seen:
                prices.append(seen[rid])
                continue
            run = plan.runs[rid]
            seconds = _price(timings, run.settings, size, int(run.settings["epochs"]), est)
            prices.append(seconds)
            seen[rid] = seconds
            done = Path(layout.run_file(rid, "summary.json")).is_file()
            left.append(0.0 if done else seconds)
            est.runs, est.finished = est.runs + 1, est.finished + done
            est.device_s += seconds or 0.0
        study_mean[name] = _mean(prices)
    return left, study_mean


def _planned(timings, layout: Layout, runs, size, est: Estimate, epochs=None, prices=None):
    """Price runs already planned (an added-runs file's): what is left of each (0 for a
    finished one); ``epochs``: the epochs each trains (default: its own); each run's price
    is appended to ``prices``."""
    left = []
    for run in runs:
        seconds = _price(timings, run.settings, size, epochs or int(run.settings["epochs"]), est)
        if prices is not None:
            prices.append(seconds)
        done = Path(layout.run_file(run.run_id, "summary.json")).is_file()
        est.runs, est.finished = est.runs + 1, est.finished + done
        est.device_s += seconds or 0.0
        left.append(0.0 if done else seconds)
    return left


def _search_rounds(timings, config, layout: Layout, variant: str, name: str, size, est):
    """A search's rounds, each a list of what is left of its trials, and every trial's price:
    the rounds proposed so far from their trials, the others at their size (halving: each
    rung's survivors for the epochs they add to their run, from its checkpoint)."""
    spec = config["search"][name]
    base = {**config["train"], **spec.get("set", {})}
    halving, alive, before = spec.get("halving"), int(spec["trials_per_round"]), 0
    rounds, prices = [], []
    for round_ in range(int(spec["rounds"])):
        epochs = int(halving["min_epochs"] * halving["eta"] ** round_) if halving else None
        epochs = epochs or int(base["epochs"])
        added_epochs = epochs - before if halving else epochs
        path = Path(layout.proposals(name, round_))
        if path.is_file():
            runs = [run for _, run in added_runs.read(path, variant, config["dataset"])]
            rounds.append(_planned(timings, layout, runs, size, est, added_epochs, prices))
            alive = len(runs)
        else:
            batch = [_price(timings, base, size, added_epochs, est) for _ in range(alive)]
            rounds.append(batch)
            prices += batch
            _count(batch, est)
        if halving:
            alive, before = max(1, alive // int(halving["eta"])), epochs
    return rounds, prices


def _later_runs(config, plan, layout: Layout, timings, study_mean, est: Estimate) -> list[list]:
    """The final runs (from their added-runs file once selection has written it, else one
    winner per study and search at its study's mean) and the sequential seeds (worst case)."""
    batches = []
    final_file = Path(layout.selection_file(paths.FINAL_RUNS))
    if config.get("final") and final_file.is_file():
        runs = [run for _, run in added_runs.read(final_file, plan.variant, config["dataset"])]
        size = int(config["dataset"]["image_size"])
        batches.append(_planned(timings, layout, runs, size, est))
    elif config.get("final"):
        seeds = len(config["final"]["seeds"])
        batch = [study_mean.get(name) for name in study_mean for _ in range(seeds)]
        est.notes.append(f"final runs: {len(batch)} (one winner per study and search x "
                         f"{seeds} seeds, priced at the study's average run)")  # fmt: skip
        _count(batch, est)
        batches.append(batch)
    sequential = (config.get("findings") or {}).get("sequential")
    if sequential:
        seeds = len(config["seeds"])
        extra = int(sequential.get("max_seeds", seeds)) - seeds
        owner = {}  # each setting once, priced at the first study that holds it
        for name, study in plan.studies.items():
            for rid in study.run_ids():
                owner.setdefault(plan.runs[rid].name, name)
        batch = [study_mean.get(name) for name in owner.values() for _ in range(extra)]
        if batch:
            est.notes.append(f"sequential seeds: up to {len(batch)} more runs (worst case)")
            _count(batch, est)
            batches.append(batch)
    return batches


def _count(batch: list, est: Estimate) -> None:
    est.runs += len(batch)
    est.device_s += sum(s or 0.0 for s in batch)


def render(est: Estimate, source: str) -> str:
    """The estimate as text."""
    from hpstudy.sweep.status import duration

    lines = [
        f"{source}: {est.runs} runs ({est.finished} already finished), priced from the runs "
        "measured on this machine with the same model, image size, batch size and device",
        f"device-hours: {est.device_s / 3600:.3g} in all, {est.left_s / 3600:.3g} still to run"
        " (training, evaluation and start-up)",
        f"wall time at {est.jobs} job(s) at once: {duration(est.wall_s)} (queue time excluded)",
    ]
    lines += [f"  {note}" for note in est.notes]
    if est.unpriced:
        lines.append("not priced (no run measured on this machine with these settings; the "
                     "figures above leave them out):")  # fmt: skip
        lines += [f"  {label}: {n} run(s)" for label, n in sorted(est.unpriced.items())]
    return "\n".join(lines) + "\n"


def sweep_main(argv: list[str] | None = None) -> int:
    """``hpstudy sweep [--configfile F] [--estimate [--jobs N]]``: the runs a config expands
    to (:func:`hpstudy.sweep.plan.main`) or, with ``--estimate``, what they will cost."""
    parser = argparse.ArgumentParser(prog="hpstudy sweep", description=sweep_main.__doc__)
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--estimate", action="store_true",
                        help="price the sweep from the runs measured on this machine")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (with --estimate)")
    args = parser.parse_args(argv)
    if not args.estimate:
        return plan_main(["--configfile", args.configfile])
    if args.jobs < 1:
        raise HpstudyError(f"--jobs {args.jobs}: give a positive number of runs at once.")
    config = load_config(args.configfile)
    sys.stdout.write(render(estimate(config, args.jobs), args.configfile))
    return 0
