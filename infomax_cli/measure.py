"""Encoder maps -> MI tables: every image through the encoder in batches, MI with each of its maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from . import mi
from .errors import Interrupted


def align(images: torch.Tensor, maps: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring images (B, 1, H, W) and maps (B, C, h, w) to one size -> (B, S, S) and (B, C, S, S).

    resize: the maps are resized (bilinear) to the image's size; crop: the larger of the two is
    centre-cropped to the smaller.
    """
    h, w = images.shape[-2:]
    mh, mw = maps.shape[-2:]
    if (h, w) == (mh, mw):
        return images[:, 0], maps
    if mode == "resize":
        return images[:, 0], F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)
    if mode == "crop":
        th, tw = min(h, mh), min(w, mw)
        return _centre_crop(images, th, tw)[:, 0], _centre_crop(maps, th, tw)
    raise ValueError(f"unknown align mode {mode!r}: use 'resize' or 'crop'")


def _centre_crop(x: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    top, left = (x.shape[-2] - th) // 2, (x.shape[-1] - tw) // 2
    return x[..., top : top + th, left : left + tw]


@dataclass
class Measurement:
    """MI of every image with each map, (N, C) arrays in nats, and the example images' pictures."""

    mi: np.ndarray
    mi_null: Optional[np.ndarray]
    examples: dict[int, tuple[np.ndarray, np.ndarray]]  # position -> (image (S, S), maps (C, S, S))


def estimator_options(mcfg) -> dict:
    """The keyword arguments of `mi.estimate_mi` taken from the `measure` config."""
    return {
        "estimator": enum_value(mcfg.estimator), "bins": mcfg.bins, "binning": enum_value(mcfg.binning),
        "miller_madow": mcfg.miller_madow, "ksg_k": mcfg.ksg_k, "ksg_samples": mcfg.ksg_samples,
    }  # fmt: skip


def enum_value(x):
    """A config enum's string (or the string itself)."""
    return getattr(x, "value", x)


@torch.inference_mode()
def measure(
    encoder: torch.nn.Module,
    images: Callable[[torch.Tensor], torch.Tensor],
    n_images: int,
    mcfg,
    seed: int,
    example_ids: Iterable[int] = (),
    null: bool = True,
    on_batch: Optional[Callable[[int], None]] = None,
    stop: Callable[[], Optional[str]] = lambda: None,
) -> Measurement:
    """MI between each image and each of the encoder's maps; with `null`, also against each map with its
    pixels shuffled (the estimator's floor). `images(idx)` gives the (B, 1, 96, 96) batch on the device."""
    encoder.eval()
    opts = estimator_options(mcfg)
    wanted = set(int(i) for i in example_ids)
    mi_all, null_all, examples = [], [], {}
    for lo in range(0, n_images, mcfg.batch_size):
        idx = torch.arange(lo, min(lo + mcfg.batch_size, n_images))
        x = images(idx)
        img, maps = align(x, encoder(x), enum_value(mcfg.align))
        mi_all.append(mi.estimate_mi(img, maps, seed=seed + lo, **opts).cpu().numpy())
        if null:  # the image's pixels shuffled once, against every map: I(pi(x); y) = I(x; pi^-1(y))
            shuffled = mi.shuffle_pixels(img[:, None], seed=seed + lo)[:, 0]
            null_all.append(mi.estimate_mi(shuffled, maps, seed=seed + lo, **opts).cpu().numpy())
        for pos in wanted.intersection(idx.tolist()):
            examples[pos] = (img[pos - lo].float().cpu().numpy(), maps[pos - lo].float().cpu().numpy())
        if on_batch is not None:
            on_batch(len(idx))
        signal_name = stop()
        if signal_name:
            raise Interrupted.by(signal_name, f"{signal_name} during measurement: training is checkpointed.")
    return Measurement(np.concatenate(mi_all), np.concatenate(null_all) if null else None, examples)


@torch.inference_mode()
def layer_mi(encoder: torch.nn.Module, probe: torch.Tensor, mcfg, seed: int) -> list[float]:
    """Mean MI between the probe images and each encoder layer's maps (one value per layer)."""
    was_training = encoder.training
    encoder.eval()
    opts = estimator_options(mcfg)
    out = []
    for maps in encoder(probe, all_layers=True):
        img, aligned = align(probe, maps.float(), enum_value(mcfg.align))
        out.append(float(mi.estimate_mi(img, aligned, seed=seed, **opts).mean()))
    encoder.train(was_training)
    return out
