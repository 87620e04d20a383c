"""The post's custom CNN, torchvision's ResNet18 with local ImageNet weights, fetch-weights."""

from __future__ import annotations

import pytest
import torch

from hpstudy.core.errors import HpstudyError
from hpstudy.training import weights
from hpstudy.training.identity import canonical_settings
from hpstudy.training.models import build_model, minimum_image_size, parameter_counts
from hpstudy.training.models.custom_shapes import flatten_size


def custom(kernel_width, num_classes=6, image_size=150):
    settings = canonical_settings({"model": "custom", "kernel_width": kernel_width})
    return build_model(settings, num_classes, image_size)


def test_custom_cnn_matches_the_post_parameter_count_and_flatten_size():
    model = custom([5, 5, 7])
    counts = parameter_counts(model)
    assert counts["param_count"] == 2_848_562
    # the convolutions hold a sliver; the first linear layer (2250 x 1024) dominates
    assert counts["conv_param_count"] == 3 * 10 * 25 + 10 * 20 * 25 + 20 + 20 * 10 * 49 + 10
    assert counts["fc_param_count"] == 2250 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 6 + 6
    assert flatten_size(150, [5, 5, 7]) == 2250
    assert model.classifier[0].in_features == 2250
    # the seed's first conv has no bias; the other two do
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.bias is None for c in convs] == [True, False, False]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5), (7, 7)]


@pytest.mark.parametrize("kernel_width", [3, 5, 7, [3, 5, 7], [7, 3, 5], [5, 5, 7]])
@pytest.mark.parametrize("image_size", [48, 64, 150])
def test_custom_cnn_output_shape_for_every_width_and_size(kernel_width, image_size):
    model = custom(kernel_width, num_classes=4, image_size=image_size).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, image_size, image_size))
    assert out.shape == (2, 4)


@pytest.mark.parametrize("kernel_width", [[3, 3, 3], [5, 5, 7], [7, 7, 7]])
def test_the_smallest_accepted_image_is_exactly_the_smallest_that_runs(kernel_width):
    smallest = minimum_image_size({"model": "custom", "kernel_width": kernel_width})
    model = custom(kernel_width, image_size=smallest).eval()
    with torch.inference_mode():
        assert model(torch.rand(1, 3, smallest, smallest)).shape == (1, 6)
    assert flatten_size(smallest - 1, kernel_width) == 0  # one pixel less leaves nothing


def marked_resnet18_file(path):
    """A ResNet18 ImageNet-shaped state_dict with recognisable conv1 and fc values."""
    from torchvision.models import resnet18

    state = resnet18(weights=None).state_dict()
    state["conv1.weight"] = torch.full_like(state["conv1.weight"], 0.125)
    state["fc.weight"] = torch.full_like(state["fc.weight"], 7.0)
    torch.save(state, path)
    return path


def resnet_settings(pretrained=True, weights_file=None):
    return canonical_settings(
        {"model": "resnet18", "pretrained": pretrained, "weights": weights_file}
    )


def test_resnet18_loads_local_imagenet_weights_then_replaces_fc(tmp_path):
    path = str(marked_resnet18_file(tmp_path / "resnet18.pth"))
    for model in (build_model(resnet_settings(), 6, 32, weights_path=path),):
        assert torch.equal(model.conv1.weight, torch.full_like(model.conv1.weight, 0.125))
        assert model.fc.out_features == 6 and model.fc.in_features == 512
        assert not torch.any(model.fc.weight == 7.0)
        with torch.inference_mode():
            assert model.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 6)


def test_resnet18_without_pretraining_needs_no_file():
    model = build_model(resnet_settings(pretrained=False), 3, 32)
    assert model.fc.out_features == 3
    assert not torch.all(model.conv1.weight == 0.125)


def test_missing_or_corrupt_weights_name_the_local_file_option(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"<html>404</html>")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    for path in (None, tmp_path / "absent.pth", corrupt, wrong):
        with pytest.raises(HpstudyError) as err:
            build_model(resnet_settings(), 6, 32, weights_path=path and str(path))
        assert "train.weights" in str(err.value)


