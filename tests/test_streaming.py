"""More data than memory (``train.in_memory``): a streamed split gives the numbers an in-memory
one gives, bit for bit on a CPU; every row read is checked against digests kept beside the
arrays, written once; the budget decides which splits stream."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from support.trainfactory import read_metrics, run_spec, write_dataset

from hpstudy.core import chunk_digests as cd
from hpstudy.core.errors import HpstudyError
from hpstudy.core.run_record import TIMING_COLUMNS
from hpstudy.training.arrays import load_manifest, load_split
from hpstudy.training.batches import BatchOptions, DeviceSplit, train_batches
from hpstudy.training.job import train
from hpstudy.training.memory_budget import memory_budget, streamed_units
from hpstudy.training.splits import load_splits

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), size=16, train=70, test=30, val=20)


def untimed(path):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in read_metrics(path)]


@pytest.mark.parametrize("train_on", ["train", "train+val"])
def test_streamed_and_in_memory_runs_give_identical_metrics(tmp_path, data, train_on):
    outs = []
    for in_memory in (True, False):
        spec = run_spec(
            tmp_path / str(in_memory), flip=True, train_on=train_on, in_memory=in_memory
        )
        out = tmp_path / str(in_memory) / "run"
        train(spec, data, out, threads=1)
        outs.append(out)
    assert untimed(outs[0] / "metrics.csv") == untimed(outs[1] / "metrics.csv")
    assert (outs[0] / "predictions.npz").read_bytes() == (outs[1] / "predictions.npz").read_bytes()
    assert (data / "train_x.chunks").is_file() and (data / "test_x.chunks").is_file()


def test_streamed_batches_equal_the_in_memory_ones_in_order(data):
    manifest = load_manifest(data)
    settings = {"train_on": "train", "in_memory": False}
    streamed, test, _ = load_splits(settings, manifest, data, CPU)
    memory = load_split(data, "train", CPU, manifest)
    options = BatchOptions(16, "none", True, False)
    streamed.images.plan_epoch(3, 2, 16)
    pairs = zip(
        train_batches(streamed, options, 3, 2), train_batches(memory, options, 3, 2), strict=True
    )
    for (a, la), (b, lb) in pairs:
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert torch.equal(test.images[0:7], load_split(data, "test", CPU, manifest).images[0:7])
    assert streamed.images[torch.tensor([5, 1])].shape == (2, 16, 16, 3)  # unforeseen: read


def test_a_changed_row_is_refused_when_it_is_read(tmp_path):
    folder = write_dataset(tmp_path, size=8, train=12, test=6)
    manifest = load_manifest(folder)
    path = folder / "train_x.npy"
    cd.chunk_digests(path, manifest["sha256"]["train_x.npy"], None)  # written once, then kept
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # the last row changes after its digests were written
    path.write_bytes(bytes(raw))
    split, _, _ = load_splits({"train_on": "train", "in_memory": False}, manifest, folder, CPU)
    split.images[torch.arange(0, 11)]  # rows before it still read
    with pytest.raises(HpstudyError, match="row 11 differs from its digest"):
        split.images[torch.tensor([11])]


def test_stale_digests_are_rebuilt_and_a_changed_array_is_refused(tmp_path):
    folder = write_dataset(tmp_path, size=8, train=12, test=6)
    manifest = load_manifest(folder)
    path, sha = folder / "train_x.npy", manifest["sha256"]["train_x.npy"]
    cd.chunks_path(path).write_bytes(b"not digests")
    chunks = cd.chunk_digests(path, sha, None)
    assert chunks.shape == (12, 8, 8, 3) and cd.decode(cd.chunks_path(path).read_bytes())
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    cd.chunks_path(path).unlink()
    with pytest.raises(HpstudyError, match="does not match its manifest"):
        cd.chunk_digests(path, sha, None)


def test_the_budget_streams_what_does_not_fit_smallest_first(monkeypatch):
    sizes = {"train": 600, "val": 100, "test": 200}
    assert streamed_units("auto", sizes, 350) == {"train"}
    assert streamed_units("auto", sizes, 90) == {"train", "val", "test"}
    assert streamed_units(True, sizes, 0) == set()
    assert streamed_units(False, sizes, 1 << 40) == {"train", "val", "test"}
    monkeypatch.setenv("HPSTUDY_MEMORY_BUDGET_MB", "2")
    assert memory_budget(CPU) == 2 * 2**20


def test_auto_streams_a_split_over_the_budget(data, monkeypatch):
    monkeypatch.setenv(
        "HPSTUDY_MEMORY_BUDGET_MB", str(45_000 / 2**20)
    )  # val and test fit (38 kB), train not
    manifest = load_manifest(data)
    train_split, test, val = load_splits({"train_on": "train"}, manifest, data, CPU)
    assert not isinstance(train_split.images, torch.Tensor)
    assert isinstance(test.images, torch.Tensor) and isinstance(val.images, torch.Tensor)
    assert isinstance(train_split, DeviceSplit) and len(train_split) == 70
    assert np.array_equal(train_split.labels.numpy(), np.load(data / "train_y.npy"))


def test_a_streamed_run_resumed_from_a_checkpoint_equals_a_fresh_in_memory_run(
    tmp_path, data, caplog
):
    """A resumed streamed run reads its later epochs' batches in their own order too."""
    short = run_spec(tmp_path / "ext", epochs=1, flip=True, keep_checkpoint=True, in_memory=False)
    train(short, data, tmp_path / "ext" / "short", threads=1)
    longer = run_spec(tmp_path / "ext", epochs=2, flip=True, keep_checkpoint=True, in_memory=False)
    assert longer["checkpoint_dir"] == short["checkpoint_dir"]
    with caplog.at_level(logging.INFO, logger="hpstudy"):
        train(longer, data, tmp_path / "ext" / "long", threads=1)
    assert "resuming" in caplog.text and "after epoch 1" in caplog.text
    fresh = run_spec(tmp_path / "fresh", epochs=2, flip=True, in_memory=True)
    train(fresh, data, tmp_path / "fresh" / "run", threads=1)
    assert untimed(tmp_path / "ext" / "long" / "metrics.csv") == untimed(
        tmp_path / "fresh" / "run" / "metrics.csv"
    )
