"""The two models the seed post trained: its small custom CNN and torchvision's ResNet18.

The custom CNN is the seed's network layer for layer; only the flatten size is computed from the
image size and kernel widths instead of being hard-coded (2250 at 150x150 with widths 5, 5, 7).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from hpstudy.errors import HpstudyError

SEED_KERNEL_WIDTHS = (5, 5, 7)
# (in_channels, out_channels, padding, bias) of the seed's three conv layers
_CONV_LAYOUT = ((3, 10, 1, False), (10, 20, 1, True), (20, 10, 0, True))
WEIGHTS_OPTION_HINT = (
    "set `train.weights: /path/to/resnet18-f37072fd.pth` in the config to a local copy of "
    "torchvision's ImageNet ResNet18 weights (or run `hpstudy fetch-weights --model resnet18 "
    "--from /path/to/resnet18-f37072fd.pth` to put one into resources/weights/)"
)


def kernel_widths(kernel_width: int | Sequence[int]) -> list[int]:
    """The three conv kernel widths from one width (used for every layer) or a list of three."""
    widths = [kernel_width] * 3 if isinstance(kernel_width, int) else list(kernel_width)
    if len(widths) != 3 or not all(isinstance(w, int) and w >= 1 for w in widths):
        raise HpstudyError(
            f"kernel_width {kernel_width!r} is not valid: give one positive integer for all three "
            "conv layers of the custom CNN or a list of three, e.g. `kernel_width: [5, 5, 7]`."
        )
    return widths


def _feature_side(image_size: int, widths: Sequence[int]) -> int:
    """Side of the last feature map (0 if some layer would be empty) for a square input."""
    side = image_size
    for (_, _, padding, _), width in zip(_CONV_LAYOUT, widths, strict=True):
        side = side + 2 * padding - width + 1  # conv, stride 1
        if side < 2:  # the 2x2 max pool needs at least two pixels
            return 0
        side //= 2
    return side


def minimum_image_size(widths: Sequence[int]) -> int:
    """The smallest square image side the custom CNN accepts with these kernel widths."""
    size = 1
    while _feature_side(size, widths) < 1:
        size += 1
    return size


def custom_flatten_size(image_size: int, widths: Sequence[int]) -> int:
    """Number of features entering the first linear layer (2250 for the seed's setup)."""
    side = _feature_side(image_size, widths)
    if side < 1:
        raise HpstudyError(
            f"image_size {image_size} is too small for the custom CNN with kernel_width "
            f"{list(widths)}: it needs images of at least {minimum_image_size(widths)} px. "
            "Use a larger image size for the dataset or smaller kernel widths."
        )
    return _CONV_LAYOUT[-1][1] * side * side


class SeedCNN(nn.Module):
    """The seed post's custom CNN (three conv blocks and a dropout MLP head)."""

    def __init__(self, num_classes: int, image_size: int, widths: Sequence[int]) -> None:
        super().__init__()
        flat = custom_flatten_size(image_size, widths)
        blocks = []
        for (c_in, c_out, padding, bias), width in zip(_CONV_LAYOUT, widths, strict=True):
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size=width, padding=padding, bias=bias),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        # the seed's head order, dropout before the first ReLU and after the second, kept as is
        self.classifier = nn.Sequential(
            nn.Linear(flat, 1024),
            nn.Dropout(0.5),
            nn.ReLU(),
            nn.Linear(1024, 512),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of images (N, 3, H, W)."""
        return self.classifier(torch.flatten(self.features(x), 1))


def load_imagenet_state_dict(weights_path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
    """Read torchvision's ImageNet ResNet18 state_dict from a local file (weights_only)."""
    if not weights_path:
        raise HpstudyError(
            "ResNet18 with pretrained: true needs ImageNet weights but no weights file was "
            f"given; {WEIGHTS_OPTION_HINT}."
        )
    path = Path(weights_path)
    if not path.is_file():
        raise HpstudyError(
            f"The ResNet18 weights file {path} does not exist; {WEIGHTS_OPTION_HINT}."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated download, HTML error page, pickle with code, ...
        raise HpstudyError(
            f"The ResNet18 weights file {path} cannot be read as a PyTorch state_dict "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            f"{WEIGHTS_OPTION_HINT}."
        ) from err
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise HpstudyError(
            f"The file {path} is not a torchvision ResNet18 state_dict (no 'fc.weight' key); "
            f"{WEIGHTS_OPTION_HINT}."
        )
    return state


def build_resnet18(num_classes: int, pretrained: bool, weights_path=None) -> nn.Module:
    """torchvision's ResNet18, optionally with ImageNet weights, ``fc`` sized for the classes."""
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    if pretrained:
        try:
            model.load_state_dict(load_imagenet_state_dict(weights_path))
        except RuntimeError as err:  # shapes or keys do not match ResNet18
            raise HpstudyError(
                f"The weights file {weights_path} does not match torchvision's ResNet18 "
                f"({str(err).splitlines()[0]}); {WEIGHTS_OPTION_HINT}."
            ) from err
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def build_model(settings: dict, num_classes: int, image_size: int, weights_path=None) -> nn.Module:
    """The run's model on the CPU. ``weights_path`` (else ``settings['weights']``) is used only
    by a pretrained ResNet18."""
    name = settings["model"]
    if name == "custom":
        return SeedCNN(num_classes, image_size, kernel_widths(settings["kernel_width"]))
    if name == "resnet18":
        weights = weights_path or settings.get("weights")
        return build_resnet18(num_classes, bool(settings.get("pretrained")), weights)
    raise HpstudyError(f"model {name!r} is not known: use `model: custom` or `model: resnet18`.")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
