"""The post's whole sweep on one GPU, with 1, 2 and 4 runs sharing it (``gpu_slots``).

Prepared for a lent GPU machine (it needs torch, numpy, PyYAML and tqdm; not Snakemake,
jsonschema or Optuna): run it from the repository root with the package installed
(``pip install -e .``), or, on a machine that has torch alone, with ``PYTHONPATH=workflow``.

1. Epoch times of ResNet18 and the post's custom CNN at 150 px, batch 32 and 256, fp32 against
   bf16 autocast + channels_last, through hpstudy's training loop (benchmarks/gpu_benchmark.py's
   cases, 2 epochs each: the first includes cuDNN's start-up).
2. The sweep's full shape: the post's four studies (learning rate on ResNet18 at batch 32 — from
   scratch here, no weights to fetch, the same work per step —, batch size, kernel width and
   weight decay on the custom CNN; 10 distinct settings) × 3 seeds × 10 epochs on 14,034
   generated 150 px training images and 3,000 test images, each run one ``python -m hpstudy
   train`` process as Snakemake starts it, ``slots`` at a time on the GPU with
   ``gpu_slots: slots`` (so each job takes its own (GPU, slot) lock), for slots = 4, 2, 1. Prints
   the sweep's wall time and its training images/s, and images/s per setting.

The whole benchmark stops at ``--budget`` seconds (default 450: it fits an 8-minute device call
with the data generation); each sweep gets an equal share of what is left and reports how many
runs it finished when it hits its cap. Targets on one H200: the 30-run sweep in <= 5 min, a
ResNet18 epoch at batch 256 in <= 1 s. Nothing is asserted. Usage::

    python benchmarks/sweep_benchmark.py             # on a GPU machine
    python benchmarks/sweep_benchmark.py --cpu-smoke # tiny; checks it runs
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from generated import random_processed
from gpu_benchmark import MODES, bench_case, random_split

from hpstudy.core.paths import Layout
from hpstudy.sweep import plan
from hpstudy.training import devices, identity

# the post's four studies (config/config.yaml), the learning-rate study from scratch
STUDIES = {
    "learning_rate": ("lr", [1.0e-7, 1.0e-4, 1.0e-2],
                      {"model": "resnet18", "pretrained": False, "batch_size": 32}),
    "batch_size": ("batch_size", [10, 256, 450], {}),
    "kernel_width": ("kernel_width", [3, 5, 7, [5, 5, 7]], {}),
    "weight_decay": ("weight_decay", [0.01, 1.0], {"batch_size": 450}),
}  # fmt: skip
VARIANT = "bench-150"


def sweep_runs(seeds: int, epochs: int, device: str, precision: str, slots: int) -> list:
    """The sweep's distinct runs (settings shared by two studies run once), slowest first."""
    runs = {}
    for param, values, fixed in STUDIES.values():
        for value in values:
            settings = identity.canonical_settings(
                {
                    "epochs": epochs,
                    "device": device,
                    "precision": precision,
                    "gpu_slots": slots,
                    **fixed,
                    param: value,
                }  # fmt: skip
            )
            for seed in range(seeds):
                run = plan.make_run(settings, seed, VARIANT)
                runs.setdefault(run.run_id, run)
    # the many small steps of batch 10 and ResNet18's heavier ones first: the sweep's tail is
    # then made of short runs, which keeps every slot busy to the end
    return sorted(runs.values(), key=lambda r: (r.settings["batch_size"] > 32, r.run_id))


def train_job(run, layout: Layout, data: Path, threads: int, env: dict, deadline: float) -> str:
    """One ``hpstudy train`` process for ``run``: "finished", "capped" (stopped at the
    deadline) or "failed" (its log's tail is printed)."""
    out = Path(layout.runs) / run.run_id
    out.parent.mkdir(parents=True, exist_ok=True)
    spec_file, log_file = out.parent / f"{out.name}.json", out.parent / f"{out.name}.log"
    spec_file.write_text(json.dumps(plan.run_spec(run, layout)))
    command = [sys.executable, "-m", "hpstudy", "train", "--settings", str(spec_file),
               "--data-dir", str(data), "--out-dir", str(out), "--threads", str(threads),
               "--gpus", "1"]  # fmt: skip
    with log_file.open("w") as log:
        try:
            subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                           timeout=max(1.0, deadline - time.monotonic()))  # fmt: skip
            return "finished"
        except subprocess.TimeoutExpired:
            return "capped"
        except subprocess.CalledProcessError as err:
            tail = log_file.read_text()[-1500:]
            print(f"run {run.run_id} failed (exit {err.returncode}):\n{tail}", file=sys.stderr)
            return "failed"


