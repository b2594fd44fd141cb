"""The Gaussian-copula estimator (Ince et al. 2017): each array's mid-ranks (mi_ranks) mapped to standard
normals, then -1/2 ln(1 - r^2) of their correlation r plus the analytic bias correction
(psi((P-2)/2) - psi((P-1)/2))/2. A numba kernel (CPU) and a torch version (any device); `mi.estimate_mi`
picks one. Each returns (MI, finite, constant), (N, C): `mi` turns the last two into NaN and 0.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import digamma

from .common import LOCK, njit, prange
from .ranks import by_rank_chunks, midranks_numba, midranks_torch

# r^2 of the copula normals is clamped here on every path: a map whose ranks equal or reverse the image's
# (r^2 = 1 up to rounding, which differs between the numba and torch sums) gets the same finite cap,
# -1/2 ln(1e-12) = 13.8155 nats plus the bias term.
GCMI_R2_MAX = 1.0 - 1e-12


def gcmi_numba(images: torch.Tensor, maps: torch.Tensor):
    """(MI, finite, constant), each (N, C) on CPU, by the numba kernel."""
    p = maps.shape[2] * maps.shape[3]
    normal, bias = _normal_table(p).numpy(), _bias(p)

    def estimate(rx: torch.Tensor, ry: torch.Tensor):
        mi = np.empty(ry.shape[:2])
        with LOCK:
            _gcmi_kernel(rx.numpy(), ry.numpy(), normal, bias, GCMI_R2_MAX, mi)
        return (torch.from_numpy(mi),)

    return by_rank_chunks(images, maps, midranks_numba, estimate, 1)


def gcmi_torch(images: torch.Tensor, maps: torch.Tensor):
    """(MI, finite, constant), each (N, C) on the maps' device, in torch."""
    p = maps.shape[2] * maps.shape[3]
    normal, bias = _normal_table(p).to(maps.device), _bias(p)

    def estimate(rx: torch.Tensor, ry: torch.Tensor):
        zx, zy = normal[rx][:, None, :], normal[ry]
        zx = zx - zx.mean(-1, keepdim=True)
        zy = zy - zy.mean(-1, keepdim=True)
        r = (zx * zy).sum(-1) / (zx.norm(dim=-1) * zy.norm(dim=-1))
        return (-0.5 * torch.log1p(-(r * r).clamp(max=GCMI_R2_MAX)) + bias,)

    return by_rank_chunks(images, maps, midranks_torch, estimate, 1)


def _normal_table(p: int) -> torch.Tensor:
    """Copula normal of each mid-rank code k = less + leq (= 2 * 0-based mid-rank + 1):
    Phi^-1(1-based mid-rank / (P + 1)) = Phi^-1((k + 1) / (2 (P + 1))), as Ince et al. (2017) and frites'
    copnorm have it (rank / (P + 1), ranks 1..P)."""
    return torch.special.ndtri((torch.arange(2 * p + 1, dtype=torch.float64) + 1) / (2.0 * (p + 1)))


def _bias(p: int) -> float:
    """Ince et al.'s analytic bias correction for P samples, (psi((P-2)/2) - psi((P-1)/2))/2."""
    return float(digamma((p - 2) / 2) - digamma((p - 1) / 2)) / 2 if p > 2 else 0.0


@njit(parallel=True, cache=True)
def _gcmi_kernel(rx, ry, normal, bias, r2_max, out):
    """Gaussian-copula MI of mid-ranks rx (N, P) with ry (N, C, P), copula normal = normal[midrank]."""
    n_img, n_map, p = ry.shape
    for q in prange(n_img * n_map):
        n = q // n_map
        c = q - n * n_map
        x = rx[n]
        y = ry[n, c]
        sx = sy = sxx = syy = sxy = 0.0
        for i in range(p):
            a = normal[x[i]]
            b = normal[y[i]]
            sx += a
            sy += b
            sxx += a * a
            syy += b * b
            sxy += a * b
        r = (sxy - sx * sy / p) / np.sqrt((sxx - sx * sx / p) * (syy - sy * sy / p))
        out[n, c] = -0.5 * np.log1p(-min(r * r, r2_max)) + bias
