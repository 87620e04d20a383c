"""The models a run can train, behind one door: build one, and know before any job runs which
image sizes it accepts. Torch is imported only when a model is built."""

from __future__ import annotations

from hpstudy.models.custom_layout import minimum_image_size as custom_minimum_size

PRETRAINED_MODELS = ("resnet18",)  # models with ImageNet weights to start from


def minimum_image_size(settings: dict) -> int:
    """The smallest square image side a run with these settings can train on."""
    if settings["model"] == "custom":
        return custom_minimum_size(settings["kernel_width"])
    return 8  # torchvision's ResNet18 ends in an adaptive pool: any size the schema allows


def has_pretrained_weights(model: str) -> bool:
    """Whether ImageNet weights exist for ``model``."""
    return model in PRETRAINED_MODELS


def build_model(settings: dict, num_classes: int, image_size: int, weights_path=None):
    """The run's model on the CPU (a pretrained one starts from ``weights_path``)."""
    if settings["model"] == "custom":
        from hpstudy.models.custom import SeedCNN

        return SeedCNN(num_classes, image_size, settings["kernel_width"])
    from hpstudy.models.zoo import build_torchvision_model

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
