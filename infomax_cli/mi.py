"""Mutual information estimators: pure tensor functions, tensors in and out.

`histogram_mi` is the plug-in estimator on a 2-D joint histogram with equal-width bins spanning each
array's own min to max (as `numpy.histogram2d(x, y, bins)` does), in nats.
"""

from __future__ import annotations

import torch


def _bin_indices(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Equal-width bin index (0..bins-1) of every value of each row of `x` (rows: flattened arrays).

    The last bin is closed on the right, as numpy's; a constant row falls in bin 0.
    """
    x = x.to(torch.float64)
    lo = x.amin(dim=-1, keepdim=True)
    hi = x.amax(dim=-1, keepdim=True)
    span = (hi - lo).clamp_min(torch.finfo(torch.float64).tiny)
    idx = ((x - lo) / span * bins).floor().to(torch.long)
    return idx.clamp_(0, bins - 1)


def _mi_from_joint_counts(joint: torch.Tensor, bins: int) -> torch.Tensor:
    """Plug-in MI (nats) from joint counts of shape (..., bins*bins)."""
    joint = joint.to(torch.float64).reshape(*joint.shape[:-1], bins, bins)
    n = joint.sum(dim=(-2, -1), keepdim=True)
    pxy = joint / n
    px = pxy.sum(dim=-1, keepdim=True)
    py = pxy.sum(dim=-2, keepdim=True)
    ratio = pxy / (px * py).clamp_min(torch.finfo(torch.float64).tiny)
    terms = torch.where(pxy > 0, pxy * torch.log(ratio.clamp_min(torch.finfo(torch.float64).tiny)), 0.0)
    return terms.sum(dim=(-2, -1))


def histogram_mi(images: torch.Tensor, maps: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Plug-in MI in nats between `images[n]` (N, H, W) and each `maps[n, c]` (N, C, H, W) -> (N, C).

    The image's bin indices are computed once and shared by its C maps.
    """
    if images.ndim != 3 or maps.ndim != 4:
        raise ValueError(f"images must be (N, H, W) and maps (N, C, H, W); got {tuple(images.shape)} and {tuple(maps.shape)}")
    n, c, h, w = maps.shape
    if images.shape != (n, h, w):
        raise ValueError(f"images {tuple(images.shape)} and maps {tuple(maps.shape)} differ in N, H or W")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    xi = _bin_indices(images.reshape(n, 1, h * w), bins)  # (N, 1, P)
    yi = _bin_indices(maps.reshape(n, c, h * w), bins)  # (N, C, P)
    joint_idx = xi * bins + yi  # a*B+b: no collisions
    counts = torch.zeros(n, c, bins * bins, dtype=torch.float64, device=maps.device)
    counts.scatter_add_(-1, joint_idx, torch.ones_like(joint_idx, dtype=torch.float64))
    return _mi_from_joint_counts(counts, bins).to(torch.float32)
