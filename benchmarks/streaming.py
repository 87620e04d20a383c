"""Training on more data than memory: streamed against in-memory throughput, and peak memory.

Generates two processed datasets of random 150 px images (``--workdir``, default a temporary
folder): a *large* one whose train split is ``--train-gb`` (default 6 GB), three times the
memory budget the trainer is given (``--budget-gb``, 2 GB, set as ``HPSTUDY_MEMORY_BUDGET_MB``),
and a *small* one of ``--fits-gb`` (0.5 GB) that fits. Each measurement runs in a process of
its own, training the custom CNN for ``--steps`` batches of ``--batch-size`` (256) after two
warm-up batches, exactly as a training job does (``load_splits``, ``build_trainer``, the
epoch's batches), and prints:

- images/s in memory and streamed on the small split (the cost of streaming itself);
- images/s streamed on the large split under the budget (``in_memory: auto`` streams it);
- each process's peak anonymous memory (``RssAnon``, sampled every 20 ms: pages of a read
  file are cache, not the job's own memory, so ``ru_maxrss`` would overstate it) and ``VmHWM``.

The arrays are evicted from the page cache before each measurement (``posix_fadvise``), so the
streamed figures include the reads. It says which CPU it ran on (native bf16 or AVX2 only).
Nothing is asserted. Usage (full size; needs ~7 GB of disk)::

    python benchmarks/streaming.py [--train-gb 6] [--budget-gb 2] [--fits-gb 0.5]
        [--batch-size 256] [--steps 20] [--threads 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CLASSES = 6
CHUNK_IMAGES = 2048  # images generated and written at a time


def write_dataset(folder: Path, train_bytes: float, size: int) -> Path:
    """A processed dataset (manifest, train and test arrays) with a train split of about
    ``train_bytes``; written in chunks, hashed as written."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "manifest.json").is_file():
        return folder
    rng = np.random.default_rng(0)
    image = size * size * 3
    counts = {"train": max(1, int(train_bytes // image)), "test": 512}
    digests, sizes, splits = {}, {}, {}
    for split, count in counts.items():
        x_path = folder / f"{split}_x.npy"
        array = np.lib.format.open_memmap(x_path, "w+", np.uint8, (count, size, size, 3))
        for start in range(0, count, CHUNK_IMAGES):
            stop = min(start + CHUNK_IMAGES, count)
            array[start:stop] = rng.integers(0, 256, (stop - start, size, size, 3), np.uint8)
        array.flush()
        del array
        np.save(folder / f"{split}_y.npy", rng.integers(0, CLASSES, count).astype(np.int64))
        for name in (f"{split}_x.npy", f"{split}_y.npy"):
            digests[name], sizes[name] = file_sha256(folder / name), (folder / name).stat().st_size
        splits[split] = {"count": count, "x": f"{split}_x.npy", "y": f"{split}_y.npy"}
    manifest = {
        "name": folder.name, "image_size": size, "classes": [f"c{i}" for i in range(CLASSES)],
        "splits": splits, "sha256": digests, "bytes": sizes,
    }  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(16 << 20):
            digest.update(block)
    return digest.hexdigest()


def evict(folder: Path) -> None:
    """Drop the arrays' pages from the page cache (their own files: no privileges needed)."""
    for path in folder.glob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cpu_description() -> str:
    """The CPU's name and whether it computes bf16 natively or has AVX2 only."""
    name, flags = "unknown CPU", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    kind = (
        "avx512_bf16" if "avx512_bf16" in flags else "AVX2 only" if "avx2" in flags else "no AVX2"
    )
    return f"{name} ({kind}, {os.cpu_count()} logical CPUs)"


class AnonPeak:
    """The process's peak RssAnon, sampled in a thread."""

    def __init__(self, every_s: float = 0.02) -> None:
        self.peak, self.every_s, self.done = 0, every_s, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def status(key: str) -> int:
        """A /proc/self/status entry in bytes."""
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.status("RssAnon"))
            time.sleep(self.every_s)


def measure(data: Path, in_memory, batch_size: int, steps: int, threads: int) -> dict:
    """Train ``steps`` batches (after two warm-up ones) as a job does; images/s and memory."""
    peak = AnonPeak()
    import torch

    from hpstudy.training.arrays import load_manifest
    from hpstudy.training.batches import train_batches
    from hpstudy.training.identity import canonical_settings
    from hpstudy.training.loop import build_trainer
    from hpstudy.training.runtime import Runtime
    from hpstudy.training.splits import load_splits, streamed_images

    settings = canonical_settings(
        {"device": "cpu", "batch_size": batch_size, "in_memory": in_memory}
    )
    settings["seed"] = 0
    manifest = load_manifest(data)
    runtime = Runtime.for_settings(settings, threads)
    before = AnonPeak.status("RssAnon")  # torch imported, no data yet
    start = time.perf_counter()
    train, test, val = load_splits(settings, manifest, data, runtime.device)
    loaded = time.perf_counter() - start
    trainer = build_trainer(settings, runtime, train, test, CLASSES, int(manifest["image_size"]))
    streamed = streamed_images(trainer.train)
    for images in streamed:
        images.plan_epoch(0, 1, batch_size)
    trainer.model.train()
    timed, count = None, 0
    for number, (images, labels) in enumerate(
        train_batches(trainer.train, trainer.train_options, 0, 1)
    ):
        if number == 2:
            timed = time.perf_counter()
        if number == steps + 2:
            break
        loss = trainer.loss_fn(trainer.model(images), labels)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        count += labels.shape[0] if number >= 2 else 0
    elapsed = time.perf_counter() - timed
    for images in streamed_images(trainer.train, trainer.test):
        images.close()
    peak.done.set()
    return {
        "streamed": bool(streamed), "images_per_s": count / elapsed, "load_s": loaded,
        "peak_rss_anon_mb": max(peak.peak, AnonPeak.status("RssAnon")) / 2**20,
        "vm_hwm_mb": AnonPeak.status("VmHWM") / 2**20, "start_rss_anon_mb": before / 2**20,
        "torch_threads": torch.get_num_threads(),
    }  # fmt: skip


def run_child(args, data: Path, in_memory: str, budget_mb: float) -> dict:
    """:func:`measure` in a fresh process (its own peak memory), under the budget."""
    evict(data)
    env = {**os.environ, "HPSTUDY_MEMORY_BUDGET_MB": str(budget_mb)}
    command = [sys.executable, __file__, "--measure", str(data), "--in-memory", in_memory,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--threads", str(args.threads)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate the data, measure in child processes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-gb", type=float, default=6.0)
    parser.add_argument("--budget-gb", type=float, default=2.0)
    parser.add_argument("--fits-gb", type=float, default=0.5)
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", help="where the datasets are written (kept for reuse)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--in-memory", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        setting = {"true": True, "false": False}.get(args.in_memory, args.in_memory)
        print(json.dumps(measure(Path(args.measure), setting, args.batch_size, args.steps,
                                 args.threads)))  # fmt: skip
        return
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="hpstudy-stream-"))
    budget_mb = args.budget_gb * 1024
    print(f"CPU: {cpu_description()}")
    started = time.perf_counter()
    large = write_dataset(
        root / f"large-{args.train_gb:g}gb", args.train_gb * 2**30, args.image_size
    )
    small = write_dataset(root / f"small-{args.fits_gb:g}gb", args.fits_gb * 2**30, args.image_size)
    print(f"datasets in {root} ({time.perf_counter() - started:.0f} s to write)")
    print(f"custom CNN, {args.image_size} px, batch {args.batch_size}, {args.steps} timed batches, "
          f"{args.threads} threads, memory budget {budget_mb:.0f} MB")  # fmt: skip
    rows = [
        (f"small ({args.fits_gb:g} GB), in memory", run_child(args, small, "true", budget_mb)),
        (f"small ({args.fits_gb:g} GB), streamed", run_child(args, small, "false", budget_mb)),
        (f"large ({args.train_gb:g} GB), auto", run_child(args, large, "auto", budget_mb)),
    ]
    print(f"{'split':<28} {'mode':>9} {'images/s':>9} {'load s':>7} {'RssAnon MB':>11} "
          f"{'at start':>9} {'VmHWM MB':>9}")  # fmt: skip
    for label, r in rows:
        mode = "streamed" if r["streamed"] else "memory"
        print(f"{label:<28} {mode:>9} {r['images_per_s']:>9.1f} {r['load_s']:>7.2f} "
              f"{r['peak_rss_anon_mb']:>11.0f} {r['start_rss_anon_mb']:>9.0f} "
              f"{r['vm_hwm_mb']:>9.0f}")  # fmt: skip

    ratio = rows[1][1]["images_per_s"] / rows[0][1]["images_per_s"]
    print(f"streamed / in-memory throughput on the small split: {ratio * 100:.0f} %")
    large, small = rows[2][1], rows[1][1]
    within = large["peak_rss_anon_mb"] <= budget_mb
    print(
        f"large split streamed: peak RssAnon {large['peak_rss_anon_mb']:.0f} MB "
        f"({large['start_rss_anon_mb']:.0f} MB before any data: torch, the process), "
        f"{'within' if within else 'OVER'} the {budget_mb:.0f} MB budget; the small split "
        f"streamed peaks at {small['peak_rss_anon_mb']:.0f} MB: the data's size does not "
        "reach the job's memory (model, activations and torch come on top of any budget)"
    )
    # fmt: skip


if __name__ == "__main__":
    main()
