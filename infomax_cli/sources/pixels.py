"""The pixel operations the sources use, written with torch alone: torchvision's own (the same
arithmetic, so the same bytes; tests/test_gray.py holds them equal on random images), without importing
torchvision, which costs every `infomax` process about 2.5 s to start."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# torchvision's rgb_to_grayscale weights (after TensorFlow's), not exactly ITU-R 601's 0.299
_LUMA = (0.2989, 0.587, 0.114)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., H, W) gray, in rgb's float dtype: `torchvision...rgb_to_grayscale`."""
    r, g, b = rgb.unbind(dim=-3)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).to(rgb.dtype)


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(C, H, W) float -> (C, height, width), bilinear with antialiasing: torchvision's `resize`."""
    out = F.interpolate(
        image[None], size=[height, width], mode="bilinear", align_corners=False, antialias=True
    )
    return out[0]


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) after resizing the short side to `size`: torchvision's `Resize(size)` rule, the
    long side int(size * long / short)."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The centre size x size of (..., H, W), H and W >= size: torchvision's `center_crop` (its offsets
    rounded with Python's round)."""
    h, w = image.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return image[..., top : top + size, left : left + size]
