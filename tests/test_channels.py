"""One input channel: the models take grayscale as one channel (first layer summed over RGB),
runs train end to end on N x H x W x 1 arrays, and only the runs that use the optional modules
(one channel, class weights) digest them: every other run keeps its identity."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest
import torch
from support.trainfactory import run_spec, write_dataset

from hpstudy.core.errors import HpstudyError
from hpstudy.sweep import plan
from hpstudy.training import identity
from hpstudy.training.channels import adapt_to_channels, first_convolution
from hpstudy.training.job import train
from hpstudy.training.models import build_model


@pytest.mark.parametrize("model", ["custom", "resnet18"])
def test_a_one_channel_model_sees_a_gray_image_as_the_rgb_model_sees_it_in_three(model):
    torch.manual_seed(0)
    settings = {"model": model, "kernel_width": [3, 3, 3], "pretrained": False}
    rgb = build_model(settings, 4, 32).eval()
    gray_model = adapt_to_channels(copy.deepcopy(rgb), 1)
    assert first_convolution(rgb).weight.shape[1] == 3
    gray = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = rgb(gray.expand(-1, 3, -1, -1))
        assert torch.allclose(gray_model(gray), expected, atol=1e-5)
    conv = next(m for m in gray_model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.in_channels == 1 and conv.weight.shape[1] == 1


def test_a_model_without_one_rgb_layer_is_refused_in_one_paragraph():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Conv2d(3, 2, 1))
    with pytest.raises(HpstudyError, match="2 convolutions taking three channels"):
        adapt_to_channels(net, 1)


def gray_dataset(root):
    """The tiny dataset with its images turned to one channel (manifest says channels: 1)."""
    folder = write_dataset(root, size=16, train=60, test=24)
    manifest = json.loads((folder / "manifest.json").read_text())
    for split in ("train", "test"):
        path = folder / f"{split}_x.npy"
        np.save(path, np.load(path).max(axis=3, keepdims=True))
        manifest["sha256"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest["bytes"][path.name] = path.stat().st_size
    manifest["channels"] = 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(("normalization", "layer_channels"), [("none", 1), ("imagenet", 3)])
def test_one_channel_arrays_train_end_to_end(tmp_path, normalization, layer_channels):
    data = gray_dataset(tmp_path / "data")
    spec = run_spec(tmp_path, normalization=normalization)
    summary = train(spec, data, tmp_path / "run", threads=1)
    weights = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert weights["features.0.weight"].shape[1] == layer_channels
    assert summary["final_test_acc"] is not None and summary["epochs_completed"] == 2


def test_runs_keep_their_identity_unless_they_use_an_optional_module():
    base = identity.canonical_settings({"lr": 1e-3})
    today = identity.run_identity(base, 0)
    assert today["code"] == identity.code_digest("custom")  # the modules digested before
    assert identity.optional_modules(base) == ()
    assert "class_weight" not in today["settings"] and "in_memory" not in today["settings"]
    in_memory = identity.run_identity({**base, "in_memory": False}, 0)
    assert in_memory == today  # an execution setting
    weighted = identity.run_identity({**base, "class_weight": "balanced"}, 0)
    assert weighted["settings"] == {**today["settings"], "class_weight": "balanced"}
    assert weighted["code"] != today["code"]
    assert identity.run_name(weighted) == "lr-0.001_cw-balanced"
    gray = identity.run_identity(base, 0, channels=1)
    assert gray["settings"] == today["settings"] and gray["code"] != today["code"]
    run = plan.make_run(base, 0, "mine-64-gray", channels=1)
    assert run.identity == gray and run.run_id == "mine-64-gray/lr-0.001/seed-0"


def test_gray_fed_as_rgb_streams_as_it_trains_in_memory(tmp_path):
    data = gray_dataset(tmp_path / "data")
    metrics = []
    for in_memory in (True, False):
        spec = run_spec(tmp_path / str(in_memory), normalization="imagenet", in_memory=in_memory)
        train(spec, data, tmp_path / str(in_memory) / "run", threads=1)
        lines = (tmp_path / str(in_memory) / "run" / "metrics.csv").read_text().splitlines()
        metrics.append([line.split(",")[:8] for line in lines])  # up to lr: no timings
    assert metrics[0] == metrics[1]
