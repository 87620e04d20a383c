"""Measure preprocessing speed (zip read + JPEG decode + resize check + .npy store).

Generates a Kaggle-layout zip of photo-like 150x150 JPEGs (quality 75, ~15 KB each, as in the
Intel dataset) in a temporary folder, then times ``preprocess_archive`` at each thread count
and prints images/s in total and per thread. Nothing is asserted: the figures are for the
notes. Usage::

    python benchmarks/preprocess_speed.py [--train 14034] [--test 3000] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from generated import photo_zip

from hpstudy.data.preprocess import preprocess_archive


def measure(zip_path: Path, work: Path, size: int, threads: int) -> tuple[int, float, float]:
    """Preprocess once; returns (images written, wall seconds, CPU seconds of all threads)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    manifest = preprocess_archive(zip_path, work / f"out-{threads}", size, threads)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return sum(split["count"] for split in manifest["splits"].values()), seconds, cpu


def main() -> int:
    """Build the zip, time each thread count, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=14034)
    parser.add_argument("--test", type=int, default=3000)
    parser.add_argument("--pred", type=int, default=0)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpstudy-bench-") as tmp:
        work = Path(tmp)
        zip_path = photo_zip(work / "bench.zip", args.train, args.test, args.pred)
        images = args.train + args.test + args.pred
        mb = zip_path.stat().st_size / 1e6
        print(f"zip: {images} JPEGs 150x150 q75, {mb:.1f} MB ({mb * 1e3 / images:.1f} KB each)")
        print(f"cpus available: {len(os.sched_getaffinity(0))}")
        for threads in args.threads:
            load = os.getloadavg()[0]  # other processes on the machine skew the figures
            count, seconds, cpu = measure(zip_path, work, args.size, threads)
            # Per CPU-second is the per-core rate even when other jobs share the cores.
            print(
                f"threads={threads}: {count} images in {seconds:.2f} s wall = "
                f"{count / seconds:,.0f} images/s; {cpu:.2f} CPU-s = "
                f"{count / cpu:,.0f} images per CPU-second (load average before: {load:.2f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
