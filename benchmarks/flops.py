"""Achieved training GFLOP/s of the custom CNN and ResNet18 against a large fp32 matmul.

FLOPs of one forward + backward step are counted with ``torch.utils.flop_counter.FlopCounterMode``
(convolutions and matrix products; elementwise work such as BatchNorm, ReLU and pooling is not
counted, so the figure is the useful-math rate). All three are timed in the same run, on the same
machine, with the same threads.

    .venv/bin/python benchmarks/flops.py
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hpstudy.training.identity import canonical_settings
from hpstudy.training.models import build_model


def step_flops(model, images, labels) -> int:
    """FLOPs of one training step (forward, loss, backward)."""
    loss_fn = torch.nn.CrossEntropyLoss()
    with FlopCounterMode(display=False) as counter:
        loss_fn(model(images), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def timed_steps(model, images, labels, steps: int) -> float:
    """Mean seconds per training step (Adam), after one warm-up step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def matmul_gflops(size: int, repeats: int) -> float:
    """GFLOP/s of a square fp32 matrix product (what the hardware and BLAS can do)."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    """Print the achieved GFLOP/s of both models and of the matmul."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--matmul-size", type=int, default=4096)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peak = matmul_gflops(args.matmul_size, 5)
    print(f"torch {torch.__version__}, {args.threads} threads; fp32 matmul "
          f"{args.matmul_size}x{args.matmul_size}: {peak:.1f} GFLOP/s")  # fmt: skip
    cases = [("custom", {"model": "custom", "kernel_width": [5, 5, 7]}, 64),
             ("resnet18", {"model": "resnet18", "pretrained": False}, 32)]  # fmt: skip
    for name, settings, batch in cases:
        model = build_model(canonical_settings(settings), 6, args.image_size).train()
        images = torch.rand(batch, 3, args.image_size, args.image_size)
        labels = torch.randint(0, 6, (batch,))
        flops = step_flops(model, images, labels)
        seconds = timed_steps(model, images, labels, args.steps)
        rate = flops / seconds / 1e9
        print(f"{name}: batch {batch} at {args.image_size}px, {flops / batch / 1e9:.3f} GFLOP "
              f"per image per training step, {seconds:.2f} s/step, {batch / seconds:.1f} img/s, "
              f"{rate:.1f} GFLOP/s = {100 * rate / peak:.0f}% of the matmul")  # fmt: skip
    print(f"fp32 matmul again (drift check): {matmul_gflops(args.matmul_size, 5):.1f} GFLOP/s")


if __name__ == "__main__":
    main()
