"""The Kraskov-Stoegbauer-Grassberger estimator 1 (max-norm, k neighbours) on random pixels:
psi(k) + psi(S) - <psi(n_x + 1) + psi(n_y + 1)>. Per image a random subset of S pixels (shared by its
maps) and a tiny jitter, both drawn from (seed, image id) alone; each sample standardised. A numba kernel
(CPU, a sorted-neighbour walk per pair) and a torch version (any device, brute-force distances);
`mi.estimate_mi` picks one. Each returns (MI, finite, constant), (N, C): `mi` turns the last two into
NaN and 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import digamma

from .common import LOCK, chunks, finite_rows, njit, prange


def ksg_numba(
    images: torch.Tensor, maps: torch.Tensor, k: int, samples: int, seed: int, ids: np.ndarray
):
    """(MI, finite, constant), each (N, C) on CPU, by the numba kernel on `samples` pixels per image."""
    x, y, ok, const = _prepared(images, maps, samples, seed, ids)
    out = np.empty(maps.shape[:2])
    with LOCK:
        _ksg_kernel(x.numpy(), y.numpy(), k, digamma(np.arange(samples + 2, dtype=np.float64)), out)
    return torch.from_numpy(out), ok, const


def ksg_torch(
    images: torch.Tensor, maps: torch.Tensor, k: int, samples: int, seed: int, ids: np.ndarray
):
    """(MI, finite, constant), each (N, C) on the maps' device, by brute force (pairwise max-norm
    distances) on `samples` pixels per image, CHUNK distances at a time."""
    x, y, ok, const = _prepared(images, maps, samples, seed, ids)
    n, c, s = y.shape
    out = torch.empty(n, c, dtype=torch.float64, device=y.device)
    xx = x[:, None, :].expand(n, c, s).reshape(n * c, s)
    yy = y.reshape(n * c, s)
    flat = out.view(-1)
    psi = torch.special.digamma
    for a, b in chunks(n * c, s * s):
        xa, ya = xx[a:b], yy[a:b]
        dx = (xa[:, :, None] - xa[:, None, :]).abs()
        dy = (ya[:, :, None] - ya[:, None, :]).abs()
        d = torch.maximum(dx, dy)
        d.diagonal(dim1=-2, dim2=-1).fill_(math.inf)
        eps = d.kthvalue(k, dim=-1).values[..., None]
        nx = ((dx < eps).sum(-1) - 1).clamp_min(0)
        ny = ((dy < eps).sum(-1) - 1).clamp_min(0)
        terms = psi((nx + 1).to(torch.float64)) + psi((ny + 1).to(torch.float64))
        flat[a:b] = float(digamma(k) + digamma(s)) - terms.mean(-1)
    return out, ok, const


def _prepared(images: torch.Tensor, maps: torch.Tensor, samples: int, seed: int, ids: np.ndarray):
    """_ksg_inputs with NaN and infinities zeroed (the kernels stay finite), and which pairs' whole
    arrays are finite."""
    n, c, h, w = maps.shape
    x, y, const = _ksg_inputs(images, maps, samples, seed, ids)
    ok = finite_rows(images.detach().reshape(n, h * w))[:, None] & finite_rows(
        maps.detach().reshape(n * c, h * w)
    ).reshape(n, c)
    return torch.nan_to_num(x), torch.nan_to_num(y), ok.to(x.device), const


def _ksg_inputs(images: torch.Tensor, maps: torch.Tensor, samples: int, seed: int, ids: np.ndarray):
    """The KSG samples: per image n a random pixel subset (shared by its maps) and jitter, both drawn from
    (seed, ids[n]) alone so they do not depend on how the caller batches; each row standardised plus
    1e-10 * max(1, mean |x|) * N(0, 1) (scikit-learn's tie breaking). x (N, S), y (N, C, S) float64,
    and which pairs hold a constant sample (N, C)."""
    n, c, p = maps.shape[0], maps.shape[1], maps.shape[2] * maps.shape[3]
    picks = np.empty((n, samples), np.int64)
    noise = np.empty((n, c + 1, samples))
    for i in range(n):
        rng = np.random.default_rng([seed, int(ids[i])])
        picks[i] = (
            np.sort(rng.choice(p, size=samples, replace=False)) if samples < p else np.arange(p)
        )
        noise[i] = rng.standard_normal((c + 1, samples))
    idx = torch.from_numpy(picks).to(maps.device)
    x = images.detach().reshape(n, p).gather(1, idx).to(torch.float64)
    y = (
        maps.detach()
        .reshape(n, c, p)
        .gather(2, idx[:, None, :].expand(n, c, samples))
        .to(torch.float64)
    )
    z = torch.cat([x[:, None, :], y], 1)
    const = z.amin(-1) == z.amax(-1)
    z = z - z.mean(-1, keepdim=True)
    z = z / torch.where(const, 1.0, z.std(-1, correction=0))[..., None]
    z = z + 1e-10 * z.abs().mean(-1, keepdim=True).clamp_min(1.0) * torch.from_numpy(noise).to(
        z.device
    )
    return z[:, 0], z[:, 1:], const[:, :1] | const[:, 1:]


@njit(parallel=True, cache=True)
def _ksg_kernel(x, y, k, psi, out):
    """KSG MI of x[n] (N, S) with each y[n, c] (N, C, S) into out (N, C)."""
    n_img, n_map, _ = y.shape
    for q in prange(n_img * n_map):
        n = q // n_map
        c = q - n * n_map
        out[n, c] = _ksg_pair(x[n], y[n, c], k, psi)


@njit(cache=True)
def _ksg_pair(x, y, k, psi):
    """KSG estimator 1 (max-norm) of one pair of 1-D samples: psi(k) + psi(S) - <psi(nx+1) + psi(ny+1)>."""
    s = x.size
    order = np.argsort(x)
    xs = x[order]
    ys = y[order]
    ysorted = np.sort(y)
    top = np.empty(k)
    acc = 0.0
    for i in range(s):
        top[:] = np.inf
        lo, hi = i - 1, i + 1
        while True:  # walk outwards in x; stop once |dx| alone reaches the k-th distance
            dl = xs[i] - xs[lo] if lo >= 0 else np.inf
            dh = xs[hi] - xs[i] if hi < s else np.inf
            if dl <= dh:
                dx, j = dl, lo
                lo -= 1
            else:
                dx, j = dh, hi
                hi += 1
            if dx >= top[k - 1]:
                break
            d = max(dx, abs(ys[j] - ys[i]))
            if d < top[k - 1]:
                t = k - 1
                while t > 0 and top[t - 1] > d:
                    top[t] = top[t - 1]
                    t -= 1
                top[t] = d
        eps = top[k - 1]
        nx = max(_count_within(xs, xs[i], eps) - 1, 0)
        ny = max(_count_within(ysorted, ys[i], eps) - 1, 0)
        acc += psi[nx + 1] + psi[ny + 1]
    return psi[k] + psi[s] - acc / s


@njit(cache=True)
def _count_within(a, v, eps):
    """How many values of the sorted array `a` lie strictly within eps of v (|a_j - v| < eps)."""
    lo, hi = 0, a.size  # first j with v - a_j < eps
    while lo < hi:
        mid = (lo + hi) // 2
        if v - a[mid] < eps:
            hi = mid
        else:
            lo = mid + 1
    left = lo
    lo, hi = left, a.size  # first j with a_j - v >= eps
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] - v >= eps:
            hi = mid
        else:
            lo = mid + 1
    return lo - left
