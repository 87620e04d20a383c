"""Is bf16 the same science? The demo's batch-size study trained in fp32 and in bf16.

Trains the offline demo's batch-size study (the custom CNN on scikit-learn's digits at 48 px,
batch sizes 10, 256 and 450, lr 1e-3, 4 epochs: config/demo.yaml) with 3 seeds, once in fp32
and once under bf16 autocast, through ``python -m hpstudy train`` (two jobs at a time, one
thread each, as the demo runs). A run's seed fixes its initial weights and its batches whatever
the precision, so each (batch size, seed) gives a pair; the benchmark checks that the pair
starts from the same weights, then prints the paired differences of final test accuracy
(bf16 - fp32) with their 95 % t interval against a ±1-point margin: "no practical difference"
when the whole interval lies inside it. Also prints each precision's study (mean accuracy per
batch size) and the time per run. Needs a CPU with native bf16 (AVX512-BF16, AMX or Arm's
bf16) or a CUDA GPU with bf16; refuses otherwise. Nothing is asserted. Usage::

    python benchmarks/precision_agreement.py [--seeds 3] [--jobs 2] [--margin 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from hpstudy.core import stats
from hpstudy.core.paths import Layout
from hpstudy.data import fetch, preprocess
from hpstudy.sweep import plan
from hpstudy.training import devices, identity
from hpstudy.training.models import build_model

# the demo's batch-size study (config/demo.yaml): its settings and values
DEMO = {"lr": 1.0e-3, "epochs": 4, "device": "cpu"}
BATCH_SIZES = (10, 256, 450)
PRECISIONS = ("fp32", "bf16")
IMAGE_SIZE, CLASSES = 48, 10


def demo_data(root: Path) -> Path:
    """The demo's processed digits at 48 px below ``root`` (the demo's split, seed 0)."""
    raw = root / "digits.zip"
    fetch.write_digits_zip(raw, test_fraction=0.2, seed=0)
    out = root / "digits-48"
    preprocess.preprocess_archive(raw, out, IMAGE_SIZE, threads=2, name="digits")
    return out


def specs(root: Path, seeds: int) -> dict[tuple[int, int, str], Path]:
    """One settings file per (batch size, seed, precision)."""
    layout = Layout(runs=str(root / "runs"), checkpoints=str(root / "ckpt"))
    files = {}
    for batch_size in BATCH_SIZES:
        for seed in range(seeds):
            for precision in PRECISIONS:
                settings = identity.canonical_settings(
                    {**DEMO, "batch_size": batch_size, "precision": precision}
                )
                spec = plan.run_spec(plan.make_run(settings, seed, "digits-48"), layout)
                path = root / "specs" / f"bs{batch_size}-seed{seed}-{precision}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(spec))
                files[batch_size, seed, precision] = path
    return files


def same_initial_weights(seeds: int) -> bool:
    """Whether each seed builds the same initial model in both precisions (the model is built
    in fp32 either way; autocast only changes the arithmetic of the forward pass)."""
    for seed in range(seeds):
        weights = []
        for precision in PRECISIONS:
            settings = identity.canonical_settings({**DEMO, "precision": precision})
            torch.manual_seed(seed)
            model = build_model(settings, CLASSES, IMAGE_SIZE)
            weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        if not torch.equal(*weights):
            return False
    return True


def run(spec: Path, data: Path, out: Path) -> tuple[dict, float]:
    """Train one run in its own process; its summary and wall time."""
    command = [sys.executable, "-m", "hpstudy", "train", "--settings", str(spec), "--data-dir",
               str(data), "--out-dir", str(out), "--threads", "1"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ})
    wall = time.perf_counter() - start
    return json.loads((out / "summary.json").read_text()), wall


def points(values) -> str:
    return f"{100 * np.mean(values):5.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one thread each)")
    parser.add_argument("--margin", type=float, default=1.0, help="in accuracy points")
    args = parser.parse_args()
    if not (devices.cpu_has_native_bf16() or devices.cuda_has_bf16()):
        raise SystemExit("precision_agreement: this machine has no native bf16 (neither CPU "
                         "nor CUDA GPU): nothing to compare")  # fmt: skip
    print(f"torch {torch.__version__}; demo batch-size study {BATCH_SIZES}, {args.seeds} seeds, "
          f"fp32 and bf16 autocast on the CPU, {args.jobs} jobs of 1 thread")  # fmt: skip
    print(f"same initial weights for each seed in both precisions: "
          f"{'yes' if same_initial_weights(args.seeds) else 'NO'}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hpstudy-precision-") as tmp:
        root = Path(tmp)
        data = demo_data(root)
        files = specs(root, args.seeds)
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {
                key: pool.submit(run, path, data, root / "out" / path.stem)
                for key, path in files.items()
            }
            results = {key: future.result() for key, future in futures.items()}
    acc = {key: summary["final_test_acc"] for key, (summary, _) in results.items()}
    recorded = {key: summary["precision"] for key, (summary, _) in results.items()}
    if any(recorded[key] != key[2] for key in recorded):
        raise SystemExit(f"a run recorded another precision than it was given: {recorded}")
    print(f"\nfinal test accuracy (%), mean of {args.seeds} seeds, and wall time per run:")
    print(f"  {'batch size':>10}  {'fp32':>6}  {'bf16':>6}  {'fp32 s':>7}  {'bf16 s':>7}")
    for bs in BATCH_SIZES:
        cells = [points([acc[bs, s, p] for s in range(args.seeds)]) for p in PRECISIONS]
        times = [np.mean([results[bs, s, p][1] for s in range(args.seeds)]) for p in PRECISIONS]
        print(f"  {bs:>10}  {cells[0]:>6}  {cells[1]:>6}  {times[0]:7.1f}  {times[1]:7.1f}")
    margin = args.margin / 100
    print(f"\npaired differences bf16 - fp32 (points), 95 % t interval, margin ±{args.margin:g}:")
    groups = {f"batch size {bs}": [bs] for bs in BATCH_SIZES} | {"all settings": BATCH_SIZES}
    for label, sizes in groups.items():
        diffs = [acc[bs, s, "bf16"] - acc[bs, s, "fp32"] for bs in sizes for s in range(args.seeds)]
        interval = stats.one_sample(diffs, 0.0)
        verdict = stats.decide(interval, margin)
        if verdict == stats.INCONCLUSIVE:
            needed = stats.seeds_to_resolve(interval, margin)
            verdict += f" (~{needed} pairs would resolve it)" if needed else ""
        print(f"  {label:<14} {100 * interval.effect:+6.2f} [{100 * interval.low:+6.2f}, "
              f"{100 * interval.high:+6.2f}]  {len(diffs)} pairs: {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
