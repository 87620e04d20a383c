"""The training loop: what turns a run's settings and data into its numbers.

``build_trainer`` seeds torch and builds the model, loss and optimizer in a fixed order;
``train_one_epoch`` and ``evaluate`` are the torchvision-references pair; ``run_epoch`` gives one
row of metrics.csv. Part of the code digest of every run (:mod:`hpstudy.identity`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from hpstudy.core.paths import cache_root
from hpstudy.training import devices
from hpstudy.training.batches import BatchOptions, DeviceSplit, eval_batches, train_batches
from hpstudy.training.models import build_model
from hpstudy.training.optim import build_loss, build_optimizer, set_epoch_lr
from hpstudy.training.runtime import Runtime


@dataclass
class Trainer:
    """Everything one run trains with."""

    settings: dict
    runtime: Runtime
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    train: DeviceSplit
    test: DeviceSplit
    train_options: BatchOptions
    eval_options: BatchOptions
    val: DeviceSplit | None = None
    stopper: EarlyStopping | None = None
    net: nn.Module | None = None  # what computes the forward pass: the model, or its compiled form
    first_step_at: float | None = None  # perf_counter() when the first training step ended

    def __post_init__(self) -> None:
        if self.net is None:
            self.net = self.model


@dataclass
class EarlyStopping:
    """Stop when the validation loss has not fallen by ``min_delta`` for ``patience`` epochs,
    keeping the best epoch's weights. Its state is saved with each checkpoint, so a killed run
    resumes exactly."""

    patience: int
    min_delta: float = 0.0
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    best_model: dict | None = None

    def update(self, epoch: int, val_loss: float, model: nn.Module) -> bool:
        """Account for one epoch's validation loss; True when training should stop."""
        if val_loss < self.best_loss - self.min_delta:  # False for a NaN loss
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_model = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        self.stopped = self.bad_epochs >= self.patience
        return self.stopped

    def state_dict(self) -> dict:
        """What a checkpoint keeps of it."""
        return {
            k: getattr(self, k)
            for k in ("best_loss", "best_epoch", "bad_epochs", "stopped", "best_model")
        }

    def load_state_dict(self, state: dict) -> None:
        """Put back what :meth:`state_dict` saved."""
        for key, value in state.items():
            setattr(self, key, value)


def joined(first: DeviceSplit, second: DeviceSplit) -> DeviceSplit:
    """Two splits as one (the train split, then the validation split)."""
    return DeviceSplit(
        torch.cat([first.images, second.images]), torch.cat([first.labels, second.labels])
    )


def build_trainer(
    settings: dict,
    runtime: Runtime,
    train: DeviceSplit,
    test: DeviceSplit,
    num_classes: int,
    image_size: int,
    weights_path=None,
    val: DeviceSplit | None = None,
) -> Trainer:
    """Seed torch from the run's seed, then build its model, loss and optimizer. With
    ``train_on: train+val`` the validation split joins the training split (and nothing is left
    to validate on); with ``early_stopping`` the validation loss decides when to stop."""
    if settings["train_on"] == "train+val" and val is not None:
        train, val = joined(train, val), None
    stopper = None
    if settings["early_stopping"]:
        stopper = EarlyStopping(
            int(settings["early_stopping"]["patience"]),
            float(settings["early_stopping"].get("min_delta", 0.0)),
        )
    torch.manual_seed(int(settings["seed"]))
    model = build_model(settings, num_classes, image_size, weights_path)
    model = model.to(runtime.device, memory_format=runtime.memory_format)
    normalization, channels_last = settings["normalization"], runtime.channels_last
    return Trainer(
        net=compiled(model) if settings["compile"] else model,
        settings=settings,
        runtime=runtime,
        model=model,
        loss_fn=build_loss(),
        optimizer=build_optimizer(settings, model.parameters()),
        train=train,
        test=test,
        train_options=BatchOptions(
            settings["batch_size"], normalization, bool(settings["flip"]), channels_last
        ),
        eval_options=BatchOptions(settings["eval_batch_size"], normalization, False, channels_last),
        val=val,
        stopper=stopper,
    )


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile(model)``: its parameters are the model's own, so the weights saved stay
    the uncompiled module's. The compiled code is cached on disk (Inductor's cache, shared by
    every job of the user: ``TORCHINDUCTOR_CACHE_DIR``, by default below hpstudy's cache
    folder); the last partial batch and evaluation compile their own graphs once."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
    return torch.compile(model)


