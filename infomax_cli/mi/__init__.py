"""Mutual information estimators: pure functions, tensors in and tensors out, in nats.

`estimate_mi` puts the histogram (equal-width or equal-frequency bins, optional Miller-Madow), KSG and
Gaussian-copula estimators behind one entry point; `histogram_mi` is the contract's plug-in estimator
on a 2-D joint histogram with equal-width bins spanning each array's own min to max, with bin edges
computed exactly as `numpy.histogram2d(x, y, bins)` computes them, so the counts, not just the MI, agree
with numpy; `shuffle_pixels` gives the null baseline.

A pair in which either array holds a NaN or an infinity gets NaN; a constant array gets MI 0. Every
estimator reports which pairs are so, and `_masked` below gives them those values.

This module holds the entry points, the input checks and the one choice of kernels (`_kernels`): numba
kernels on CPU when numba is installed, else torch (the fallback, and the CUDA path). Each estimator's
numba and torch versions sit side by side in its own module:

    histogram.py  equal-width and equal-frequency histograms, plug-in MI, Miller-Madow term
    gcmi.py       Gaussian-copula MI
    ksg.py        KSG estimator 1
    ranks.py      mid-ranks (equal-frequency bins and GCMI)
    shuffle.py    the shuffled null's permutations (splitmix64 Fisher-Yates)
    common.py     numba or its stand-in, the kernel lock, chunk sizes, the finiteness check

validate.py scores these estimators against distributions whose MI is known (`infomax validate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from ..choices import Binning, Estimator
from . import gcmi, histogram, ksg, shuffle
from .common import HAVE_NUMBA
from .common import numba as numba  # re-exported: the benchmarks report its version and threads
from .gcmi import GCMI_R2_MAX

__all__ = [
    "Binning",
    "Estimator",
    "GCMI_R2_MAX",
    "HAVE_NUMBA",
    "estimate_mi",
    "histogram_mi",
    "shuffle_pixels",
]


def estimate_mi(
    images: torch.Tensor,
    maps: torch.Tensor,
    *,
    estimator: str = "histogram",
    bins: int = 20,
    binning: str = "width",
    miller_madow: bool = False,
    ksg_k: int = 3,
    ksg_samples: int = 1024,
    seed: int = 0,
    ids=None,
) -> torch.Tensor:
    """MI in nats between `images[n]` (N, H, W) and each `maps[n, c]` (N, C, H, W): (N, C) float32 on CPU.

    estimator "histogram": plug-in on a bins x bins joint histogram, `binning` "width" (equal-width,
    the contract's histogram_mi) or "quantile" (equal-frequency by mid-rank: exactly invariant to
    strictly increasing transforms; ties share a bin); `miller_madow` adds (m_x + m_y - m_xy - 1)/(2P),
    m the occupied bins. "ksg": Kraskov-Stoegbauer-Grassberger estimator 1 (max-norm, k = ksg_k) on
    ksg_samples random pixels per image drawn from (seed, ids[n]), standardised, with 1e-10
    jitter against ties. "gcmi": Gaussian-copula MI (Ince et al. 2017) with its bias correction.
    `ids`: the images' global ids (default 0..N-1), so random draws do not depend on batching.
    """
    n, c, p = _check(images, maps)
    kernels = _kernels(maps.device)
    if estimator == Estimator.histogram:
        bins = _check_bins(bins)
        if binning == Binning.width:
            mi, mm, ok, const = kernels.width(images, maps, bins)
        elif binning == Binning.quantile:
            mi, mm, ok, const = kernels.quantile(images, maps, bins)
        else:
            raise ValueError(f"unknown binning {binning!r}; use one of {', '.join(Binning)}")
        out = mi + mm if miller_madow else mi
    elif estimator == Estimator.ksg:
        ids = _ids(ids, n)
        k, s = _check_ksg(ksg_k, ksg_samples, p)
        if n * c == 0:  # no pairs: no samples to draw or standardise
            return torch.zeros(n, c)
        out, ok, const = kernels.ksg(images, maps, k, s, seed, ids)
    elif estimator == Estimator.gcmi:
        out, ok, const = kernels.gcmi(images, maps)
    else:
        raise ValueError(f"unknown estimator {estimator!r}; use one of {', '.join(Estimator)}")
    return _masked(out, ok, const).to(device="cpu", dtype=torch.float32)


def histogram_mi(images: torch.Tensor, maps: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Plug-in MI in nats between `images[n]` (N, H, W) and each `maps[n, c]` (N, C, H, W) -> (N, C)
    float32 on the maps' device; equal-width bins spanning each array's own min..max, as
    numpy.histogram2d(x, y, bins). The image's bin indices are computed once and shared by its maps."""
    _check(images, maps)
    bins = _check_bins(bins)
    mi, _, ok, const = _kernels(maps.device).width(images, maps, bins)
    return _masked(mi, ok, const).to(device=maps.device, dtype=torch.float32)


