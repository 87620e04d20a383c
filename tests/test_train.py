"""The training job: outputs, exact metrics, determinism, divergence, resume after SIGKILL, CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from trainfactory import read_metrics, run_settings, write_dataset

from hpstudy import checkpoint
from hpstudy import cli as hpstudy_cli
from hpstudy.batches import BatchOptions, DeviceSplit, load_split, train_batches
from hpstudy.errors import HpstudyError
from hpstudy.models import build_model
from hpstudy.optim import build_loss
from hpstudy.sweep import code_digest
from hpstudy.train import METRIC_COLUMNS, TIMING_COLUMNS, Runtime, evaluate, train

SUMMARY_KEYS = {
    "run_id", "experiment", "final_test_acc", "best_test_acc", "best_epoch", "final_train_loss",
    "final_test_loss", "epochs_completed", "diverged", "diverged_epoch", "total_time_s",
    "mean_epoch_time_s", "param_count", "device", "device_name", "torch_version",
    "git_revision", "peak_memory_mb", "settings",
}  # fmt: skip
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), size=16, train=96, test=36)


def untimed(rows):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def run(tmp_path, data, name="run", **overrides):
    settings = run_settings(**overrides)
    out, ckpt = tmp_path / name / "out", tmp_path / name / "ckpt"
    summary = train(settings, data, out, ckpt, threads=1)
    return settings, summary, out, ckpt


def test_a_run_writes_params_metrics_summary_and_weights(tmp_path, tiny):
    settings, summary, out, ckpt = run(tmp_path, tiny, epochs=3)
    params = json.loads((out / "params.json").read_text())
    assert params == {**settings, "dataset": "tiny", "image_size": 16, "num_classes": 6,
                      "training_code": code_digest()}  # fmt: skip
    assert (out / "metrics.csv").read_text().splitlines()[0] == ",".join(METRIC_COLUMNS)
    rows = read_metrics(out / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(0 <= float(r[k]) <= 1 for r in rows for k in ("train_acc", "test_acc"))
    assert set(summary) == SUMMARY_KEYS
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["epochs_completed"] == 3 and summary["diverged"] is False
    assert summary["final_test_acc"] == float(rows[-1]["test_acc"])
    assert summary["best_test_acc"] == max(float(r["test_acc"]) for r in rows)
    assert summary["settings"] == params and summary["device"] == "cpu"
    # the patterned classes are learnable: training must actually reduce the loss
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    state = torch.load(out / "model.pt", weights_only=True)
    model = build_model(settings, 6, 16)
    model.load_state_dict(state)
    assert summary["param_count"] == sum(p.numel() for p in model.parameters())
    assert not checkpoint.checkpoint_path(ckpt).exists()  # removed after success


def test_keep_checkpoint_keeps_the_resume_checkpoint(tmp_path, tiny):
    settings, _, _, ckpt = run(tmp_path, tiny, epochs=1, keep_checkpoint=True)
    saved = checkpoint.load_checkpoint(checkpoint.checkpoint_path(ckpt), settings)
    assert saved["epoch"] == 1 and len(saved["metrics_rows"]) == 1
    # a checkpoint written for other settings is ignored, not resumed
    other = {**settings, "lr": 0.5}
    assert checkpoint.load_checkpoint(checkpoint.checkpoint_path(ckpt), other) is None


def test_same_settings_and_seed_give_bit_identical_metrics_on_cpu(tmp_path, tiny):
    runs = [run(tmp_path, tiny, name=f"r{i}", flip=True, normalization="imagenet") for i in (1, 2)]
    first, second = (untimed(read_metrics(out / "metrics.csv")) for _, _, out, _ in runs)
    assert first == second
    weights = [torch.load(out / "model.pt", weights_only=True) for _, _, out, _ in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    _, _, out, _ = run(tmp_path, tiny, name="seed1", seed=1, flip=True, normalization="imagenet")
    assert untimed(read_metrics(out / "metrics.csv")) != first  # the seed matters


def test_epoch_batches_cover_every_sample_once_and_replay_per_seed_and_epoch(tiny):
    split = load_split(tiny, "train", CPU)
    options = BatchOptions(batch_size=20)  # 96 samples: four full batches and one of 16
    batches = list(train_batches(split, options, seed=3, epoch=2))
    assert [len(y) for _, y in batches] == [20, 20, 20, 20, 16]
    images = torch.cat([x for x, _ in batches])
    assert images.dtype == torch.float32 and images.shape == (96, 3, 16, 16)
    # the exact pixels of the split scaled to [0, 1] (the seed's ToTensor), in some order
    pixels = (images * 255).round().to(torch.uint8)
    assert torch.equal(images, pixels.float() / 255)
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
    plain = BatchOptions(batch_size=96)
    flipped = BatchOptions(batch_size=96, flip=True)
    (x, _), (xf, _) = (next(train_batches(split, o, seed=0, epoch=1)) for o in (plain, flipped))
    same = [torch.equal(a, b) for a, b in zip(x, xf, strict=True)]
    mirrored = [torch.equal(a.flip(2), b) for a, b in zip(x, xf, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 20 < sum(mirrored) < 76


def test_evaluate_weights_the_last_partial_batch_exactly(tiny):
    split = load_split(tiny, "test", CPU)  # 36 samples
    torch.manual_seed(0)
    model = build_model(run_settings(), 6, 16)
    runtime = Runtime(run_settings(), threads=1)
    whole = evaluate(model, build_loss(), split, BatchOptions(36), runtime)
    partial = evaluate(model, build_loss(), split, BatchOptions(25), runtime)  # 25 + 11
    assert partial["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert partial["acc"] == whole["acc"]
    # and it is the per-sample mean, not the mean of the two batch means
    small = DeviceSplit(split.images[25:], split.labels[25:])
    big = DeviceSplit(split.images[:25], split.labels[:25])
    means = [
        evaluate(model, build_loss(), s, BatchOptions(36), runtime)["loss"] for s in (big, small)
    ]
    assert partial["loss"] == pytest.approx((25 * means[0] + 11 * means[1]) / 36, rel=1e-6)
    assert abs((means[0] + means[1]) / 2 - partial["loss"]) > 1e-6


def cli(*args, timeout=300, **popen):
    command = [sys.executable, "-m", "hpstudy", "train", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **popen)


def cli_args(settings, data, root):
    return ["--settings", json.dumps(settings), "--data-dir", data, "--out-dir", root / "out",
            "--checkpoint-dir", root / "ckpt", "--threads", "1"]  # fmt: skip


def test_a_diverging_run_is_marked_and_the_job_succeeds(tmp_path, tiny):
    settings = run_settings(optimizer="sgd", lr=1e6, epochs=3)
    done = cli(*cli_args(settings, tiny, tmp_path))
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["diverged"] is True
    rows = read_metrics(tmp_path / "out" / "metrics.csv")
    assert summary["diverged_epoch"] == int(rows[-1]["epoch"]) == summary["epochs_completed"]
    assert len(rows) < 3 and not math.isfinite(float(rows[-1]["train_loss"]))
    assert summary["final_train_loss"] is None  # strict JSON: non-finite becomes null
    assert "diverged at epoch" in done.stderr


def test_cli_reads_settings_from_a_file(tmp_path, tiny):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(run_settings(epochs=1)))
    args = cli_args(run_settings(), tiny, tmp_path)
    args[1] = f"@{settings_file}"
    assert hpstudy_cli.main(["train", *map(str, args)]) == 0
    assert len(read_metrics(tmp_path / "out" / "metrics.csv")) == 1


@pytest.mark.parametrize(
    ("settings_text", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"seed": 0}), "The run settings lack run_id"),
        (json.dumps(run_settings(model="vgg")), "model: 'vgg' is not known"),
        (json.dumps(run_settings(batch_size=0)), "batch_size=0 must be a positive integer"),
        ("@/nonexistent/settings.json", "Cannot read the settings file"),
        (json.dumps(run_settings()), "manifest.json is missing"),
    ],
)
def test_cli_reports_bad_input_in_one_paragraph_and_exit_1(
    tmp_path, settings_text, message, capsys
):
    args = cli_args(run_settings(), tmp_path / "no-dataset", tmp_path)
    args[1] = settings_text
    assert hpstudy_cli.main(["train", *map(str, args)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hpstudy: error: ") and message in err and "Traceback" not in err


def test_train_function_raises_for_incomplete_settings(tmp_path, tiny):
    settings = run_settings()
    del settings["optimizer"]
    with pytest.raises(HpstudyError, match="optimizer"):
        train(settings, tiny, tmp_path / "o", tmp_path / "c")


def test_resume_after_sigkill_mid_epoch_gives_identical_metrics(tmp_path):
    data = write_dataset(tmp_path / "data", size=32, train=600, test=60)
    settings = run_settings(epochs=3, flip=True)
    reference = cli(*cli_args(settings, data, tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr

    root = tmp_path / "killed"
    last = checkpoint.checkpoint_path(root / "ckpt")
    job = subprocess.Popen([sys.executable, "-m", "hpstudy", "train", *map(str, cli_args(
        settings, data, root))], stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not last.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the second epoch
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    assert not (root / "out" / "summary.json").exists(), "killed too late: the run had finished"
    assert len(read_metrics(root / "out" / "metrics.csv")) < 3

    resumed = cli(*cli_args(settings, data, root))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    expected = untimed(read_metrics(tmp_path / "reference" / "out" / "metrics.csv"))
    assert untimed(read_metrics(root / "out" / "metrics.csv")) == expected
    ref_w = torch.load(tmp_path / "reference" / "out" / "model.pt", weights_only=True)
    new_w = torch.load(root / "out" / "model.pt", weights_only=True)
    assert all(torch.equal(ref_w[k], new_w[k]) for k in ref_w)
    assert not last.exists()


def test_checkpoints_hold_only_what_weights_only_loading_accepts(tmp_path, tiny):
    settings, _, _, ckpt = run(tmp_path, tiny, epochs=1, keep_checkpoint=True)
    state = torch.load(Path(ckpt) / "last.pt", weights_only=True)
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert json.loads(state["settings_json"]) == settings
