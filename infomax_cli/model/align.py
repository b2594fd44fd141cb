"""Maps and images brought onto the same pixels, by `measure.align` (the alignments are described in
`geometry.py`, which says where each map pixel sits; this module applies that to tensors)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..choices import Align
from ..errors import ConfigError
from .geometry import Geometry


def _centre_crop(x: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    top, left = (x.shape[-2] - th) // 2, (x.shape[-1] - tw) // 2
    return x[..., top : top + th, left : left + tw]


def align_pair(
    images: torch.Tensor,
    maps: torch.Tensor,
    align: str,
    geom: Geometry | None = None,
    layer: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, 1, H, W) and one layer's maps (B, C, h, w) brought onto the same pixels ->
    ((B, S', S'), (B, C, S', S')). `geom` (the encoder's Geometry) is needed by `geometry`; `layer` picks the
    grid of the layer the maps come from (the last by default)."""
    return align_images(images, maps.shape[-2:], align, geom, layer), align_maps(
        maps, images.shape[-2:], align, geom, layer
    )


def align_images(
    images: torch.Tensor,
    map_hw: Sequence[int],
    align: str,
    geom: Geometry | None = None,
    layer: int = -1,
) -> torch.Tensor:
    """The image pixels `align_pair` compares maps of size `map_hw` with: (B, 1, H, W) -> (B, S', S')."""
    h, w = images.shape[-2:]
    if align == "geometry":
        _check(geom, h)
        window = geom.image_window(layer)
        return images[:, 0, window, window]
    if align == "resize" or tuple(map_hw) == (h, w):
        return images[:, 0]
    if align == "crop":
        return _centre_crop(images, min(h, map_hw[0]), min(w, map_hw[1]))[:, 0]
    raise ValueError(f"unknown align {align!r}: use one of {', '.join(Align)}")


def align_maps(
    maps: torch.Tensor,
    image_hw: Sequence[int],
    align: str,
    geom: Geometry | None = None,
    layer: int = -1,
) -> torch.Tensor:
    """The maps' pixels `align_pair` compares with the image: (B, C, h, w) -> (B, C, S', S')."""
    mh, mw = maps.shape[-2:]
    if align == "geometry":
        _check(geom, image_hw[0])
        lo, hi = geom.map_window(layer)
        step = geom.map_step(layer)
        return maps[:, :, lo:hi:step, lo:hi:step]
    if tuple(image_hw) == (mh, mw):
        return maps
    if align == "resize":
        return F.interpolate(maps, size=tuple(image_hw), mode="bilinear", align_corners=False)
    if align == "crop":
        return _centre_crop(maps, min(image_hw[0], mh), min(image_hw[1], mw))
    raise ValueError(f"unknown align {align!r}: use one of {', '.join(Align)}")


def _check(geom: Geometry | None, size: int) -> None:
    if geom is None:
        raise ValueError("align 'geometry' needs the encoder's Geometry")
    if geom.problem is not None:
        raise ConfigError(geom.problem)
    if geom.size != size:
        raise ValueError(f"the geometry is for {geom.size}-pixel images, got {size}")


def critic_view(
    image: torch.Tensor, latent: torch.Tensor, align: str, geom: Geometry | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the objective networks see: (image (B, 1, s, s), latent (B, C, s, s)) on the same pixels.
    `resize` keeps the study's choice (the image resized to the latent); the others crop both like
    `align_pair`."""
    if align == "resize":
        if image.shape[-2:] != latent.shape[-2:]:
            image = F.interpolate(
                image, size=latent.shape[-2:], mode="bilinear", align_corners=False
            )
        return image, latent
    img, maps = align_pair(image, latent, align, geom)
    return img[:, None], maps
