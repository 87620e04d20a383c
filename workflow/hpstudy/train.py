"""Train one run of the sweep: ``train(settings, ...)`` and the ``hpstudy train`` command.

Outputs in ``out_dir`` (see the project contracts): params.json at the start, one metrics.csv row
per epoch (flushed at once), summary.json and model.pt at the end. A resume checkpoint is written
atomically after every epoch into ``checkpoint_dir``; a killed job started again continues from
the last complete epoch and ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hpstudy import checkpoint, devices
from hpstudy.atomic import atomic_path, atomic_write_json, atomic_write_text
from hpstudy.batches import (
    BatchOptions,
    DeviceSplit,
    eval_batches,
    load_manifest,
    load_split,
    train_batches,
)
from hpstudy.errors import HpstudyError
from hpstudy.models import build_model, count_parameters
from hpstudy.optim import OPTIMIZERS, build_loss, build_optimizer
from hpstudy.run_files import METRIC_COLUMNS, TIMING_COLUMNS  # noqa: F401 (re-exported)
from hpstudy.sweep import code_digest

LOG = logging.getLogger("hpstudy.train")
REQUIRED_SETTINGS = (
    "run_id", "experiment", "param", "value", "seed", "model", "pretrained", "weights",
    "kernel_width", "optimizer", "lr", "momentum", "weight_decay", "batch_size",
    "eval_batch_size", "epochs", "normalization", "flip", "precision", "deterministic", "device",
    "keep_checkpoint",
)  # fmt: skip


class Runtime:
    """Where and how the run computes: device, autocast dtype, grad scaler, memory layout."""

    def __init__(self, settings: dict, threads: int) -> None:
        self.device = devices.select_device(settings["device"])
        self.dtype = devices.resolve_precision(settings["precision"], self.device)
        devices.configure_backends(self.device, bool(settings["deterministic"]), threads)
        # channels_last suits cuDNN and oneDNN alike: 1.5x (custom CNN) to 4x (ResNet18 at
        # 150 px) faster training steps on a 2-core CPU, measured with benchmarks/train_speed.py
        self.channels_last = self.device.type in ("cuda", "cpu")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    def autocast(self):
        """Mixed-precision context on CUDA; a no-op for fp32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def check_settings(settings: dict) -> None:
    """Fail with one clear message when the settings dict lacks keys or has bad sizes."""
    missing = [key for key in REQUIRED_SETTINGS if key not in settings]
    if missing:
        raise HpstudyError(
            f"The run settings lack {', '.join(missing)}; pass the full settings dict of one "
            "sweep row (`hpstudy sweep` prints them) to --settings."
        )
    choices = {"model": ("custom", "resnet18"), "optimizer": OPTIMIZERS,
               "normalization": ("none", "imagenet"), "device": devices.DEVICE_CHOICES,
               "precision": devices.PRECISION_CHOICES}  # fmt: skip
    for key, allowed in choices.items():
        if settings[key] not in allowed:
            raise HpstudyError(
                f"Setting {key}: {settings[key]!r} is not known: use one of {', '.join(allowed)}."
            )
    for key in ("batch_size", "eval_batch_size", "epochs"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise HpstudyError(f"Setting {key}={settings[key]!r} must be a positive integer.")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) from the run's seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train_one_epoch(
    model,
    optimizer,
    loss_fn,
    split: DeviceSplit,
    options: BatchOptions,
    runtime: Runtime,
    seed: int,
    epoch: int,
    progress=None,
) -> dict:
    """One pass over the training split; exact per-sample mean loss and accuracy."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
    correct = torch.zeros((), dtype=torch.int64, device=runtime.device)
    for images, labels in train_batches(split, options, seed, epoch):
        with runtime.autocast():
            logits = model(images)
            loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        runtime.scaler.scale(loss).backward()
        runtime.scaler.step(optimizer)
        runtime.scaler.update()
        # accumulate on the device: no host sync per batch; the batch mean times its size
        # weights a partial last batch correctly
        loss_sum += loss.detach().double() * labels.shape[0]
        correct += (logits.argmax(1) == labels).sum()
        if progress is not None:
            progress.update(1)
    return {"loss": loss_sum.item() / len(split), "acc": correct.item() / len(split)}


def evaluate(model, loss_fn, split: DeviceSplit, options: BatchOptions, runtime: Runtime) -> dict:
    """Exact per-sample mean loss and accuracy on a split, in inference mode."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
    correct = torch.zeros((), dtype=torch.int64, device=runtime.device)
    with torch.inference_mode(), runtime.autocast():
        for images, labels in eval_batches(split, options):
            logits = model(images)
            loss_sum += loss_fn(logits.float(), labels).double() * labels.shape[0]
            correct += (logits.argmax(1) == labels).sum()
    return {"loss": loss_sum.item() / len(split), "acc": correct.item() / len(split)}


