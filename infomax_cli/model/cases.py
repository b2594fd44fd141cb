"""Built-in cases beyond the study, written as a user writes an encoder: plain nn.Modules that
`conf/case/{strided,dilated,residual}.yaml` name by `_target_`, measured where their receptive fields
look (probe.py), their recorded layers their top-level children.

Like the study's encoders they centre the pixels to [-1, 1], use ReLU between layers and end in a
sigmoid (latents in [0, 1], like the uniform prior), and start with He initialisation from each
convolution's fan-in (in_channels * k * k, whatever the stride or dilation) and zero biases.

| case     | layers                                                   | maps   | receptive-field radius per layer |
| strided  | 3x3 stride 2, then three 3x3 same-padded                  | 48x48  | 1, 3, 5, 7 (offset 0, stride 2)  |
| dilated  | 3x3 with dilation 1, 2, 4, 8, same-padded                | 96x96  | 1, 3, 7, 15                      |
| residual | 3x3 stem, two residual blocks of two 3x3, 1x1 head       | 96x96  | 1, 3, 5, 5                       |
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def he_conv(
    c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1
) -> nn.Conv2d:
    """A convolution that keeps the map's grid ('same' padding), He-initialised from its fan-in."""
    conv = nn.Conv2d(
        c_in, c_out, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation
    )
    with torch.no_grad():
        conv.weight.normal_(0.0, math.sqrt(2.0 / (c_in * kernel * kernel)))
        conv.bias.zero_()
    return conv


class Stack(nn.Sequential):
    """Blocks applied in order to the pixels centred to [-1, 1]; each block is a recorded layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * 2 - 1)


def _relu(conv: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv, nn.ReLU())


def _sigmoid(conv: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv, nn.Sigmoid())


class Strided(Stack):
    """A stride-2 stem (96 -> 48), then three same-padded 3x3 convolutions on the 48x48 grid."""

    def __init__(self, widths: Sequence[int] = (8, 16, 16), maps: int = 32):
        c = [1, *widths, maps]
        super().__init__(
            _relu(he_conv(c[0], c[1], stride=2)),
            _relu(he_conv(c[1], c[2])),
            _relu(he_conv(c[2], c[3])),
            _sigmoid(he_conv(c[3], c[4])),
        )


class Dilated(Stack):
    """Four same-padded 3x3 convolutions with dilation 1, 2, 4, 8: the image's size throughout,
    receptive fields 31 pixels wide (the study's cases: 9)."""

    def __init__(self, widths: Sequence[int] = (8, 16, 16), maps: int = 32):
        c = [1, *widths, maps]
        super().__init__(
            _relu(he_conv(c[0], c[1], dilation=1)),
            _relu(he_conv(c[1], c[2], dilation=2)),
            _relu(he_conv(c[2], c[3], dilation=4)),
            _sigmoid(he_conv(c[3], c[4], dilation=8)),
        )


class ResidualBlock(nn.Module):
    """relu(x + conv(relu(conv(x)))): two same-padded 3x3 convolutions and the identity beside them."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1, self.conv2 = he_conv(width, width), he_conv(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class Residual(Stack):
    """A 3x3 stem, residual blocks at one width, and a 1x1 head to the maps: the image's size
    throughout."""

    def __init__(self, width: int = 16, maps: int = 32, blocks: int = 2):
        super().__init__(
            _relu(he_conv(1, width)),
            *(ResidualBlock(width) for _ in range(blocks)),
            _sigmoid(he_conv(width, maps, kernel=1)),
        )
