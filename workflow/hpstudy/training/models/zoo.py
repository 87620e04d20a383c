"""torchvision's classification models, optionally starting from ImageNet weights read from a
local file (compute nodes often have no internet; a local rule fetches the file).

A pretrained model loads every tensor of the weights file except those of its classification
head, which is sized for the dataset's classes: the head is found as the tensors whose shape
follows the class count, so every family (``fc``, ``classifier``, ``heads``, ...) is handled
without code of its own. Everything else must match the model exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from hpstudy.core.errors import HpstudyError
from hpstudy.training.models.catalog import (
    AUXILIARY_HEADS,
    PROBE_CLASSES,
    build_kwargs,
    head_keys,
    meta_model,
)

WEIGHTS_OPTION_HINT = (
    "set `train.weights: /path/to/<weights file>.pth` in the config to a local copy of "
    "torchvision's ImageNet weights for the model (or put one in place with `hpstudy "
    "fetch-weights --model <model> --from /path/to/<weights file>.pth --out <path>`)"
)


def load_state_dict_file(weights_path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
    """Read a state_dict from a local file (``weights_only``); a clear error when it cannot."""
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
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise HpstudyError(
            f"The file {path} is not a state_dict of tensors; {WEIGHTS_OPTION_HINT}."
        )
    return state


def check_weights(name: str, state: dict, path) -> set[str]:
    """Check a weights file against the ImageNet build of ``name``; returns the keys to load
    (every one but the head's and an auxiliary head's)."""
    reference = meta_model(name, PROBE_CLASSES[0]).state_dict()
    auxiliary = AUXILIARY_HEADS.get(name)
    extra = {k for k in state if k not in reference and not (auxiliary and k.startswith(auxiliary))}
    missing = set(reference) - set(state)
    wrong = sorted(k for k in reference if k in state and state[k].shape != reference[k].shape)
    if extra or missing or wrong:
        found = (("unexpected", extra), ("missing", missing), ("other shapes", wrong))
        problems = [f"{label}: {', '.join(sorted(keys)[:4])}" for label, keys in found if keys]
        raise HpstudyError(
            f"The weights file {path} does not match torchvision's {name} "
            f"({'; '.join(problems)}); {WEIGHTS_OPTION_HINT}."
        )
    return set(reference) - head_keys(name)


def build_torchvision_model(
    name: str, num_classes: int, pretrained: bool, weights_path=None
) -> nn.Module:
    """torchvision's ``name`` for ``num_classes`` classes, optionally starting from ImageNet
    weights (all but the classification head)."""
    from torchvision.models import get_model

    model = get_model(name, weights=None, num_classes=num_classes, **build_kwargs(name))
    if pretrained:
        state = load_state_dict_file(weights_path)
        body = check_weights(name, state, weights_path)
        missing, unexpected = model.load_state_dict({k: state[k] for k in body}, strict=False)
        assert set(missing) == head_keys(name) and not unexpected, (missing, unexpected)
    return model
