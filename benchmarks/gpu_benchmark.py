"""GPU benchmark of the project's training path (prepared for an H200; under 5 minutes).

ResNet18 and the seed's custom CNN at 150x150 on random data of the real size (14,034 training
images, held on the GPU as one uint8 tensor exactly as hpstudy trains), batch 32 and 256, fp32
(NCHW, no TF32) against bf16 autocast + channels_last, 3 epochs each, through hpstudy's own
``train_one_epoch``. Prints epoch times, images/s and achieved TFLOP/s (FLOPs counted with
FlopCounterMode). Target: a ResNet18 epoch over 14,034 images in <= 1 s.

    python benchmarks/gpu_benchmark.py              # on a CUDA machine
    python benchmarks/gpu_benchmark.py --cpu-smoke  # tiny run on a CPU: checks it executes
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hpstudy.training.batches import DeviceSplit
from hpstudy.training.identity import canonical_settings
from hpstudy.training.loop import build_trainer, train_one_epoch
from hpstudy.training.models import build_model
from hpstudy.training.runtime import Runtime

MODES = {"fp32": ("fp32", False), "bf16+channels_last": ("bf16", True)}


def random_split(count: int, size: int, device: torch.device) -> DeviceSplit:
    """Random uint8 images and labels, generated on the device."""
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (count, size, size, 3), dtype=torch.uint8, device=device,
                           generator=generator)  # fmt: skip
    labels = torch.randint(0, 6, (count,), device=device, generator=generator)
    return DeviceSplit(images, labels)


def flops_per_image(model_settings: dict, size: int, device: torch.device) -> float:
    """Training FLOPs (forward + backward) per image, counted on a batch of two."""
    model = build_model(canonical_settings(model_settings), 6, size).to(device).train()
    images = torch.rand(2, 3, size, size, device=device)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(
            model(images), torch.zeros(2, dtype=torch.long, device=device)
        ).backward()
    return counter.get_total_flops() / 2


def bench_case(model_settings, split, size, batch, mode, epochs, threads) -> list[float]:
    """Epoch times of one (model, batch, precision) case through hpstudy's training loop."""
    precision, channels_last = MODES[mode]
    device_pref = split.images.device.type
    settings = canonical_settings({**model_settings, "weight_decay": 0.0, "batch_size": batch,
                                   "device": device_pref, "precision": precision})  # fmt: skip
    settings["seed"] = 0
    runtime = Runtime.for_settings(settings, threads)
    runtime.channels_last = channels_last and runtime.device.type == "cuda"
    trainer = build_trainer(settings, runtime, split, split, 6, size)
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_one_epoch(trainer, epoch)
        times.append(time.perf_counter() - start)  # train_one_epoch ends with a host sync
    return times


def main() -> int:
    """Run every case and print a table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny CPU run (no figures)")
    parser.add_argument("--images", type=int, default=14_034)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.cpu_smoke:
        device, count, size, epochs, batches = torch.device("cpu"), 64, 64, 1, (32,)
    elif not torch.cuda.is_available():
        print("gpu_benchmark: no CUDA GPU here; run it on a GPU machine, or pass --cpu-smoke "
              "to check that it executes.", file=sys.stderr)  # fmt: skip
        return 2
    else:
        device, count, size, epochs = torch.device("cuda"), args.images, 150, args.epochs
        batches = (32, 256)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke test)"
    print(f"{name}, torch {torch.__version__}, {count} images {size}x{size}, {epochs} epochs")
    split = random_split(count, size, device)
    models = {"resnet18": {"model": "resnet18", "pretrained": False},
              "custom": {"model": "custom", "kernel_width": [5, 5, 7]}}  # fmt: skip
    print(
        f"{'model':9} {'batch':>5} {'mode':19} {'epoch times (s)':28} {'img/s':>8} {'TFLOP/s':>8}"
    )
    for model_name, model_settings in models.items():
        per_image = flops_per_image(model_settings, size, device)
        for batch in batches:
            for mode in MODES:
                times = bench_case(model_settings, split, size, batch, mode, epochs, 4)
                best = min(times)
                print(f"{model_name:9} {batch:>5} {mode:19} "
                      f"{' '.join(f'{t:.3f}' for t in times):28} {count / best:8.0f} "
                      f"{per_image * count / best / 1e12:8.2f}", flush=True)  # fmt: skip
    if args.cpu_smoke:
        print("CPU smoke test passed: the benchmark executes; its figures mean nothing on a CPU.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