def run_epoch(epoch: int, state: dict) -> dict:
    """Train and evaluate one epoch; returns its metrics row."""
    settings, runtime, model = state["settings"], state["runtime"], state["model"]
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    n_batches = math.ceil(len(state["train"]) / state["train_options"].batch_size)
    progress = tqdm(
        total=n_batches,
        desc=f"epoch {epoch}/{settings['epochs']}",
        file=sys.stderr,
        mininterval=15,
        leave=False,
        disable=False,
    )
    start = time.perf_counter()
    train_stats = train_one_epoch(
        model,
        state["optimizer"],
        state["loss_fn"],
        state["train"],
        state["train_options"],
        runtime,
        settings["seed"],
        epoch,
        progress,
    )
    devices.synchronize(runtime.device)
    train_time = time.perf_counter() - start
    progress.close()
    test_stats = evaluate(model, state["loss_fn"], state["test"], state["eval_options"], runtime)
    eval_time = time.perf_counter() - start - train_time
    return {
        "epoch": epoch, "train_loss": train_stats["loss"], "train_acc": train_stats["acc"],
        "test_loss": test_stats["loss"], "test_acc": test_stats["acc"],
        "lr": state["optimizer"].param_groups[0]["lr"], "epoch_time_s": train_time + eval_time,
        "train_time_s": train_time, "eval_time_s": eval_time,
        "train_images_per_s": len(state["train"]) / train_time,
        "peak_memory_mb": devices.peak_memory_mb(runtime.device),
    }  # fmt: skip


def git_revision() -> str | None:
    """The commit of the code doing the training, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = out.stdout.strip() if out.returncode == 0 else ""
    return revision or None


def _finite_or_none(value: float) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else None


def summarize(
    rows: list[dict], settings: dict, params: dict, runtime: Runtime, param_count: int
) -> dict:
    """summary.json of a finished (or diverged) run; non-finite numbers become null."""
    last = rows[-1]
    accs = [(r["test_acc"], r["epoch"]) for r in rows if math.isfinite(r["test_acc"])]
    best_acc, best_epoch = max(accs, key=lambda a: (a[0], -a[1])) if accs else (None, None)
    diverged = not math.isfinite(last["train_loss"])
    total = sum(r["epoch_time_s"] for r in rows)
    return {
        "run_id": settings["run_id"], "experiment": settings["experiment"],
        "final_test_acc": _finite_or_none(last["test_acc"]), "best_test_acc": best_acc,
        "best_epoch": best_epoch, "final_train_loss": _finite_or_none(last["train_loss"]),
        "final_test_loss": _finite_or_none(last["test_loss"]), "epochs_completed": len(rows),
        "diverged": diverged, "diverged_epoch": last["epoch"] if diverged else None,
        "total_time_s": total, "mean_epoch_time_s": total / len(rows),
        "param_count": param_count, "device": runtime.device.type,
        "device_name": devices.device_name(runtime.device), "torch_version": torch.__version__,
        "git_revision": git_revision(), "peak_memory_mb": max(r["peak_memory_mb"] for r in rows),
        "settings": params,
    }  # fmt: skip


def write_metrics(path: Path, rows: list[dict]) -> None:
    """(Re)write metrics.csv atomically with the header and the given rows."""
    lines = [",".join(METRIC_COLUMNS)] + [_csv_line(row) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _csv_line(row: dict) -> str:
    # repr keeps every bit of a float, so reruns can be compared exactly
    return ",".join(repr(row[col]) for col in METRIC_COLUMNS)


def train(
    settings: dict,
    data_dir,
    out_dir,
    checkpoint_dir,
    threads: int = 1,
    weights_path=None,
    log: logging.Logger | None = None,
    gpus: int = 0,
) -> dict:
    """Train one run and write its outputs; returns the summary dict.

    ``gpus`` is the number of GPUs the calling rule holds (only used to warn when the run
    ends up on a CPU anyway).
    """
    log = log or LOG
    check_settings(settings)
    if settings["device"] in ("auto", "cuda"):
        devices.claim_gpu()  # before anything initialises CUDA
    # which scheduler job and which GPU this run got: the first thing to check on a cluster
    log.info(
        "job environment: SLURM_JOB_ID=%s CUDA_VISIBLE_DEVICES=%s",
        os.environ.get("SLURM_JOB_ID", "-"),
        os.environ.get("CUDA_VISIBLE_DEVICES", "-"),
    )
    manifest = load_manifest(data_dir)
    runtime = Runtime(settings, threads)
    if gpus > 0 and runtime.device.type == "cpu":
        log.warning("the job holds %d GPU(s) but PyTorch sees none; training on the CPU", gpus)
    seed_everything(int(settings["seed"]))
    num_classes, image_size = len(manifest["classes"]), int(manifest["image_size"])
    model = build_model(settings, num_classes, image_size, weights_path)
    model = model.to(
        runtime.device,
        memory_format=torch.channels_last if runtime.channels_last else torch.preserve_format,
    )
    out_dir, ckpt_path = Path(out_dir), checkpoint.checkpoint_path(checkpoint_dir)
    # the code digest lets `hpstudy restore` tell pulled runs of other training code apart
    params = {**settings, "dataset": manifest["name"], "image_size": image_size,
              "num_classes": num_classes, "training_code": code_digest()}  # fmt: skip
    atomic_write_json(out_dir / "params.json", params)
    state = {
        "settings": settings, "runtime": runtime, "model": model, "loss_fn": build_loss(),
        "optimizer": build_optimizer(settings, model.parameters()),
        "train": load_split(data_dir, "train", runtime.device),
        "test": load_split(data_dir, "test", runtime.device),
        "train_options": BatchOptions(settings["batch_size"], settings["normalization"],
                                      bool(settings["flip"]), runtime.channels_last),
        "eval_options": BatchOptions(settings["eval_batch_size"], settings["normalization"],
                                     False, runtime.channels_last),
    }  # fmt: skip
    rows = resume(ckpt_path, settings, state, log)
    rows = run_epochs(rows, state, out_dir / "metrics.csv", ckpt_path, log)
    summary = summarize(rows, settings, params, runtime, count_parameters(model))
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    atomic_write_json(out_dir / "summary.json", summary)
    if not settings["keep_checkpoint"]:
        ckpt_path.unlink(missing_ok=True)
    log.info(
        "run %s done: final test acc %s, diverged %s",
        settings["run_id"],
        summary["final_test_acc"],
        summary["diverged"],
    )
    return summary


def resume(ckpt_path: Path, settings: dict, state: dict, log: logging.Logger) -> list[dict]:
    """Restore from the run's checkpoint if there is a valid one; returns the rows so far."""
    saved = checkpoint.load_checkpoint(ckpt_path, settings)
    if saved is None:
        return []
    checkpoint.apply_checkpoint(
        saved, model=state["model"], optimizer=state["optimizer"], scaler=state["runtime"].scaler
    )
    log.info("resuming %s after epoch %d from %s", settings["run_id"], saved["epoch"], ckpt_path)
    return list(saved["metrics_rows"])


