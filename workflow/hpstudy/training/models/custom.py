"""The post's custom CNN, layer for layer; only the flatten size is computed from the image
size and kernel widths instead of being hard-coded (2250 at 150x150 with widths 5, 5, 7)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hpstudy.training.models.custom_shapes import CONV_LAYOUT, flatten_size


class SeedCNN(nn.Module):
    """The post's custom CNN (three conv blocks and a dropout MLP head)."""

    def __init__(self, num_classes: int, image_size: int, widths: Sequence[int]) -> None:
        super().__init__()
        blocks = []
        for (c_in, c_out, padding, bias), width in zip(CONV_LAYOUT, widths, strict=True):
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size=width, padding=padding, bias=bias),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        # the post's head order, dropout before the first ReLU and after the second, kept as is
        self.classifier = nn.Sequential(
            nn.Linear(flatten_size(image_size, widths), 1024),
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
