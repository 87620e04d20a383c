"""The models a run can train, behind one door: the post's custom CNN or any torchvision
classification model; build one, and know before any job runs whether it can train on the
data. Torch is imported only when a model is built or first looked up (:mod:`.catalog`)."""

from __future__ import annotations

from hpstudy.core.formatting import format_value
from hpstudy.training.models import catalog
from hpstudy.training.models.custom_shapes import minimum_image_size as custom_minimum_size


def size_problem(settings: dict, image_size: int) -> str | None:
    """Why a run with these settings cannot train on ``image_size`` px images (None: it can)."""
    name = settings["model"]
    if name == catalog.CUSTOM:
        needed = custom_minimum_size(settings["kernel_width"])
        if image_size >= needed:
            return None
        widths = format_value(settings["kernel_width"])
        return f"the custom CNN with kernel widths {widths} needs at least {needed} px"
    if catalog.accepts(name, image_size):
        return None
    smallest = catalog.minimum_size(name)
    if smallest:
        return f"{name} needs at least {smallest} px"
    if catalog.accepts(name, 224):
        return f"{name} takes 224 px images only"
    return f"{name} does not take {image_size} px images"


def minimum_image_size(settings: dict) -> int | None:
    """The smallest square image side a run with these settings trains on."""
    if settings["model"] == catalog.CUSTOM:
        return custom_minimum_size(settings["kernel_width"])
    return catalog.minimum_size(settings["model"])


def build_model(settings: dict, num_classes: int, image_size: int, weights_path=None):
    """The run's model on the CPU (a pretrained one starts from ``weights_path``)."""
    if settings["model"] == catalog.CUSTOM:
        from hpstudy.training.models.custom import SeedCNN

        return SeedCNN(num_classes, image_size, settings["kernel_width"])
    from hpstudy.training.models.zoo import build_torchvision_model

    return build_torchvision_model(
        settings["model"], num_classes, settings["pretrained"], weights_path
    )


def parameter_counts(model) -> dict[str, int]:
    """Trainable parameters: in all, in convolution layers, in fully connected layers."""
    from torch import nn

    counts = {"param_count": 0, "conv_param_count": 0, "fc_param_count": 0}
    for module in model.modules():
        own = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        counts["param_count"] += own
        if isinstance(module, nn.Conv2d):
            counts["conv_param_count"] += own
        elif isinstance(module, nn.Linear):
            counts["fc_param_count"] += own
    return counts
