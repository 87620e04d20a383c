"""How long ``hpstudy status`` takes on a large sweep stopped half-way.

Writes a digits config whose grid has N distinct runs (benchmarks/plan_speed.py's grid) into a
scratch folder, marks half its runs finished (a ``summary.json`` each), a few running (fresh
``metrics.csv``) and one failed, then times ``hpstudy status`` as a user runs it (a new
process: interpreter, imports, config validation, planning, reading the run folders). Nothing
is asserted: the figures are for the notes (target: at most 2 s for 1,000 runs). Usage::

    python benchmarks/status_speed.py [--runs 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from plan_speed import REPO, grid_config

from hpstudy.core.config import validate_config
from hpstudy.core.paths import Layout
from hpstudy.sweep.plan import build_plan


def write_sweep(root: Path, runs: int) -> Path:
    """The config file of a sweep of ``runs`` runs under ``root``, half of them finished."""
    config = grid_config(runs)
    config["paths"] = {k: str(root / k) for k in ("data", "runs", "results", "checkpoints")}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    valid = validate_config(config)
    layout, plan = Layout.from_config(valid), build_plan(valid)
    for i, run in enumerate(plan.runs.values()):
        folder = Path(layout.run_dir(run.run_id))
        if i % 2 == 0:
            folder.mkdir(parents=True)
            params = {"settings": run.settings, "data": {"image_size": 48}}
            summary = {"mean_epoch_time_s": 2.0, "startup_device_s": 1.5, "params": params}
            (folder / "summary.json").write_text(json.dumps(summary))
        elif i % 97 == 1:
            folder.mkdir(parents=True)
            (folder / "metrics.csv").write_text("epoch,epoch_time_s\n1,2.0\n")
        elif i == 3:
            folder.mkdir(parents=True)
            (folder / "train.log").write_text("hpstudy: error: gone\n")
    return path


def main() -> None:
    """Print the seconds ``hpstudy status`` takes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        config = write_sweep(Path(scratch), args.runs)
        env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
        command = [sys.executable, "-m", "hpstudy", "status", "--configfile", str(config)]
        times, cpu = [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        print(done.stdout)
        # the CPU seconds are what a quiet machine's wall time comes close to (one process)
        print(f"hpstudy status on {args.runs} runs: median {statistics.median(times):.2f} s "
              f"wall, {statistics.median(cpu):.2f} s CPU (min wall {min(times):.2f} s, "
              f"{args.repeat} calls; load average {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
