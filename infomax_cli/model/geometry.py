"""Measurement geometry: which image pixel each feature-map pixel is compared with.

A stride-1 layer with kernel k and padding p moves the centre of a pixel's receptive field:
- `Conv2d`: output pixel i is centred on input pixel i + (k - 1)/2 - p;
- `ConvTranspose2d`: output pixel i is centred on input pixel i - (k - 1)/2 + p.
Composed over an encoder's layers this gives each layer's *offset*: map pixel i (in either axis) is centred
on image pixel i + offset. The study's four cases end at offsets a +4, b -4, c 0, d 0.

Every case is scored on the same image pixels: the central region that a stack of that depth and kernel
covers with whole receptive fields, [R, S - R) in each axis with R = sum of (k - 1)/2 over the layers
(88 x 88 for four 3x3 layers on 96 x 96 images), each map cropped at its own offset. On those pixels two
encoders that compute the same function (case a and case c built from one seed: padding has no
parameters) give the same MI.

Alignments (`measure.align`; the critics and the information plane use the same one):
- `geometry` (default): the common region above, from the layers' geometry;
- `resize`: the maps resized (bilinear) to the image (what the blog most likely did; the critics then see
  the image resized to the latent instead, as in the study);
- `crop`: the larger of image and maps centre-cropped to the smaller (ignores the offsets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError

ALIGNS = ("geometry", "resize", "crop")  # measure.align's choices (config.Align)


@dataclass(frozen=True)
class Geometry:
    """The geometry of an encoder's layers on size x size images."""

    size: int  # the image's side S
    map_sizes: tuple[int, ...]  # each layer's map side
    offsets: tuple[
        int, ...
    ]  # each layer's offset: map pixel i is centred on image pixel i + offset
    radius: int  # R: receptive-field radius of the whole stack; the common region is [R, S - R)

    @property
    def region(self) -> tuple[int, int]:
        """[lo, hi): the image pixels (per axis) covered with whole receptive fields by the whole stack."""
        return self.radius, self.size - self.radius

    def map_window(self, layer: int = -1) -> tuple[int, int]:
        """[lo, hi): the pixels of layer `layer`'s maps centred on the common region."""
        lo, hi = self.region
        off = self.offsets[layer]
        return lo - off, hi - off


def layer_geometry(kind: str, kernel: int, padding: int, size: int) -> tuple[int, int]:
    """(output size, offset) of one stride-1 layer on a size-wide input."""
    half = (kernel - 1) // 2
    if kind == "conv":
        return size + 2 * padding - kernel + 1, half - padding
    if kind == "deconv":
        return size - 2 * padding + kernel - 1, padding - half
    raise ValueError(f"unknown layer kind {kind!r}: use 'conv' or 'deconv'")


def geometry(layers: Sequence[str], kernel: int, padding: int, size: int) -> Geometry:
    """The Geometry of a stack of stride-1 layers (kinds `conv`/`deconv`, one kernel and padding) on
    size x size images; ConfigError (one line) when the stack does not fit the size or has no centre."""
    if kernel % 2 == 0:
        raise ConfigError(
            f"encoder.kernel={kernel} is even: a receptive field then has no centre pixel, so maps cannot be aligned "
            "with image pixels; use an odd kernel."
        )
    sizes, offsets, side, off = [], [], size, 0
    for i, kind in enumerate(layers):
        side, step = layer_geometry(kind, kernel, padding, side)
        if side < 2:
            raise ConfigError(
                f"dataset.size={size} is too small for case layers {list(layers)}: layer "
                f"{i + 1}'s maps would be {side}x{side}; "
                "use larger images (dataset.size)."
            )
        off += step
        sizes.append(side)
        offsets.append(off)
    radius = len(layers) * (kernel - 1) // 2
    geom = Geometry(size, tuple(sizes), tuple(offsets), radius)
    if size - 2 * radius < 2:
        raise ConfigError(
            f"dataset.size={size} is too small for {len(layers)} layers of kernel {kernel}: no "
            "image pixel is covered by "
            f"whole receptive fields ({size} - 2*{radius} < 2); use images of at least {2 * radius + 2} pixels."
        )
    for i, m in enumerate(sizes):
        lo, hi = geom.map_window(i)
        if lo < 0 or hi > m:
            raise ConfigError(
                f"case layers {list(layers)} with padding {padding}: layer {i + 1}'s {m}x{m} "
                "maps do not cover the image's "
                f"central {size - 2 * radius} pixels (they would need map pixels "
                f"{lo}..{hi - 1}); use measure.align=resize or crop."
            )
    return geom


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
    offset of the layer the maps come from (the last by default)."""
    return align_images(images, maps.shape[-2:], align, geom), align_maps(
        maps, images.shape[-2:], align, geom, layer
    )


def align_images(
    images: torch.Tensor, map_hw: Sequence[int], align: str, geom: Geometry | None = None
) -> torch.Tensor:
    """The image pixels `align_pair` compares maps of size `map_hw` with: (B, 1, H, W) -> (B, S', S')."""
    h, w = images.shape[-2:]
    if align == "geometry":
        lo, hi = _region(geom, h)
        return images[:, 0, lo:hi, lo:hi]
    if align == "resize" or tuple(map_hw) == (h, w):
        return images[:, 0]
    if align == "crop":
        return _centre_crop(images, min(h, map_hw[0]), min(w, map_hw[1]))[:, 0]
    raise ValueError(f"unknown align {align!r}: use one of {ALIGNS}")


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
        _region(geom, image_hw[0])
        lo, hi = geom.map_window(layer)
        return maps[:, :, lo:hi, lo:hi]
    if tuple(image_hw) == (mh, mw):
        return maps
    if align == "resize":
        return F.interpolate(maps, size=tuple(image_hw), mode="bilinear", align_corners=False)
    if align == "crop":
        return _centre_crop(maps, min(image_hw[0], mh), min(image_hw[1], mw))
    raise ValueError(f"unknown align {align!r}: use one of {ALIGNS}")


def _region(geom: Geometry | None, size: int) -> tuple[int, int]:
    if geom is None:
        raise ValueError("align 'geometry' needs the encoder's Geometry")
    if geom.size != size:
        raise ValueError(f"the geometry is for {geom.size}-pixel images, got {size}")
    return geom.region


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
