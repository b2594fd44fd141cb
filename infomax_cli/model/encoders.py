"""The four encoder cases of the study, built from their config (`conf/case/*.yaml`); a case that
names any nn.Module (`case.encoder._target_`) is built by `probe.instantiate_module` (`build_encoder`).

Each case is four 3x3, stride-1 layers ending in 32 feature maps:
| case | layers                       | spatial size            |
| a    | conv x4, padding 0           | 96 94 92 90 88          |
| b    | deconv x4, padding 0         | 96 98 100 102 104       |
| c    | conv x4, padding 1           | 96 96 96 96 96          |
| d    | deconv x2, conv x2, padding 0| 96 98 100 98 96         |
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import CaseConfig, EncoderConfig
from .geometry import Geometry, geometry
from .probe import instantiate_module


class Encoder(nn.Module):
    """Layers of 3x3 convs / transposed convs with ReLU between them; the latent is sigmoid(last layer),
    so it lives in [0, 1] like the uniform prior it is matched to. Weights start with He (Kaiming) init
    from each layer's true fan-in (`he_init`), so every case starts with latents of the same scale."""

    def __init__(
        self,
        layers: list[str],
        widths: list[int],
        maps: int = 32,
        padding: int = 0,
        kernel: int = 3,
    ):
        super().__init__()
        if len(layers) != len(widths) + 1:
            raise ValueError(
                f"{len(layers)} layers need {len(layers) - 1} intermediate widths, got {widths}"
            )
        self.layers, self.kernel, self.padding = list(layers), kernel, padding
        channels = [1, *widths, maps]
        blocks = []
        for kind, c_in, c_out in zip(layers, channels[:-1], channels[1:]):
            if kind == "conv":
                blocks.append(nn.Conv2d(c_in, c_out, kernel, stride=1, padding=padding))
            elif kind == "deconv":
                blocks.append(nn.ConvTranspose2d(c_in, c_out, kernel, stride=1, padding=padding))
            else:
                raise ValueError(f"unknown layer kind {kind!r}: use 'conv' or 'deconv'")
        self.blocks = nn.ModuleList(blocks)
        for block in self.blocks:
            he_init(block)

    def geometry(self, size: int) -> Geometry:
        """Where each layer's map pixels are centred in a size x size image (see geometry.py)."""
        return geometry(self.layers, self.kernel, self.padding, size)

    def forward(self, x: torch.Tensor, all_layers: bool = False):
        """x: (B, 1, H, W) in [0, 1] -> latent (B, maps, H', W'); with all_layers, every layer's output."""
        x = x * 2 - 1  # centre the pixels: [0, 1] -> [-1, 1]
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            x = torch.sigmoid(x) if i == len(self.blocks) - 1 else torch.relu(x)
            outs.append(x)
        return outs if all_layers else x


def fan_in(block: nn.Conv2d | nn.ConvTranspose2d) -> int:
    """Inputs that feed one output of a stride-1 layer: in_channels * k * k, for a convolution and a
    transposed convolution alike. (torch's `kaiming_normal_` reads `weight.size(1)`, which for
    ConvTranspose2d's in x out x k x k weight is out_channels: the wrong fan.)"""
    kh, kw = block.kernel_size
    return block.in_channels * kh * kw


def he_init(block: nn.Conv2d | nn.ConvTranspose2d) -> None:
    """He (Kaiming) normal init for ReLU layers, N(0, 2 / fan_in), with the layer's true fan-in; zero bias."""
    if any(s != 1 for s in block.stride):
        raise ValueError("he_init's fan-in assumes stride 1")
    with torch.no_grad():
        block.weight.normal_(0.0, math.sqrt(2.0 / fan_in(block)))
        block.bias.zero_()


def build_encoder(case: CaseConfig, encoder: EncoderConfig) -> nn.Module:
    """The case's encoder: the module its `encoder` node names (`_target_`, an nn.Module subclass,
    built with its arguments as data), or the study's Encoder from its layers and the `encoder` node."""
    if case.encoder is not None:
        return instantiate_module(dict(case.encoder))
    return Encoder(
        list(case.layers), list(encoder.widths), encoder.maps, case.padding, encoder.kernel
    )


def layer_sizes(model: Encoder, size: int = 96) -> list[int]:
    """Spatial size after each layer for a size x size input (the input size first)."""
    with torch.no_grad():
        outs = model(torch.zeros(1, 1, size, size), all_layers=True)
    return [size] + [o.shape[-1] for o in outs]