def train_one_epoch(trainer: Trainer, epoch: int, progress=None) -> dict:
    """One pass over the training split; exact per-sample mean loss and accuracy."""
    model, runtime, split = trainer.net, trainer.runtime, trainer.train
    set_epoch_lr(trainer.optimizer, trainer.settings, epoch)
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
    correct = torch.zeros((), dtype=torch.int64, device=runtime.device)
    for images, labels in train_batches(
        split, trainer.train_options, trainer.settings["seed"], epoch
    ):
        with runtime.autocast():
            logits = model(images)
            loss = trainer.loss_fn(logits, labels)
        trainer.optimizer.zero_grad(set_to_none=True)
        runtime.scaler.scale(loss).backward()
        runtime.scaler.step(trainer.optimizer)
        runtime.scaler.update()
        if trainer.first_step_at is None:
            trainer.first_step_at = time.perf_counter()
        # accumulate on the device: no host sync per batch; the batch mean times its size
        # weights a partial last batch correctly
        loss_sum += loss.detach().double() * labels.shape[0]
        correct += (logits.argmax(1) == labels).sum()
        if progress is not None:
            progress.update(1)
    return {"loss": loss_sum.item() / len(split), "acc": correct.item() / len(split)}


def evaluate(
    model: nn.Module,
    loss_fn: nn.Module,
    split: DeviceSplit,
    options: BatchOptions,
    runtime: Runtime,
) -> dict:
    """Exact per-sample mean loss and accuracy on a split, in inference mode, and each image's
    predicted class and its probability (``pred``, ``prob``: tensors on the CPU)."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
    correct = torch.zeros((), dtype=torch.int64, device=runtime.device)
    preds, probs = [], []
    with torch.inference_mode(), runtime.autocast():
        for images, labels in eval_batches(split, options):
            logits = model(images)
            loss_sum += loss_fn(logits.float(), labels).double() * labels.shape[0]
            pred = logits.argmax(1)
            prob = torch.softmax(logits.float(), 1).gather(1, pred[:, None])[:, 0]
            correct += (pred == labels).sum()
            preds.append(pred)
            probs.append(prob)
    return {
        "loss": loss_sum.item() / len(split),
        "acc": correct.item() / len(split),
        "pred": torch.cat(preds).cpu(),
        "prob": torch.cat(probs).cpu(),
    }


def run_epoch(trainer: Trainer, epoch: int) -> tuple[dict, dict]:
    """Train and evaluate one epoch; returns its metrics row and the test evaluation (with
    each image's prediction)."""
    runtime = trainer.runtime
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    n_batches = math.ceil(len(trainer.train) / trainer.train_options.batch_size)
    progress = tqdm(
        total=n_batches,
        desc=f"epoch {epoch}/{trainer.settings['epochs']}",
        file=sys.stderr,
        mininterval=15,
        leave=False,
    )
    start = time.perf_counter()
    train_stats = train_one_epoch(trainer, epoch, progress)
    devices.synchronize(runtime.device)
    train_time = time.perf_counter() - start
    progress.close()
    val_stats = {"loss": math.nan, "acc": math.nan}
    if trainer.val is not None:
        val_stats = evaluate(
            trainer.net, trainer.loss_fn, trainer.val, trainer.eval_options, runtime
        )
    test_stats = evaluate(trainer.net, trainer.loss_fn, trainer.test, trainer.eval_options, runtime)
    eval_time = time.perf_counter() - start - train_time
    row = {
        "epoch": epoch, "train_loss": train_stats["loss"], "train_acc": train_stats["acc"],
        "val_loss": val_stats["loss"], "val_acc": val_stats["acc"],
        "test_loss": test_stats["loss"], "test_acc": test_stats["acc"],
        "lr": trainer.optimizer.param_groups[0]["lr"], "epoch_time_s": train_time + eval_time,
        "train_time_s": train_time, "eval_time_s": eval_time,
        "train_images_per_s": len(trainer.train) / train_time,
        "peak_memory_mb": devices.peak_memory_mb(runtime.device),
    }  # fmt: skip
    return row, test_stats
