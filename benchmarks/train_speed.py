"""One training epoch of the seed's custom CNN: this project's data path against the seed's.

Generates a Kaggle-layout dataset of the real size (14,034 train / 3,000 test JPEGs, 150x150,
six classes) and the processed arrays decoded from those same JPEGs, then in one run on the same
machine with the same threads and the same model measures:

- the data path alone (batches of 256 delivered per second, no model): the seed's
  ``ImageFolder`` + ``Resize((150, 150))`` + ``ToTensor`` + ``DataLoader(num_workers=0,
  shuffle=True)`` against hpstudy's uint8 tensor + seeded on-device gather;
- one training epoch at batch 256 (Adam lr 1e-4, cross-entropy) on each path: the seed's in
  fp32, ours in each ``--precision`` (default fp32, and bf16 autocast where the CPU has native
  bf16), and with ``--compile`` also under ``torch.compile``, its compile time (from a cold
  Inductor cache) counted in the epoch and also printed apart.

    .venv/bin/python benchmarks/train_speed.py --compile           # full size (minutes)
    .venv/bin/python benchmarks/train_speed.py --train-images 2048 # quick check
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from generated import CLASSES, write_processed
from PIL import Image

from hpstudy.training import devices
from hpstudy.training.arrays import load_split
from hpstudy.training.batches import BatchOptions, train_batches
from hpstudy.training.identity import canonical_settings
from hpstudy.training.loop import build_trainer, train_one_epoch
from hpstudy.training.models import build_model
from hpstudy.training.optim import build_loss, build_optimizer
from hpstudy.training.runtime import Runtime

# the post's CNN and optimiser (Adam, lr 1e-4) on the CPU, in fp32, seed 0
SETTINGS = {**canonical_settings({"weight_decay": 0.0, "device": "cpu"}), "seed": 0}


def photo_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random image (compresses like a photo, unlike pure noise)."""
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    noisy = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, size=(size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def generate(root: Path, counts: dict[str, int], size: int = 150) -> Path:
    """JPEG folders seg_train/seg_test (the seed's input) and processed arrays (ours)."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, count in counts.items():
        xs, ys = np.empty((count, size, size, 3), np.uint8), np.arange(count) % len(CLASSES)
        for i in range(count):
            folder = root / f"seg_{split}" / CLASSES[ys[i]]
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{i}.jpg"
            Image.fromarray(photo_like(rng, size)).save(path, quality=75)
            with Image.open(path) as img:  # ours holds exactly what the JPEG decodes to
                xs[i] = np.asarray(img.convert("RGB"))
        splits[split] = (xs, ys)
    return write_processed(root / "processed", splits, size)


def seed_loader(root: Path, batch_size: int):
    """The seed post's data pipeline."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.Resize((150, 150)), transforms.ToTensor()])
    dataset = datasets.ImageFolder(str(root / "seg_train"), transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)


def time_data_paths(root: Path, processed: Path, batch_size: int) -> dict:
    """Batches per second of each data path over one epoch, no model."""
    start = time.perf_counter()
    batches = sum(1 for _ in seed_loader(root, batch_size))
    seed_rate = batches / (time.perf_counter() - start)
    load_start = time.perf_counter()
    split = load_split(processed, "train", torch.device("cpu"))
    load_s = time.perf_counter() - load_start
    start = time.perf_counter()
    options = BatchOptions(batch_size, channels_last=True)  # the layout train() uses on a CPU
    batches = sum(1 for _ in train_batches(split, options, seed=0, epoch=1))
    ours_rate = batches / (time.perf_counter() - start)
    # sensitivity check: ToTensor's small ops pay the intra-op thread pool's wake-up cost, so
    # also time the seed's path with one thread (what a tuned seed could have had)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    batches = sum(1 for _ in seed_loader(root, batch_size))
    seed_one_thread = batches / (time.perf_counter() - start)
    torch.set_num_threads(threads)
    return {"seed_batches_per_s": seed_rate, "ours_batches_per_s": ours_rate,
            "ours_one_time_load_s": load_s, "ratio": ours_rate / seed_rate,
            "seed_one_thread_batches_per_s": seed_one_thread}  # fmt: skip


def fresh_model():
    torch.manual_seed(0)
    model = build_model(SETTINGS, len(CLASSES), 150)
    return model, build_optimizer(SETTINGS, model.parameters()), build_loss()


def seed_epoch(root: Path, batch_size: int) -> float:
    """Seconds for one training epoch as the seed's code ran it."""
    model, optimizer, loss_fn = fresh_model()
    model.train()
    start = time.perf_counter()
    for images, labels in seed_loader(root, batch_size):
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def our_epoch(processed: Path, batch_size: int, threads: int, precision: str = "fp32",
              compile: bool = False) -> tuple[float, float]:  # fmt: skip
    """Seconds for one training epoch through hpstudy's train_one_epoch, and for its first
    step (which, compiled, includes compiling the model)."""
    settings = {**SETTINGS, "batch_size": batch_size, "precision": precision, "compile": compile}
    runtime = Runtime.for_settings(settings, threads)
    train, test = (load_split(processed, s, runtime.device) for s in ("train", "test"))
    trainer = build_trainer(settings, runtime, train, test, len(CLASSES), 150)
    start = time.perf_counter()
    train_one_epoch(trainer, 1)
    return time.perf_counter() - start, trainer.first_step_at - start


def main() -> None:
    """Generate the data, time both paths, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=14_034)
    parser.add_argument("--test-images", type=int, default=3_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-epoch", action="store_true", help="data paths only")
    native = ["fp32", "bf16"] if devices.cpu_has_native_bf16() else ["fp32"]
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=["fp32", "bf16"],
        default=native,
        help=f"our epoch's precisions (default here: {' '.join(native)})",
    )
    parser.add_argument("--compile", action="store_true", help="also each precision compiled")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = args.train_images
    print(f"torch {torch.__version__}, {args.threads} threads, {n} train images, batch "
          f"{args.batch_size}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hpstudy-bench-") as tmp:
        start = time.perf_counter()
        processed = generate(Path(tmp), {"train": n, "test": args.test_images})
        print(f"generated JPEG folders and processed arrays in {time.perf_counter() - start:.0f} s")
        data = time_data_paths(Path(tmp), processed, args.batch_size)
        print(f"data path: seed {data['seed_batches_per_s']:.2f} batches/s "
              f"({data['seed_batches_per_s'] * args.batch_size:.0f} img/s), ours "
              f"{data['ours_batches_per_s']:.2f} batches/s "
              f"({data['ours_batches_per_s'] * args.batch_size:.0f} img/s): "
              f"{data['ratio']:.1f}x (ours also loads the split once: "
              f"{data['ours_one_time_load_s']:.2f} s)")  # fmt: skip
        print(
            f"  (seed data path with 1 intra-op thread: "
            f"{data['seed_one_thread_batches_per_s']:.2f} batches/s; ours is "
            f"{data['ours_batches_per_s'] / data['seed_one_thread_batches_per_s']:.1f}x that)"
        )
        if args.skip_epoch:
            return
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")  # a cold cache
        seed_s = seed_epoch(Path(tmp), args.batch_size)
        steps = -(-n // args.batch_size)
        print(f"training epoch: seed {seed_s:.1f} s ({n / seed_s:.1f} img/s, fp32)")
        for precision in args.precision:
            for compile in (False, True) if args.compile else (False,):
                ours_s, first_s = our_epoch(
                    processed, args.batch_size, args.threads, precision, compile
                )
                label = precision + (" + compile" if compile else "")
                extra = ""
                if compile:  # the first step's excess over an average later step
                    compile_s = first_s - (ours_s - first_s) / (steps - 1)
                    extra = f"; compiling ~{compile_s:.1f} s of it (first step {first_s:.1f} s)"
                print(f"  ours, {label:<16} {ours_s:6.1f} s ({n / ours_s:6.1f} img/s): "
                      f"{seed_s / ours_s:.2f}x the seed's path{extra}")  # fmt: skip


if __name__ == "__main__":
    main()
