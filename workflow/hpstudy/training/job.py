"""Train one run: ``train(spec, data_dir, out_dir)`` and the ``hpstudy train`` command.

The run's settings file (written where the sweep is built, :mod:`hpstudy.sweep.plan`) is trusted as
it is: the config was validated there. Outputs in ``out_dir``: params.json at the start,
metrics.csv rewritten atomically after every epoch, model.pt, params.json again and, last,
summary.json. A resume checkpoint is written after every epoch; a killed job started again
continues from the last complete epoch and ends with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from hpstudy.core.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clean_stale_temps,
)
from hpstudy.core.errors import HpstudyError
from hpstudy.core.paths import PREDICTIONS
from hpstudy.core.run_record import METRIC_COLUMNS, divergence
from hpstudy.training import checkpoint, devices
from hpstudy.training.arrays import load_manifest
from hpstudy.training.channels import (
    adapt_to_channels,
    gray_as_rgb,
    input_channels,
    model_input_channels,
)
from hpstudy.training.class_weight import class_weighted_loss
from hpstudy.training.identity import canonical_json, trajectory_identity
from hpstudy.training.loop import Trainer, build_trainer, evaluate, run_epoch
from hpstudy.training.models import parameter_counts
from hpstudy.training.run_lock import run_lock
from hpstudy.training.runtime import Runtime, precision_name
from hpstudy.training.split_scores import PredictionRecorder, epoch_scores, summary_scores
from hpstudy.training.splits import load_splits, streamed_images

LOG = logging.getLogger("hpstudy.training.job")


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


def _best(rows: list[dict], column: str, pick) -> tuple[float | None, int | None]:
    values = [(r[column], r["epoch"]) for r in rows if math.isfinite(r[column])]
    if not values:
        return None, None
    return pick(values, key=lambda v: (v[0], -v[1]) if pick is max else (v[0], v[1]))


def device_seconds(rows: list[dict], startup_s: float, final_eval_s: float) -> dict:
    """What the run cost its device, in seconds: training and evaluation (every epoch's, a
    resumed run's earlier epochs included, and a final evaluation run after the epochs) and
    this process's start-up (from its start to its first epoch)."""
    # rows from a checkpoint written before the split was recorded hold the epoch time only
    train_s = sum(r.get("train_time_s", r["epoch_time_s"]) for r in rows)
    eval_s = sum(r.get("eval_time_s", 0.0) for r in rows) + final_eval_s
    return {
        "train_device_s": train_s, "eval_device_s": eval_s, "startup_device_s": startup_s,
        "device_s": train_s + eval_s + startup_s,
    }  # fmt: skip


def job_seconds(trained_here: list[dict], origin: float) -> dict:
    """This process's wall time to its last output but the summary (``job_wall_s``), the part
    that is not its epochs (``job_fixed_s``: start-up, a final evaluation, writing outputs),
    the ``epochs_trained`` here, and its start and end (Unix time; the gaps between jobs are
    the scheduler's share): what :mod:`hpstudy.sweep.run_times` prices a run from."""
    wall = time.perf_counter() - origin
    epochs_s = sum(r["epoch_time_s"] for r in trained_here)
    now = time.time()
    return {"job_wall_s": wall, "job_fixed_s": max(0.0, wall - epochs_s),
            "epochs_trained": len(trained_here), "job_started_at": now - wall,
            "job_ended_at": now}  # fmt: skip


def summarize(rows: list[dict], params: dict, trainer: Trainer, cost: dict | None = None) -> dict:
    """summary.json: every per-run number (non-finite ones become null) and the run's facts;
    ``cost``: :func:`device_seconds`.

    ``final_*`` describe the weights the run keeps: its last epoch's, or with early stopping
    its best epoch's. ``best_test_acc`` picks an epoch on the test set: it is kept for the
    comparison with the post, which reported it, and never used to choose anything."""
    stopper = trainer.stopper
    kept = rows[stopper.best_epoch - 1] if stopper and stopper.best_epoch else rows[-1]
    best_acc, best_epoch = _best(rows, "test_acc", max)
    min_loss, min_loss_epoch = _best(rows, "test_loss", min)
    best_val_acc, best_val_epoch = _best(rows, "val_acc", max)
    min_val_loss, min_val_loss_epoch = _best(rows, "val_loss", min)
    reason = divergence(rows, params["data"]["num_classes"])
    diverged = reason is not None
    total = sum(r["epoch_time_s"] for r in rows)
    device = trainer.runtime.device
    return {
        "run_id": params["run_id"], "final_test_acc": _finite_or_none(kept["test_acc"]),
        "best_test_acc": best_acc, "best_epoch": best_epoch,
        "final_train_loss": _finite_or_none(kept["train_loss"]),
        "final_test_loss": _finite_or_none(kept["test_loss"]), "min_test_loss": min_loss,
        "min_test_loss_epoch": min_loss_epoch,
        "final_val_acc": _finite_or_none(kept["val_acc"]),
        "final_val_loss": _finite_or_none(kept["val_loss"]), "best_val_acc": best_val_acc,
        "best_val_epoch": best_val_epoch, "min_val_loss": min_val_loss,
        "min_val_loss_epoch": min_val_loss_epoch, "kept_epoch": kept["epoch"],
        "stopped_early": bool(stopper and stopper.stopped), "epochs_completed": len(rows),
        "diverged": diverged, "diverged_epoch": rows[-1]["epoch"] if diverged else None,
        "diverged_reason": reason,
        "total_time_s": total, "mean_epoch_time_s": total / len(rows),
        **parameter_counts(trainer.model),
        "peak_memory_mb": max(r["peak_memory_mb"] for r in rows), "device": device.type,
        "precision": precision_name(trainer.runtime.dtype),
        "device_name": devices.device_name(device), "torch_version": torch.__version__,
        "git_revision": git_revision(), **summary_scores(rows, kept), **(cost or {}),
        "params": params,
    }  # fmt: skip


def metrics_text(rows: list[dict]) -> str:
    """metrics.csv: the header and one line per epoch; repr keeps every bit of a float."""
    lines = [",".join(METRIC_COLUMNS)]
    # a row resumed from a checkpoint written before a column existed leaves it empty (nan)
    lines += [",".join(repr(row.get(col, math.nan)) for col in METRIC_COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def resume(spec: dict, trainer: Trainer, log: logging.Logger) -> list[dict]:
    """Restore the newest sound checkpoint of the run's trajectory; returns the rows so far."""
    saved = checkpoint.load_checkpoint(
        spec["checkpoint_dir"], trajectory_key(spec), trainer.settings["epochs"]
    )
    if saved is None:
        return []
    trainer.model.load_state_dict(saved["model"])
    trainer.optimizer.load_state_dict(saved["optimizer"])
    if saved["scaler"]:
        trainer.runtime.scaler.load_state_dict(saved["scaler"])
    if trainer.stopper is not None and saved.get("early_stopping"):
        trainer.stopper.load_state_dict(saved["early_stopping"])
    checkpoint.restore_rng_state(saved["rng"])
    log.info(
        "resuming %s after epoch %d from %s", spec["run_id"], saved["epoch"], spec["checkpoint_dir"]
    )
    return list(saved["metrics_rows"])


def trajectory_key(spec: dict) -> str:
    """The run's identity without its length, as the text checkpoints are keyed by."""
    return canonical_json(trajectory_identity(spec["identity"]))


def run_epochs(
    rows: list[dict], trainer: Trainer, spec: dict, metrics_path: Path, log: logging.Logger
) -> tuple[list[dict], dict | None]:
    """Epochs after the resumed ones; stops at the first non-finite training loss, or when
    early stopping says so. Returns the rows and the last epoch's test evaluation (None when
    no epoch was left to run)."""
    settings, stopper = trainer.settings, trainer.stopper
    atomic_write_text(metrics_path, metrics_text(rows))
    tested = None
    for epoch in range(len(rows) + 1, settings["epochs"] + 1):
        if stopper is not None and stopper.stopped:
            break
        for images in streamed_images(trainer.train):  # read this epoch's batches ahead
            images.plan_epoch(settings["seed"], epoch, settings["batch_size"])
        trainer.net.take()  # forget predictions of any evaluation before this epoch
        row, tested = run_epoch(trainer, epoch)
        val_labels = trainer.val.labels if trainer.val is not None else None
        row.update(
            epoch_scores(trainer.net.take(), val_labels, trainer.test.labels, tested["pred"])
        )
        rows.append(row)
        atomic_write_text(metrics_path, metrics_text(rows))
        log.info("%s epoch %d/%d train_loss %.4f train_acc %.4f test_loss %.4f test_acc "
                 "%.4f %.1fs (%.0f img/s)", spec["run_id"], epoch, settings["epochs"],
                 row["train_loss"], row["train_acc"], row["test_loss"], row["test_acc"],
                 row["epoch_time_s"], row["train_images_per_s"])  # fmt: skip
        if not math.isfinite(row["train_loss"]):
            log.warning("%s diverged at epoch %d (training loss %s); stopping the run",
                        spec["run_id"], epoch, row["train_loss"])  # fmt: skip
            break
        if stopper is not None and stopper.update(epoch, row["val_loss"], trainer.model):
            log.info("%s stops early after epoch %d (no validation-loss gain for %d epochs); "
                     "keeping epoch %d", spec["run_id"], epoch, stopper.patience,
                     stopper.best_epoch)  # fmt: skip
        if not needs_checkpoint(settings, epoch, stopper):
            continue
        runtime = trainer.runtime
        checkpoint.save_checkpoint(
            spec["checkpoint_dir"],
            {
                "trajectory": trajectory_key(spec),
                "epoch": epoch,
                "model": trainer.model.state_dict(),
                "optimizer": trainer.optimizer.state_dict(),
                "scaler": runtime.scaler.state_dict() if runtime.scaler.is_enabled() else {},
                "rng": checkpoint.rng_state(),
                "metrics_rows": [dict(r) for r in rows],
                "early_stopping": stopper.state_dict() if stopper is not None else {},
            },
        )
    return rows, tested


def needs_checkpoint(settings: dict, epoch: int, stopper) -> bool:
    """Whether to write a resume checkpoint after ``epoch``: not after the run's last epoch
    when checkpoints are removed at its end anyway (a ResNet18 checkpoint is 135 MB, 0.8 s of
    CPU and a flush to disk). A job killed between that epoch and its summary resumes from the
    epoch before and ends with the same numbers."""
    last = epoch >= settings["epochs"] or (stopper is not None and stopper.stopped)
    return bool(settings["keep_checkpoint"]) or not last


def write_predictions(path: Path, tested: dict, labels: torch.Tensor) -> None:
    """The final test evaluation per image: true class, predicted class, its probability."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        label=labels.cpu().numpy().astype(np.int16),
        pred=tested["pred"].numpy().astype(np.int16),
        prob=tested["prob"].numpy().astype(np.float32),
    )
    atomic_write_bytes(path, buffer.getvalue())


def train(
    spec: dict,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    threads: int = 1,
    gpus: int = 0,
    log: logging.Logger | None = None,
) -> dict:
    """Train the run described by ``spec`` (a settings file's content) on the processed data
    in ``data_dir``, writing its outputs to ``out_dir``; returns the summary.

    ``gpus`` is the number of GPUs the calling rule holds (only used to warn when the run
    ends up on a CPU anyway).
    """
    log = log or LOG
    clock = StartClock()
    out_dir, ckpt_dir = Path(out_dir), Path(spec["checkpoint_dir"])
    settings = {**spec["settings"], "seed": spec["seed"]}
    with run_lock(spec["lock_file"], spec["run_id"]):
        for folder in (out_dir, ckpt_dir):
            clean_stale_temps(folder)
        claim = None
        if settings["device"] in ("auto", "cuda"):
            claim = devices.claim_gpu(slots=settings["gpu_slots"])  # before CUDA is initialised
        # PyTorch's optimizers import torch._dynamo when the first one is built (1.1-1.3 s on a
        # 2-core CPU): import it now (after the GPU claim), beside the job's own start-up
        # (reading and checking the arrays, moving them, building the model), which leaves
        # the interpreter free much of the time
        threading.Thread(
            target=importlib.import_module, args=("torch._dynamo",), daemon=True
        ).start()
        # which scheduler job and which GPU this run got: the first thing to check on a cluster
        env = {key: os.environ.get(key, "-") for key in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")}
        slot = f" (GPU {claim.index}, slot {claim.slot})" if claim else ""
        log.info("job environment: %s%s", " ".join(f"{k}={v}" for k, v in env.items()), slot)
        manifest = load_manifest(data_dir)
        runtime = Runtime.for_settings(settings, threads)
        if gpus > 0 and runtime.device.type == "cpu":
            log.warning("the job holds %d GPU(s) but PyTorch sees none; training on the CPU", gpus)
        clock.mark("device")
        check_validation(settings, manifest, data_dir)
        train_split, test_split, val = load_splits(settings, manifest, data_dir, runtime.device)
        splits = [train_split, test_split]
        channels = input_channels(manifest)
        if model_input_channels(channels, settings["normalization"]) > channels:
            for split in (*splits, val):
                if split is not None:
                    gray_as_rgb(split)
        clock.mark("arrays")
        num_classes, image_size = len(manifest["classes"]), int(manifest["image_size"])
        trainer = build_trainer(
            settings, runtime, *splits, num_classes, image_size, spec["weights_path"], val
        )
        adapt_trainer(trainer, settings, manifest, num_classes)
        clock.mark("model and optimizer")
        params = {
            **{k: spec[k] for k in ("run_id", "variant", "name", "seed", "identity", "trajectory")},
            "settings": spec["settings"],
            "data": {"name": manifest["name"], "image_size": image_size, "num_classes": num_classes,
                     "classes": manifest["classes"], "train_count": len(trainer.train),
                     "val_count": len(trainer.val) if trainer.val is not None else 0,
                     "test_count": len(splits[1])},
        }  # fmt: skip
        atomic_write_json(out_dir / "params.json", params)
        rows = resume(spec, trainer, log)
        clock.mark("resume")
        startup_s, resumed = time.perf_counter() - clock.origin, len(rows)
        rows, tested = run_epochs(rows, trainer, spec, out_dir / "metrics.csv", log)
        if trainer.first_step_at is not None:
            log.debug("start-up: %s", clock.report(trainer.first_step_at))
        if trainer.stopper is not None and trainer.stopper.best_model is not None:
            trainer.model.load_state_dict(trainer.stopper.best_model)  # the best epoch's
            tested = None
        final_eval_s = 0.0
        if tested is None:  # resumed after its last epoch, or kept an earlier one: evaluate
            started = time.perf_counter()
            tested = evaluate(
                trainer.net, trainer.loss_fn, trainer.test, trainer.eval_options, runtime
            )
            devices.synchronize(runtime.device)
            final_eval_s = time.perf_counter() - started
        write_predictions(out_dir / PREDICTIONS, tested, trainer.test.labels)
        cost = device_seconds(rows, startup_s, final_eval_s)
        weights = io.BytesIO()
        torch.save(trainer.model.state_dict(), weights)
        atomic_write_bytes(out_dir / "model.pt", weights.getvalue())
        cost.update(job_seconds(rows[resumed:], clock.origin))
        summary = summarize(rows, params, trainer, cost)
        # again: Snakemake deletes a failed job's outputs, and a second trainer refused by the
        # run lock fails while this one trains on; summary.json must never stand without it
        atomic_write_json(out_dir / "params.json", params)
        atomic_write_json(out_dir / "summary.json", summary)
        if not settings["keep_checkpoint"]:
            checkpoint.remove_checkpoints(ckpt_dir, spec.get("checkpoint_root", ckpt_dir.parent))
        for images in streamed_images(trainer.train, trainer.test, trainer.val):
            images.close()
    log.info("run %s done: final test acc %s, diverged %s",
             spec["run_id"], summary["final_test_acc"], summary["diverged"])  # fmt: skip
    return summary


def adapt_trainer(trainer: Trainer, settings: dict, manifest: dict, num_classes: int) -> None:
    """What the loop does not build itself, after it has built the rest: a one-channel first
    layer for grayscale data, the class-weighted loss, and the recorder of evaluation's
    predictions (for the per-epoch balanced accuracy and macro-F1). Each changes nothing for
    runs that do not ask for it (the recorder changes no number)."""
    channels = model_input_channels(input_channels(manifest), settings["normalization"])
    adapt_to_channels(trainer.model, channels)
    weighted = class_weighted_loss(
        settings.get("class_weight", "none"), trainer.train.labels, num_classes
    )
    if weighted is not None:
        trainer.loss_fn = weighted.to(trainer.runtime.device)
    trainer.net = PredictionRecorder(trainer.net)


class StartClock:
    """Where a job's start-up goes, from the process's start to its first training step:
    interpreter and imports, device set-up, loading and checking the arrays, building the
    model, restoring a checkpoint. Logged at debug level (``HPSTUDY_LOG_LEVEL=DEBUG``)."""

    def __init__(self) -> None:
        self.origin = time.perf_counter() - devices.process_age_s()
        self.marks = [("interpreter and imports", time.perf_counter())]

    def mark(self, name: str) -> None:
        """The step ``name`` ends now."""
        self.marks.append((name, time.perf_counter()))

    def steps(self, first_step_at: float) -> dict[str, float]:
        """Seconds per step, ending with the first training step; and ``total``."""
        times = [self.origin] + [t for _, t in self.marks] + [first_step_at]
        names = [n for n, _ in self.marks] + ["first training step"]
        out = {name: times[i + 1] - times[i] for i, name in enumerate(names)}
        return {**out, "total": first_step_at - self.origin}

    def report(self, first_step_at: float) -> str:
        """One line: each step's seconds and the total."""
        steps = self.steps(first_step_at)
        total = steps.pop("total")
        return ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()) + f"; in all {total:.2f} s"


def check_validation(settings: dict, manifest: dict, data_dir) -> None:
    """Refuse settings that need a validation split the data lacks."""
    if "val" in manifest["splits"]:
        return
    needs = "early_stopping" if settings["early_stopping"] else None
    needs = needs or ("train_on: train+val" if settings["train_on"] == "train+val" else None)
    if needs:
        raise HpstudyError(
            f"The run sets {needs}, but the data at {data_dir} has no validation split. Set "
            "`dataset.val_fraction` (e.g. 0.2) to hold out part of the training images, bring "
            "a val/ folder with your data, or drop the setting."
        )


def read_spec(path: str | os.PathLike) -> dict:
    """A run's settings file."""
    try:
        spec = json.loads(Path(path).read_text())
    except OSError as err:
        raise HpstudyError(
            f"Cannot read the run's settings file {path} ({err.strerror}). Snakemake writes it "
            "when it plans the sweep: run the job through snakemake."
        ) from err
    except json.JSONDecodeError as err:
        raise HpstudyError(
            f"The run's settings file {path} is not valid JSON ({err}); delete it and run "
            "snakemake again, which rewrites it."
        ) from err
    return spec


def main(argv: list[str] | None = None) -> int:
    """``hpstudy train``: train one run of the sweep."""
    parser = argparse.ArgumentParser(prog="hpstudy train", description=main.__doc__)
    parser.add_argument("--settings", required=True, help="the run's settings file (JSON)")
    parser.add_argument("--data-dir", required=True, help="processed dataset folder")
    parser.add_argument("--out-dir", required=True, help="the run's folder")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs held by the calling rule")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("HPSTUDY_LOG_LEVEL", "INFO").upper(),
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    train(
        read_spec(args.settings), args.data_dir, args.out_dir, threads=args.threads, gpus=args.gpus
    )
    return 0