def test_fetch_weights_copies_and_validates_a_local_file(tmp_path):
    source = marked_resnet18_file(tmp_path / "download.pth")
    out = tmp_path / "resources" / "weights" / "resnet18-imagenet1k-v1.pth"
    assert weights.main(["--model", "resnet18", "--from", str(source), "--out", str(out)]) == 0
    assert out.read_bytes() == source.read_bytes()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(HpstudyError, match="train.weights"):
        weights.fetch_weights("resnet18", tmp_path / "other.pth", str(bad))
    assert not (tmp_path / "other.pth").exists()


def test_fetch_weights_without_internet_names_the_local_file_option(tmp_path, monkeypatch):
    def offline(url, dst, progress=True):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    out = tmp_path / "w.pth"
    with pytest.raises(HpstudyError) as err:
        weights.fetch_weights("resnet18", out)
    assert "train.weights: /path/to/resnet18-f37072fd.pth" in str(err.value)
    assert "download.pytorch.org" in str(err.value)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "head"), [("mobilenet_v3_small", "classifier.3"), ("efficientnet_b0", "classifier.1")]
)
def test_pretrained_weights_load_everything_but_the_head_in_any_family(tmp_path, name, head):
    from torchvision.models import get_model

    torch.manual_seed(1)
    imagenet = get_model(name, weights=None).state_dict()  # the 1000-class layout of the file
    torch.save(imagenet, tmp_path / "weights.pth")
    settings = canonical_settings({"model": name, "pretrained": True})
    model = build_model(settings, 6, 48, weights_path=tmp_path / "weights.pth")
    state = model.state_dict()
    same = {
        k
        for k in imagenet
        if state[k].shape == imagenet[k].shape and torch.equal(imagenet[k], state[k])
    }
    differ = set(imagenet) - same
    assert differ == {f"{head}.weight", f"{head}.bias"}, "everything but the head is the file's"
    assert state[f"{head}.weight"].shape[0] == 6 and imagenet[f"{head}.weight"].shape[0] == 1000
    with torch.inference_mode():
        assert model.eval()(torch.rand(2, 3, 48, 48)).shape == (2, 6)


def test_weights_of_another_model_are_refused_naming_the_mismatch(tmp_path):
    from torchvision.models import get_model

    torch.save(get_model("resnet18", weights=None).state_dict(), tmp_path / "resnet.pth")
    settings = canonical_settings({"model": "mobilenet_v3_small", "pretrained": True})
    with pytest.raises(HpstudyError, match="does not match torchvision's mobilenet_v3_small"):
        build_model(settings, 6, 48, weights_path=tmp_path / "resnet.pth")


@pytest.mark.slow  # spawns processes and waits on them: seconds each
def test_a_torchvision_model_trains_an_epoch_on_the_digits(tmp_path):
    from support.trainfactory import run_spec

    from hpstudy.data.fetch import write_digits_zip
    from hpstudy.data.preprocess import preprocess_archive
    from hpstudy.training.job import train

    write_digits_zip(tmp_path / "digits.zip")
    data = tmp_path / "digits-32"
    preprocess_archive(tmp_path / "digits.zip", data, size=32, name="digits")
    spec = run_spec(
        tmp_path, model="mobilenet_v3_small", batch_size=64, epochs=1, variant="digits-32"
    )
    summary = train(spec, data, tmp_path / "out", threads=2)
    assert summary["epochs_completed"] == 1 and not summary["diverged"]
    assert summary["params"]["data"]["num_classes"] == 10
    assert summary["param_count"] > summary["conv_param_count"] > 0
    assert 0 < summary["final_train_loss"] < 2.5  # it learns: chance is ln 10 = 2.30 at best


def test_unknown_models_and_image_sizes_a_model_cannot_take_are_refused_before_any_job():
    from hpstudy.core.config import validate_config
    from hpstudy.sweep.plan import build_plan

    def plan(model, size=48):
        return build_plan(validate_config({
            "dataset": {"source": "digits", "name": "digits", "image_size": size},
            "seeds": [0], "studies": {"m": {"param": "model", "values": [model]}},
        }))  # fmt: skip

    with pytest.raises(HpstudyError, match="'resnet19' is neither .* did you mean 'resnet18'"):
        plan("resnet19")
    with pytest.raises(HpstudyError, match="vit_b_16 takes 224 px images only"):
        plan("vit_b_16")
    assert len(plan("resnet50").runs) == 1
