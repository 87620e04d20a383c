"""How long a training job takes from its process's start to its first training step.

Builds the offline demo's data (scikit-learn's digits, 48 px, as the demo config) in a
temporary folder, then starts ``python -m hpstudy train`` on one demo run (the custom CNN, one
epoch) several times, with ``HPSTUDY_LOG_LEVEL=DEBUG`` so that each job logs its start-up
breakdown: interpreter and imports, device set-up, loading and checking the arrays, building
the model, restoring a checkpoint, and the first training step. Prints the median of each step
over the runs, and the wall time of the whole job. ``--generated N`` uses N random 150 px
training images (and 3,000 test images) instead, the real data's size, to see what reading and
checking large arrays adds. Nothing is asserted. Usage::

    python benchmarks/job_start.py [--repeat 5] [--threads 2] [--generated 14034]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generated import random_processed

from hpstudy.core.paths import Layout
from hpstudy.data import fetch, preprocess
from hpstudy.sweep import plan
from hpstudy.training import identity

STARTUP = re.compile(r"start-up: (.*); in all ([0-9.]+) s")


def demo_data(root: Path) -> Path:
    """The demo's processed digits at 48 px below ``root``."""
    raw = root / "digits.zip"
    fetch.write_digits_zip(raw, test_fraction=0.2, seed=0)
    out = root / "digits-48"
    preprocess.preprocess_archive(raw, out, 48, threads=2, name="digits")
    return out


def demo_spec(root: Path, variant: str = "digits-48") -> Path:
    """The settings file of one demo run (the demo's settings, one epoch)."""
    settings = identity.canonical_settings({"lr": 1e-3, "epochs": 1})
    run = plan.make_run(settings, 0, variant)
    spec = plan.run_spec(run, Layout(runs=str(root / "runs"), checkpoints=str(root / "ckpt")))
    path = root / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def one_job(spec: Path, data: Path, out: Path, threads: int) -> tuple[dict, float, float]:
    """Start one training job; its start-up steps (seconds), total start-up and wall time."""
    env = {**os.environ, "HPSTUDY_LOG_LEVEL": "DEBUG"}
    command = [sys.executable, "-m", "hpstudy", "train", "--settings", str(spec), "--data-dir",
               str(data), "--out-dir", str(out), "--threads", str(threads)]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    found = STARTUP.search(proc.stderr)
    if not found:
        raise SystemExit(f"no start-up line in the job's log:\n{proc.stderr[-2000:]}")
    steps = {}
    for part in found.group(1).split(", "):
        name, seconds = part.rsplit(" ", 2)[0], float(part.rsplit(" ", 2)[1])
        steps[name] = seconds
    return steps, float(found.group(2)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--generated", type=int, help="random 150 px training images instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.generated:
            counts = {"train": args.generated, "test": 3000}
            data, what = (
                random_processed(root / "bench-150", counts),
                f"{args.generated} images at 150 px",
            )
            spec = demo_spec(root, "bench-150")
        else:
            data, spec, what = demo_data(root), demo_spec(root), "digits 48 px"
        runs = [one_job(spec, data, root / f"out{i}", args.threads) for i in range(args.repeat)]
    steps = {name: statistics.median(r[0][name] for r in runs) for name in runs[0][0]}
    print(f"run of the custom CNN on {what}, {args.threads} threads, median of "
          f"{args.repeat} jobs:")  # fmt: skip
    for name, seconds in steps.items():
        print(f"  {name:<28} {seconds:6.2f} s")
    totals = [r[1] for r in runs]
    print(f"  {'process start to first step':<28} {statistics.median(totals):6.2f} s "
          f"(min {min(totals):.2f}, max {max(totals):.2f})")  # fmt: skip
    print(f"  {'whole job (1 epoch), wall':<28} {statistics.median(r[2] for r in runs):6.2f} s")
    print("  (PyTorch's first optimizer imports torch._dynamo; the job imports it in a "
          "background thread from its start)")  # fmt: skip


if __name__ == "__main__":
    main()