def run_sweep(runs: list, data: Path, root: Path, slots: int, threads: int, cap_s: float) -> dict:
    """Train ``runs`` with ``slots`` jobs at a time; wall time and what finished."""
    layout = Layout(runs=str(root / "runs"), checkpoints=str(root / "ckpt"))
    env = {**os.environ, "HPSTUDY_GPU_LOCK_DIR": str(root / "locks"), "PYTHONUNBUFFERED": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)  # each job claims its own (GPU, slot)
    queue, outcomes, lock = list(runs), {}, threading.Lock()
    start = time.monotonic()
    deadline = start + cap_s

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    return
                run = queue.pop(0)
            outcome = train_job(run, layout, data, threads, env, deadline)
            with lock:
                outcomes[run.run_id] = outcome

    workers = [threading.Thread(target=worker) for _ in range(slots)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    wall = time.monotonic() - start
    counts = {k: sum(v == k for v in outcomes.values()) for k in ("finished", "capped", "failed")}
    return {"wall_s": wall, "layout": layout, **counts}


def epoch_rows(layout: Layout, run) -> list[dict]:
    """The metrics.csv rows a run wrote (its completed epochs), finished or not."""
    path = Path(layout.runs) / run.run_id / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def report_sweep(runs: list, result: dict, images: int, slots: int) -> None:
    """The sweep's wall time, its overall training images/s and images/s per setting."""
    done = result["finished"]
    per_setting: dict[str, list[float]] = {}
    trained = 0
    for run in runs:
        rows = epoch_rows(result["layout"], run)
        trained += images * len(rows)
        per_setting.setdefault(run.name, []).extend(float(r["train_images_per_s"]) for r in rows)
    notes = [f"{result['failed']} failed (logs above)"] if result["failed"] else []
    if done + result["failed"] < len(runs):
        notes.append("stopped at its cap")
    state = f"{done} of {len(runs)} runs finished" + (f" ({'; '.join(notes)})" if notes else "")
    print(f"\ngpu_slots {slots}: {result['wall_s']:.1f} s wall, {state}; "
          f"{trained / result['wall_s']:,.0f} training images/s over the sweep")  # fmt: skip
    for name, rates in per_setting.items():
        rate = f"{statistics.mean(rates):9,.0f}" if rates else "        -"
        print(f"  {name:<48} {rate} images/s per run ({len(rates)} epochs)")


def epoch_times(device: torch.device, count: int, size: int, epochs: int, threads: int) -> None:
    """ResNet18 and the custom CNN: epoch times at batch 32 and 256, fp32 and bf16."""
    split = random_split(count, size, device)
    native_bf16 = devices.cpu_has_native_bf16()
    models = {"resnet18": {"model": "resnet18", "pretrained": False},
              "custom": {"model": "custom", "kernel_width": [5, 5, 7]}}  # fmt: skip
    print(f"\nepoch times over {count} images at {size} px ({epochs} epochs each):")
    for model_name, model_settings in models.items():
        for batch in (32, 256):
            for mode in MODES:
                if mode.startswith("bf16") and device.type == "cpu" and not native_bf16:
                    continue
                times = bench_case(model_settings, split, size, batch, mode, epochs, threads)
                print(f"  {model_name:9} batch {batch:>3} {mode:19} "
                      f"{' '.join(f'{t:.3f}' for t in times)} s  "
                      f"{count / min(times):9,.0f} images/s", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny CPU run (no figures)")
    parser.add_argument("--budget", type=float, default=450, help="seconds for everything")
    parser.add_argument("--slots", type=int, nargs="+", default=[4, 2, 1])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    start = time.monotonic()
    if args.cpu_smoke:
        device, train, test, size, seeds, epochs = "cpu", 64, 32, 48, 1, 1
        slots = [2, 1]
    elif not torch.cuda.is_available():
        print("sweep_benchmark: no CUDA GPU here; run it on a GPU machine, or pass --cpu-smoke "
              "to check that it executes.", file=sys.stderr)  # fmt: skip
        return 2
    else:
        device, train, test, size, seeds, epochs = "cuda", 14_034, 3_000, 150, 3, 10
        slots = args.slots
    cores = os.cpu_count() or 1
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke test)"
    print(f"{name}, torch {torch.__version__}, {cores} CPU cores; budget {args.budget:.0f} s")
    epoch_times(torch.device(device), train, size, 1 if args.cpu_smoke else 2, cores)
    if device == "cuda":
        torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory(prefix="hpstudy-sweep-") as tmp:
        root = Path(tmp)
        data = random_processed(root / VARIANT, {"train": train, "test": test}, size)
        for i, k in enumerate(slots):
            runs = sweep_runs(seeds, epochs, device, args.precision, k)
            if i == 0:
                print(f"\nthe sweep: {len(runs)} runs ({len(runs) // seeds} settings x {seeds} "
                      f"seeds x {epochs} epochs), {args.precision}")  # fmt: skip
            left = args.budget - (time.monotonic() - start)
            cap = left / (len(slots) - i)
            if cap < 10:
                print(f"\ngpu_slots {k}: not run, the budget is spent")
                continue
            result = run_sweep(runs, data, root / f"slots-{k}", k, max(1, cores // k), cap)
            report_sweep(runs, result, train, k)
    if args.cpu_smoke:
        print("\nCPU smoke test passed: the benchmark executes; its figures mean nothing on a CPU.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
