"""The training job: outputs, exact metrics, determinism, divergence, resume after SIGKILL,
verified data, checkpoints that check themselves, one trainer per run, CLI."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from support.trainfactory import read_metrics, run_spec, write_dataset

from hpstudy import cli as hpstudy_cli
from hpstudy.core.atomic import temp_name
from hpstudy.core.errors import HpstudyError
from hpstudy.core.run_record import METRIC_COLUMNS, TIMING_COLUMNS
from hpstudy.training import checkpoint
from hpstudy.training.arrays import load_split
from hpstudy.training.batches import BatchOptions, DeviceSplit, train_batches
from hpstudy.training.job import train, trajectory_key
from hpstudy.training.loop import evaluate
from hpstudy.training.models import build_model
from hpstudy.training.optim import build_loss
from hpstudy.training.runtime import Runtime

SUMMARY_KEYS = {
    "run_id", "final_test_acc", "best_test_acc", "best_epoch", "final_train_loss",
    "final_test_loss", "min_test_loss", "min_test_loss_epoch", "final_val_acc", "final_val_loss",
    "best_val_acc", "best_val_epoch", "min_val_loss", "min_val_loss_epoch", "kept_epoch",
    "stopped_early", "epochs_completed", "diverged",
    "diverged_epoch", "diverged_reason", "total_time_s", "mean_epoch_time_s", "param_count",
    "conv_param_count", "fc_param_count", "device", "device_name", "precision", "torch_version",
    "git_revision", "peak_memory_mb", "params", "train_device_s", "eval_device_s",
    "startup_device_s", "device_s", "job_wall_s", "job_fixed_s", "epochs_trained",
    "job_started_at", "job_ended_at",
    *(f"{when}_{split}_{score}" for when in ("final", "best") for split in ("val", "test")
      for score in ("balanced_acc", "macro_f1")),
}  # fmt: skip
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), size=16, train=96, test=36)


def untimed(rows):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def run(root, data, **overrides):
    spec = run_spec(root, **overrides)
    out = root / "runs" / spec["run_id"]
    return spec, train(spec, data, out, threads=1), out


def test_a_run_writes_params_metrics_summary_and_weights(tmp_path, tiny):
    spec, summary, out = run(tmp_path, tiny, epochs=3)
    params = json.loads((out / "params.json").read_text())
    assert params["identity"] == spec["identity"] and params["settings"] == spec["settings"]
    classes = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
    assert params["data"] == {
        "name": "tiny",
        "image_size": 16,
        "num_classes": 6,
        "classes": classes,
        "train_count": 96,
        "val_count": 0,
        "test_count": 36,
    }
    assert (out / "metrics.csv").read_text().splitlines()[0] == ",".join(METRIC_COLUMNS)
    rows = read_metrics(out / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(summary) == SUMMARY_KEYS
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["epochs_completed"] == 3 and summary["diverged"] is False
    assert summary["final_test_acc"] == float(rows[-1]["test_acc"])
    assert summary["best_test_acc"] == max(float(r["test_acc"]) for r in rows)
    losses = [float(r["test_loss"]) for r in rows]
    assert summary["min_test_loss"] == min(losses)
    assert summary["min_test_loss_epoch"] == losses.index(min(losses)) + 1
    assert summary["params"] == params and summary["device"] == "cpu"
    # what the run cost its device: every epoch's training and evaluation, and its start-up
    assert summary["train_device_s"] == pytest.approx(sum(float(r["train_time_s"]) for r in rows))
    assert summary["eval_device_s"] == pytest.approx(sum(float(r["eval_time_s"]) for r in rows))
    assert summary["startup_device_s"] > 0
    parts = ("train_device_s", "eval_device_s", "startup_device_s")
    assert summary["device_s"] == pytest.approx(sum(summary[k] for k in parts))
    # the job's wall time: its epochs and a fixed part holding at least its start-up
    assert summary["epochs_trained"] == 3
    epochs_s = sum(float(r["epoch_time_s"]) for r in rows)
    assert summary["job_wall_s"] == pytest.approx(summary["job_fixed_s"] + epochs_s, rel=1e-3)
    assert summary["job_fixed_s"] >= summary["startup_device_s"]
    took = summary["job_ended_at"] - summary["job_started_at"]
    assert took == pytest.approx(summary["job_wall_s"], abs=1e-3)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])  # it learns
    model = build_model(spec["settings"], 6, 16)
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert summary["param_count"] == sum(p.numel() for p in model.parameters())
    assert summary["conv_param_count"] + summary["fc_param_count"] < summary["param_count"]
    # the finished run leaves no checkpoint and no empty checkpoint folders behind
    assert not [p for p in (tmp_path / "ckpt").rglob("*") if ".locks" not in p.parts]


def test_keep_checkpoint_keeps_the_resume_checkpoint(tmp_path, tiny):
    spec, _, _ = run(tmp_path, tiny, epochs=2, keep_checkpoint=True)
    saved = checkpoint.load_checkpoint(spec["checkpoint_dir"], trajectory_key(spec), 2)
    assert saved["epoch"] == 2 and len(saved["metrics_rows"]) == 2
    assert (Path(spec["checkpoint_dir"]) / "prev.pt").exists()  # epoch 1's, kept as a fallback
    other = run_spec(tmp_path, lr=0.5)
    assert checkpoint.load_checkpoint(spec["checkpoint_dir"], trajectory_key(other), 2) is None


def test_a_run_writes_no_checkpoint_after_its_last_epoch_unless_kept(tmp_path, tiny, monkeypatch):
    saved = []
    real = checkpoint.save_checkpoint
    monkeypatch.setattr(
        checkpoint, "save_checkpoint", lambda d, s: saved.append(s["epoch"]) or real(d, s)
    )
    run(tmp_path / "dropped", tiny, epochs=3)
    assert saved == [1, 2]  # the third would be removed at once with the run's checkpoints
    saved.clear()
    run(tmp_path / "kept", tiny, epochs=3, keep_checkpoint=True)
    assert saved == [1, 2, 3]


def test_same_settings_and_seed_give_bit_identical_metrics_on_cpu(tmp_path, tiny):
    runs = [run(tmp_path / f"r{i}", tiny, flip=True, normalization="imagenet") for i in (1, 2)]
    first, second = (untimed(read_metrics(out / "metrics.csv")) for _, _, out in runs)
    assert first == second
    weights = [torch.load(out / "model.pt", weights_only=True) for _, _, out in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    _, _, out = run(tmp_path / "s1", tiny, seed=1, flip=True, normalization="imagenet")
    assert untimed(read_metrics(out / "metrics.csv")) != first  # the seed matters


def test_epoch_batches_cover_every_sample_once_and_replay_per_seed_and_epoch(tiny):
    split = load_split(tiny, "train", CPU)
    options = BatchOptions(batch_size=20)  # 96 samples: four full batches and one of 16
    batches = list(train_batches(split, options, seed=3, epoch=2))
    assert [len(y) for _, y in batches] == [20, 20, 20, 20, 16]
    images = torch.cat([x for x, _ in batches])
    assert images.dtype == torch.float32 and images.shape == (96, 3, 16, 16)
    pixels = (images * 255).round().to(torch.uint8)
    assert torch.equal(images, pixels.float() / 255)  # the post's ToTensor
    original = split.images.permute(0, 3, 1, 2)
    assert sorted(p.numpy().tobytes() for p in pixels) == sorted(
        p.contiguous().numpy().tobytes() for p in original
    )
    assert torch.equal(torch.cat([y for _, y in batches]).sort().values, split.labels.sort().values)
    again = list(train_batches(split, options, seed=3, epoch=2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    other_epoch = torch.cat([y for _, y in train_batches(split, options, seed=3, epoch=3)])
    assert not torch.equal(other_epoch, torch.cat([y for _, y in batches]))


def test_flip_mirrors_some_images_and_keeps_the_others(tiny):
    split = load_split(tiny, "train", CPU)
    plain, flipped = BatchOptions(batch_size=96), BatchOptions(batch_size=96, flip=True)
    (x, _), (xf, _) = (next(train_batches(split, o, seed=0, epoch=1)) for o in (plain, flipped))
    same = [torch.equal(a, b) for a, b in zip(x, xf, strict=True)]
    mirrored = [torch.equal(a.flip(2), b) for a, b in zip(x, xf, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 20 < sum(mirrored) < 76


def test_evaluate_weights_the_last_partial_batch_exactly(tmp_path, tiny):
    split = load_split(tiny, "test", CPU)  # 36 samples
    settings = run_spec(tmp_path)["settings"]
    torch.manual_seed(0)
    model = build_model(settings, 6, 16)
    runtime = Runtime.for_settings(settings, threads=1)
    whole = evaluate(model, build_loss(), split, BatchOptions(36), runtime)
    partial = evaluate(model, build_loss(), split, BatchOptions(25), runtime)  # 25 + 11
    assert partial["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert partial["acc"] == whole["acc"]
    small = DeviceSplit(split.images[25:], split.labels[25:])
    big = DeviceSplit(split.images[:25], split.labels[:25])
    means = [
        evaluate(model, build_loss(), s, BatchOptions(36), runtime)["loss"] for s in (big, small)
    ]
    assert partial["loss"] == pytest.approx((25 * means[0] + 11 * means[1]) / 36, rel=1e-6)
    assert abs((means[0] + means[1]) / 2 - partial["loss"]) > 1e-6


def write_spec(spec: dict, root: Path) -> Path:
    path = root / "settings" / f"{spec['name']}-{spec['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def cli_args(spec, data, root):
    out = root / "runs" / spec["run_id"]
    return ["--settings", write_spec(spec, root), "--data-dir", data, "--out-dir", out,
            "--threads", "1"]  # fmt: skip


def cli(*args, timeout=300, **popen):
    command = [sys.executable, "-m", "hpstudy", "train", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **popen)


def test_a_diverging_run_is_marked_and_the_job_succeeds(tmp_path, tiny):
    spec = run_spec(tmp_path, optimizer="sgd", lr=1e6, epochs=3)
    done = cli(*cli_args(spec, tiny, tmp_path))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "runs" / spec["run_id"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] is True
    rows = read_metrics(out / "metrics.csv")
    assert summary["diverged_epoch"] == int(rows[-1]["epoch"]) == summary["epochs_completed"]
    assert len(rows) < 3 and not math.isfinite(float(rows[-1]["train_loss"]))
    assert summary["final_train_loss"] is None  # strict JSON: non-finite becomes null
    assert "diverged at epoch" in done.stderr


@pytest.mark.parametrize(
    ("settings_text", "message"),
    [("{not json", "is not valid JSON"), (None, "Cannot read the run's settings file")],
)
def test_cli_reports_an_unusable_settings_file_in_one_paragraph(
    tmp_path, tiny, settings_text, message, capsys
):
    path = tmp_path / "settings.json"
    if settings_text is not None:
        path.write_text(settings_text)
    argv = [
        "train",
        "--settings",
        str(path),
        "--data-dir",
        str(tiny),
        "--out-dir",
        str(tmp_path / "o"),
    ]
    assert hpstudy_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("hpstudy: error: ") and message in err and "Traceback" not in err


def test_a_missing_dataset_is_one_paragraph(tmp_path, capsys):
    spec = run_spec(tmp_path)
    args = cli_args(spec, tmp_path / "no-dataset", tmp_path)
    assert hpstudy_cli.main(["train", *map(str, args)]) == 1
    err = capsys.readouterr().err
    assert "manifest.json is missing" in err and err.count("\n") == 1


def corrupt_copy(tiny: Path, dest: Path, how: str) -> Path:
    """A copy of the tiny dataset whose train_x.npy was damaged after preprocessing."""
    import shutil

    data = Path(shutil.copytree(tiny, dest))
    array = data / "train_x.npy"
    raw = bytearray(array.read_bytes())
    if how == "flipped":
        raw[len(raw) // 2] ^= 0xFF
        array.write_bytes(bytes(raw))
    elif how == "truncated":
        array.write_bytes(bytes(raw[: len(raw) - 1000]))
    elif how == "objects":  # pickled objects, with a manifest updated to match
        np.save(array, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
        manifest = json.loads((data / "manifest.json").read_text())
        import hashlib

        manifest["sha256"]["train_x.npy"] = hashlib.sha256(array.read_bytes()).hexdigest()
        manifest["bytes"]["train_x.npy"] = array.stat().st_size
        (data / "manifest.json").write_text(json.dumps(manifest))
    return data


@pytest.mark.parametrize(
    ("how", "message"),
    [("flipped", "sha256 differs"), ("truncated", "bytes where the manifest records"),
     ("objects", "holds Python objects")],
)  # fmt: skip
def test_damaged_arrays_are_refused_with_the_file_and_the_fix(tmp_path, tiny, how, message):
    data = corrupt_copy(tiny, tmp_path / "data", how)
    spec = run_spec(tmp_path)
    done = cli(*cli_args(spec, data, tmp_path))
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith("hpstudy: error:")]
    assert len(error) == 1 and "Traceback" not in done.stderr
    assert str(data / "train_x.npy") in error[0] and message in error[0]
    assert "snakemake --forcerun preprocess" in error[0]
    assert not (tmp_path / "runs" / spec["run_id"] / "summary.json").exists()


def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, tiny, caplog):
    reference = run(tmp_path / "ref", tiny, epochs=3)[2]
    expected = untimed(read_metrics(reference / "metrics.csv"))
    spec = run_spec(tmp_path / "broken", epochs=3)
    # train two epochs, keeping the checkpoints, then flip one byte of the newest
    two = run_spec(tmp_path / "broken", epochs=2, keep_checkpoint=True)
    assert two["checkpoint_dir"] == spec["checkpoint_dir"]  # one trajectory: epochs aside
    train(two, tiny, tmp_path / "scratch", threads=1)
    last = Path(spec["checkpoint_dir"]) / "last.pt"
    raw = bytearray(last.read_bytes())
    raw[-100] ^= 0x01
    last.write_bytes(bytes(raw))
    out = tmp_path / "broken" / "out"
    with caplog.at_level(logging.INFO):
        train(spec, tiny, out, threads=1)
    assert (
        "is corrupt" in caplog.text and "resuming" in caplog.text and "after epoch 1" in caplog.text
    )
    assert untimed(read_metrics(out / "metrics.csv")) == expected
    # both damaged: start afresh, same numbers again
    two = run_spec(tmp_path / "both", epochs=2, keep_checkpoint=True)
    train(two, tiny, tmp_path / "scratch2", threads=1)
    for name in ("last.pt", "prev.pt"):
        path = Path(two["checkpoint_dir"]) / name
        path.write_bytes(b"garbage" + path.read_bytes()[7:])
    out = tmp_path / "both" / "out"
    caplog.clear()
    with caplog.at_level(logging.INFO):
        train(run_spec(tmp_path / "both", epochs=3), tiny, out, threads=1)
    assert "resuming" not in caplog.text
    assert "starting afresh" in caplog.text
    assert untimed(read_metrics(out / "metrics.csv")) == expected


def test_a_finishing_run_writes_params_json_again_before_its_summary(tmp_path, tiny, monkeypatch):
    # Snakemake deletes a refused second trainer's outputs while the first trains on: the
    # first must still leave params.json beside its summary
    from hpstudy.training import job as train_module

    epochs = train_module.run_epochs

    def lose_params(rows, trainer, spec, metrics_path, log):
        (metrics_path.parent / "params.json").unlink()
        return epochs(rows, trainer, spec, metrics_path, log)

    monkeypatch.setattr(train_module, "run_epochs", lose_params)
    spec, _, out = run(tmp_path, tiny, epochs=1)
    assert json.loads((out / "params.json").read_text())["identity"] == spec["identity"]


def test_checkpoints_hold_only_what_weights_only_loading_accepts(tmp_path, tiny):
    spec, _, _ = run(tmp_path, tiny, epochs=1, keep_checkpoint=True)
    state = checkpoint.decode((Path(spec["checkpoint_dir"]) / "last.pt").read_bytes())
    assert set(state["rng"]) == {"torch", "cuda"}  # nothing draws from Python's or NumPy's
    assert state["trajectory"] == trajectory_key(spec)


def test_a_second_trainer_on_the_same_run_refuses_at_once(tmp_path):
    data = write_dataset(tmp_path / "data", size=32, train=600, test=60)
    spec = run_spec(tmp_path, epochs=3)
    args = list(map(str, cli_args(spec, data, tmp_path)))
    first = subprocess.Popen([sys.executable, "-m", "hpstudy", "train", *args],
                             stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        lock = Path(spec["lock_file"])
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        second = cli(*args)
        assert time.monotonic() - started < 20 and second.returncode == 1
        assert f"already being trained by pid {first.pid}" in second.stderr
        assert "snakemake --unlock" in second.stderr
    finally:
        first.kill()
        first.wait()
    again = cli(*args)  # the lock died with its process
    assert again.returncode == 0, again.stderr


def test_stale_temporary_files_of_ended_processes_are_removed_by_their_owner(tmp_path, tiny):
    spec = run_spec(tmp_path)
    out = tmp_path / "runs" / spec["run_id"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale, live = (
            Path(str(temp_name(out / "metrics.csv")).replace(f"-{os.getpid()}@", f"-{pid}@"))
            for pid in (dead, writer.pid)  # a process that ended, one still writing
        )
        for path in (stale, live):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("partial")
        train(spec, tiny, out, threads=1)
        assert not stale.exists() and live.exists()
    finally:
        writer.kill()
        writer.wait()


def test_resume_after_sigkill_mid_epoch_gives_identical_metrics(tmp_path):
    data = write_dataset(tmp_path / "data", size=32, train=600, test=60)
    spec = run_spec(tmp_path / "ref", epochs=3, flip=True)
    reference = cli(*cli_args(spec, data, tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr

    root = tmp_path / "killed"
    spec = run_spec(root, epochs=3, flip=True)
    last = Path(spec["checkpoint_dir"]) / "last.pt"
    job = subprocess.Popen([sys.executable, "-m", "hpstudy", "train", *map(str, cli_args(
        spec, data, root))], stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not last.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the second epoch
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    out = root / "runs" / spec["run_id"]
    assert not (out / "summary.json").exists(), "killed too late: the run had finished"
    assert len(read_metrics(out / "metrics.csv")) < 3

    resumed = cli(*cli_args(spec, data, root))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    ref_out = tmp_path / "ref" / "runs" / spec["run_id"]
    assert untimed(read_metrics(out / "metrics.csv")) == untimed(
        read_metrics(ref_out / "metrics.csv")
    )
    ref_w = torch.load(ref_out / "model.pt", weights_only=True)
    new_w = torch.load(out / "model.pt", weights_only=True)
    assert all(torch.equal(ref_w[k], new_w[k]) for k in ref_w)
    assert not last.exists()


def test_the_final_predictions_are_saved_and_a_run_resumed_at_its_end_saves_the_same(
    tmp_path, tiny
):
    spec, summary, out = run(tmp_path, tiny, epochs=2, keep_checkpoint=True)
    with np.load(out / "predictions.npz") as saved:
        first = {name: saved[name] for name in ("label", "pred", "prob")}
    test_labels = np.load(tiny / "test_y.npy")
    assert np.array_equal(first["label"], test_labels)
    assert np.mean(first["pred"] == first["label"]) == pytest.approx(summary["final_test_acc"])
    assert ((first["prob"] > 0) & (first["prob"] <= 1)).all()
    (out / "summary.json").unlink()  # killed after its last epoch, before the summary
    (out / "predictions.npz").unlink()
    again = train(spec, tiny, out, threads=1)
    assert again["final_test_acc"] == summary["final_test_acc"]
    with np.load(out / "predictions.npz") as saved:
        assert all(np.array_equal(saved[name], first[name]) for name in first)


def test_early_stopping_counts_patience_on_the_validation_loss():
    from hpstudy.training.loop import EarlyStopping

    model = torch.nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2, min_delta=0.01)
    losses = [1.0, 0.9, 0.895, 0.92, 0.80]
    stops = [stopper.update(epoch, loss, model) for epoch, loss in enumerate(losses[:4], 1)]
    assert stops == [False, False, False, True]  # 0.895 is not 0.01 better than 0.9
    assert stopper.best_epoch == 2 and stopper.bad_epochs == 2 and stopper.best_loss == 0.9
    assert EarlyStopping(1).update(1, float("nan"), model) is True  # a NaN never improves


@pytest.fixture(scope="module")
def with_val(tmp_path_factory):
    return write_dataset(
        tmp_path_factory.mktemp("val"), size=16, train=96, test=36, val=30, name="withval"
    )


def test_a_validation_split_is_evaluated_every_epoch_and_train_val_joins_it(tmp_path, with_val):
    _, summary, out = run(tmp_path / "a", with_val, epochs=2)
    rows = read_metrics(out / "metrics.csv")
    assert all(0 <= float(r["val_acc"]) <= 1 for r in rows)
    assert (
        summary["final_val_acc"] == float(rows[-1]["val_acc"])
        and summary["params"]["data"]["val_count"] == 30
    )
    _, joined, out = run(tmp_path / "b", with_val, epochs=2, train_on="train+val")
    assert (
        joined["params"]["data"]["train_count"] == 126
        and joined["params"]["data"]["val_count"] == 0
    )
    assert all(r["val_acc"] == "nan" for r in read_metrics(out / "metrics.csv"))


def test_early_stopping_keeps_the_best_epoch_and_resumes_exactly(tmp_path, with_val):
    es = {"patience": 1, "min_delta": 0.0}
    spec, stopped, out = run(tmp_path / "es", with_val, epochs=12, lr=3e-2, early_stopping=es)
    assert stopped["stopped_early"] and stopped["epochs_completed"] < 12
    kept = stopped["kept_epoch"]
    rows = read_metrics(out / "metrics.csv")
    assert kept == min(range(1, len(rows) + 1), key=lambda e: float(rows[e - 1]["val_loss"]))
    assert stopped["final_test_acc"] == float(rows[kept - 1]["test_acc"])
    # the kept weights are exactly a plain run's after that many epochs
    _, _, plain = run(tmp_path / "plain", with_val, epochs=kept, lr=3e-2)
    kept_w = torch.load(out / "model.pt", weights_only=True)
    plain_w = torch.load(plain / "model.pt", weights_only=True)
    assert all(torch.equal(kept_w[k], plain_w[k]) for k in kept_w)
    # a run stopped short of its epochs then extended: the checkpoint carries the patience count
    short = run_spec(
        tmp_path / "resume", epochs=2, lr=3e-2, early_stopping=es, keep_checkpoint=True
    )
    train(short, with_val, tmp_path / "resume" / "short", threads=1)
    longer = run_spec(tmp_path / "resume", epochs=12, lr=3e-2, early_stopping=es)
    assert longer["checkpoint_dir"] == short["checkpoint_dir"]
    resumed = train(longer, with_val, tmp_path / "resume" / "long", threads=1)
    assert untimed(read_metrics(tmp_path / "resume" / "long" / "metrics.csv")) == untimed(rows)
    assert resumed["kept_epoch"] == kept


def test_early_stopping_without_a_validation_split_is_refused(tmp_path, tiny):
    spec = run_spec(tmp_path, early_stopping={"patience": 2})
    with pytest.raises(HpstudyError, match="no validation split.*dataset.val_fraction"):
        train(spec, tiny, tmp_path / "out")


def test_a_run_extended_from_a_shorter_ones_checkpoint_equals_a_fresh_longer_run(
    tmp_path, tiny, caplog
):
    """What successive halving relies on: a survivor continues its shorter run's trajectory."""
    short = run_spec(tmp_path / "ext", epochs=1, flip=True, keep_checkpoint=True)
    train(short, tiny, tmp_path / "ext" / "short", threads=1)
    longer = run_spec(tmp_path / "ext", epochs=3, flip=True, keep_checkpoint=True)
    assert longer["run_id"] != short["run_id"]
    assert longer["checkpoint_dir"] == short["checkpoint_dir"]  # keyed by the trajectory
    with caplog.at_level(logging.INFO, logger="hpstudy"):
        train(longer, tiny, tmp_path / "ext" / "long", threads=1)
    assert "after epoch 1" in caplog.text and "resuming" in caplog.text
    _, _, fresh = run(tmp_path / "fresh", tiny, epochs=3, flip=True)
    extended = untimed(read_metrics(tmp_path / "ext" / "long" / "metrics.csv"))
    assert extended == untimed(read_metrics(fresh / "metrics.csv"))
    assert extended[0] == untimed(read_metrics(tmp_path / "ext" / "short" / "metrics.csv"))[0]
    weights = [torch.load(p / "model.pt", weights_only=True)
               for p in (tmp_path / "ext" / "long", fresh)]  # fmt: skip
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_auto_precision_is_resolved_where_planned_recorded_and_never_resumed_across(
    tmp_path, tiny, monkeypatch
):
    monkeypatch.setenv("HPSTUDY_CPU_BF16", "1")  # this CPU computes bf16 (or is told so)
    auto = run_spec(tmp_path / "a", epochs=1, precision="auto", keep_checkpoint=True)
    assert auto["settings"]["precision"] == "bf16" and "prec-bf16" in auto["run_id"]
    fp32 = run_spec(tmp_path / "a", epochs=1)
    assert auto["checkpoint_dir"] != fp32["checkpoint_dir"]  # never resumed under another
    summary = train(auto, tiny, tmp_path / "a" / "out", threads=1)
    assert summary["precision"] == "bf16" and math.isfinite(summary["final_train_loss"])
    monkeypatch.setenv("HPSTUDY_CPU_BF16", "0")
    assert run_spec(tmp_path / "b", epochs=1, precision="auto")["run_id"] == fp32["run_id"]
    with pytest.raises(HpstudyError, match="precision: bf16 cannot run on this CPU"):
        train(auto, tiny, tmp_path / "b" / "out", threads=1)


def test_compile_changes_no_identity_and_saves_the_uncompiled_weights(tmp_path, tiny, monkeypatch):
    # the model is compiled and traced as the run asks; its graphs run through AOTAutograd
    # without Inductor's C++ code generation (40 s on a 2-core CPU: PyTorch's own tests')
    compiled = []

    def compile_traced(model, **options):
        compiled.append(model)
        return real_compile(model, **{**options, "backend": "aot_eager"})

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", compile_traced)
    spec = run_spec(tmp_path, epochs=1, compile=True)
    assert spec["run_id"] == run_spec(tmp_path, epochs=1)["run_id"]  # execution only
    summary = train(spec, tiny, tmp_path / "out", threads=1)
    assert len(compiled) == 1
    weights = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    assert not any(key.startswith("_orig_mod") for key in weights)
    model = build_model(spec["settings"], 6, 16)
    model.load_state_dict(weights)
    assert 0 <= summary["final_test_acc"] <= 1