def run_epochs(
    rows: list[dict], state: dict, metrics_path: Path, ckpt_path: Path, log: logging.Logger
) -> list[dict]:
    """Epochs after the resumed ones; stops at the first non-finite training loss."""
    settings = state["settings"]
    write_metrics(metrics_path, rows)
    with open(metrics_path, "a") as metrics_file:
        for epoch in range(len(rows) + 1, settings["epochs"] + 1):
            row = run_epoch(epoch, state)
            rows.append(row)
            metrics_file.write(_csv_line(row) + "\n")
            metrics_file.flush()
            log.info("%s epoch %d/%d train_loss %.4f train_acc %.4f test_loss %.4f test_acc "
                     "%.4f %.1fs (%.0f img/s)", settings["run_id"], epoch, settings["epochs"],
                     row["train_loss"], row["train_acc"], row["test_loss"], row["test_acc"],
                     row["epoch_time_s"], row["train_images_per_s"])  # fmt: skip
            if not math.isfinite(row["train_loss"]):
                log.warning(
                    "%s diverged at epoch %d (training loss %s); stopping the run",
                    settings["run_id"],
                    epoch,
                    row["train_loss"],
                )
                break
            checkpoint.save_checkpoint(
                ckpt_path,
                settings=settings,
                epoch=epoch,
                model=state["model"],
                optimizer=state["optimizer"],
                scaler=state["runtime"].scaler,
                metrics_rows=rows,
            )
    return rows


def parse_settings(text: str) -> dict:
    """Settings from a JSON string or ``@file.json``."""
    source = "--settings"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text()
        except OSError as err:
            raise HpstudyError(f"Cannot read the settings file {source}: {err}.") from err
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as err:
        raise HpstudyError(f"The run settings in {source} are not valid JSON ({err}).") from err
    if not isinstance(settings, dict):
        raise HpstudyError(f"The run settings in {source} must be a JSON object.")
    return settings


def main(argv: list[str] | None = None) -> int:
    """``hpstudy train``: train one run of the sweep."""
    parser = argparse.ArgumentParser(prog="hpstudy train", description=main.__doc__)
    parser.add_argument("--settings", required=True, help="run settings: JSON or @file.json")
    parser.add_argument("--data-dir", required=True, help="processed dataset folder")
    parser.add_argument("--out-dir", required=True, help="results/runs/<run_id>")
    parser.add_argument("--checkpoint-dir", required=True, help="checkpoints/<run_id>")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--weights", default=None, help="local ResNet18 ImageNet weights file")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs held by the calling rule")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    settings = parse_settings(args.settings)
    train(
        settings,
        args.data_dir,
        args.out_dir,
        args.checkpoint_dir,
        threads=args.threads,
        weights_path=args.weights,
        gpus=args.gpus,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
