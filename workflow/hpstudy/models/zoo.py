"""torchvision's classification models, optionally starting from ImageNet weights read from a
local file (compute nodes often have no internet; a local rule fetches the file)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from hpstudy.errors import HpstudyError

WEIGHTS_OPTION_HINT = (
    "set `train.weights: /path/to/resnet18-f37072fd.pth` in the config to a local copy of "
    "torchvision's ImageNet ResNet18 weights (or run `hpstudy fetch-weights --model resnet18 "
    "--from /path/to/resnet18-f37072fd.pth` to put one into resources/weights/)"
)


def load_imagenet_state_dict(weights_path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
    """Read a torchvision ImageNet state_dict from a local file (``weights_only``)."""
    if not weights_path:
        raise HpstudyError(
            "A pretrained run needs ImageNet weights but no weights file was given; "
            f"{WEIGHTS_OPTION_HINT}."
        )
    path = Path(weights_path)
    if not path.is_file():
        raise HpstudyError(f"The weights file {path} does not exist; {WEIGHTS_OPTION_HINT}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated download, HTML error page, pickle with code, ...
        first_line = str(err).splitlines()[0] if str(err) else ""
        raise HpstudyError(
            f"The weights file {path} cannot be read as a PyTorch state_dict "
            f"({type(err).__name__}: {first_line}); {WEIGHTS_OPTION_HINT}."
        ) from err
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise HpstudyError(
            f"The file {path} is not a torchvision ResNet18 state_dict (no 'fc.weight' key); "
            f"{WEIGHTS_OPTION_HINT}."
        )
    return state


def build_torchvision_model(
    name: str, num_classes: int, pretrained: bool, weights_path=None
) -> nn.Module:
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