def shuffle_pixels(maps: torch.Tensor, seed: int, ids=None) -> torch.Tensor:
    """The maps (N, C, H, W) with each map's pixels spatially permuted, one uniform random permutation
    per (image, map c) that depends only on (seed, ids[n], c) (ids: global image ids, default 0..N-1):
    the shuffled null (its MI with the image is the estimator's bias). Same device and dtype as `maps`."""
    if not isinstance(maps, torch.Tensor) or maps.ndim != 4:
        raise ValueError(
            f"maps must be a (N, C, H, W) tensor, got {getattr(maps, 'shape', type(maps))}"
        )
    n, c, h, w = maps.shape
    keys = shuffle.permutation_keys(int(seed), _ids(ids, n), c)
    # drawn on the host whatever the maps' device: numba's kernel when installed, else numpy's
    perm = _kernels(torch.device("cpu")).permutations(keys, h * w).reshape(n, c, h * w)
    perm = torch.from_numpy(perm).to(maps.device)
    return maps.reshape(n, c, h * w).gather(-1, perm).reshape(n, c, h, w)


# ----------------------------------------------------------------------- input checks and masking


def _check(images: torch.Tensor, maps: torch.Tensor) -> tuple[int, int, int]:
    """(N, C, P) of a valid (images, maps) pair, else ValueError."""
    if not isinstance(images, torch.Tensor) or not isinstance(maps, torch.Tensor):
        raise ValueError("images and maps must be torch tensors")
    if images.ndim != 3 or maps.ndim != 4:
        raise ValueError(
            f"images must be (N, H, W) and maps (N, C, H, W); got {tuple(images.shape)} and {tuple(maps.shape)}"
        )
    n, c, h, w = maps.shape
    if images.shape != (n, h, w):
        raise ValueError(
            f"images {tuple(images.shape)} and maps {tuple(maps.shape)} differ in N, H or W"
        )
    if h * w < 2:
        raise ValueError(f"need at least 2 pixels per array, got H, W = {h}, {w}")
    if images.device != maps.device:
        raise ValueError(f"images are on {images.device} and maps on {maps.device}")
    for t in (images, maps):
        if t.is_complex():
            raise ValueError(
                f"unsupported dtype {t.dtype}: use a real float, integer or bool tensor"
            )
    return n, c, h * w


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return int(bins)


def _check_ksg(k: int, samples: int, p: int) -> tuple[int, int]:
    """(k, samples per pair: at most P) of valid KSG options, else ValueError."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"ksg_k must be an integer >= 1, got {k!r}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ValueError(f"ksg_samples must be an integer >= 2, got {samples!r}")
    s = min(int(samples), p)
    if s <= k:
        raise ValueError(f"KSG needs more than ksg_k={k} samples per pair, got {s}")
    return int(k), s


def _ids(ids, n: int) -> np.ndarray:
    """Global image ids (int64, N) of a batch; 0..N-1 when not given."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids, dtype=np.int64).reshape(
        -1
    )
    if ids.size != n:
        raise ValueError(f"{ids.size} ids for {n} images")
    return ids


def _masked(estimate: torch.Tensor, finite: torch.Tensor, constant: torch.Tensor) -> torch.Tensor:
    """The one rule for degenerate pairs, given an estimator's (N, C) estimate and its masks: NaN where
    either array holds a NaN or an infinity, else 0 where either array is constant."""
    return torch.where(finite, torch.where(constant, 0.0, estimate), math.nan)


# --------------------------------------------------------------------------------------- dispatch


class _Kernels(NamedTuple):
    """One implementation of every estimator. Each takes the checked (images, maps) and its options and
    returns its (N, C) float64 estimates (MI, then the Miller-Madow term for the histograms), then which
    pairs are finite and which hold a constant array."""

    width: Callable  # (images, maps, bins) -> MI, Miller-Madow term, finite, constant
    quantile: Callable  # (images, maps, bins) -> MI, Miller-Madow term, finite, constant
    gcmi: Callable  # (images, maps) -> MI, finite, constant
    ksg: Callable  # (images, maps, k, samples, seed, ids) -> MI, finite, constant
    permutations: Callable  # (keys, P) -> (keys, P) int64 permutations of 0..P-1 (numpy)


_NUMBA = _Kernels(
    histogram.width_numba,
    histogram.quantile_numba,
    gcmi.gcmi_numba,
    ksg.ksg_numba,
    shuffle.permutations_numba,
)
_TORCH = _Kernels(
    histogram.width_torch,
    histogram.quantile_torch,
    gcmi.gcmi_torch,
    ksg.ksg_torch,
    shuffle.permutations_numpy,
)


def _kernels(device: torch.device) -> _Kernels:
    """The one numba-or-torch choice: numba's kernels for tensors on the CPU when numba is installed,
    else torch's (any device; numpy for the shuffle's permutations)."""
    return _NUMBA if HAVE_NUMBA and device.type == "cpu" else _TORCH
