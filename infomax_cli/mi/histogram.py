"""The histogram estimator: plug-in MI on a bins x bins joint histogram, with its Miller-Madow term.

Equal-width bins span each array's own min to max, with edges computed exactly as
`numpy.histogram2d(x, y, bins)` computes them (`linspace` in the arrays' common float type, last bin
closed), so the counts, not just the MI, agree with numpy. Equal-frequency (quantile) bins come from the
arrays' mid-ranks (mi_ranks). Each comes as a numba kernel (CPU, parallel over image-map pairs, the
image's bin indices computed once and shared by its maps) and a torch version (any device, one bincount
per chunk); `mi.estimate_mi` picks one.

Every entry point returns (plug-in MI, Miller-Madow term (m_x + m_y - m_xy - 1)/(2P), finite, constant),
each (N, C): the last two say which pairs hold no NaN or infinity and which hold a constant array, and
`mi` turns those into NaN and 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .common import LOCK, chunks, njit, prange
from .ranks import by_rank_chunks, midranks_numba, midranks_torch

_IMAGE_CHUNK = 256  # images per numba call (their bin indices are held at once)


def width_numba(images: torch.Tensor, maps: torch.Tensor, bins: int):
    """Equal-width bins: (MI, Miller-Madow term, finite, constant), each (N, C) on CPU, by the numba
    kernel, _IMAGE_CHUNK images per call."""
    n, c, h, w = maps.shape
    p = h * w
    wd = _work_dtype(images.dtype, maps.dtype)
    x = images.detach().reshape(n, p).to(wd).contiguous().numpy()
    y = maps.detach().reshape(n, c, p).to(wd).contiguous().numpy()
    ar = np.arange(bins + 1).astype(x.dtype)
    unit = float(np.finfo(x.dtype).eps) / 2
    xlogx = _xlogx_table(p)
    mi, mm = np.empty((n, c)), np.empty((n, c))
    ok, const = np.empty((n, c), np.bool_), np.empty((n, c), np.bool_)
    for s in range(0, n, _IMAGE_CHUNK):
        e = min(n, s + _IMAGE_CHUNK)
        with LOCK:
            out = _histogram_kernel(x[s:e], y[s:e], bins, ar, unit, xlogx)
        mi[s:e], mm[s:e], ok[s:e], const[s:e] = out
    return tuple(torch.from_numpy(a) for a in (mi, mm, ok, const))


def width_torch(images: torch.Tensor, maps: torch.Tensor, bins: int):
    """Equal-width bins: (MI, Miller-Madow term, finite, constant), each (N, C) on the maps' device,
    in torch, chunk by chunk of images."""
    n, c, h, w = maps.shape
    p = h * w
    wd = _work_dtype(images.dtype, maps.dtype)
    mi = torch.empty(n, c, dtype=torch.float64, device=maps.device)
    mm = torch.empty_like(mi)
    ok = torch.empty(n, c, dtype=torch.bool, device=maps.device)
    const = torch.empty_like(ok)
    for s, e in chunks(n, c * max(p, bins * bins)):
        xi, okx, cx = _width_bins_torch(images[s:e].detach().reshape(e - s, p).to(wd), bins)
        yi, oky, cy = _width_bins_torch(maps[s:e].detach().reshape((e - s) * c, p).to(wd), bins)
        mi[s:e], mm[s:e] = _joint_mi_torch(xi, yi.reshape(e - s, c, p), bins)
        ok[s:e] = okx[:, None] & oky.reshape(e - s, c)
        const[s:e] = cx[:, None] | cy.reshape(e - s, c)
    return mi, mm, ok, const


def quantile_numba(images: torch.Tensor, maps: torch.Tensor, bins: int):
    """Equal-frequency bins: (MI, Miller-Madow term, finite, constant), each (N, C) on CPU, by the
    numba kernel on mid-ranks."""
    p = maps.shape[2] * maps.shape[3]
    table = _quantile_table(p, bins).to(torch.int32).numpy()
    xlogx = _xlogx_table(p)

    def estimate(rx: torch.Tensor, ry: torch.Tensor):
        mi, mm = np.empty(ry.shape[:2]), np.empty(ry.shape[:2])
        with LOCK:
            _quantile_kernel(rx.numpy(), ry.numpy(), table, bins, xlogx, mi, mm)
        return torch.from_numpy(mi), torch.from_numpy(mm)

    return by_rank_chunks(images, maps, midranks_numba, estimate, 2)


def quantile_torch(images: torch.Tensor, maps: torch.Tensor, bins: int):
    """Equal-frequency bins: (MI, Miller-Madow term, finite, constant), each (N, C) on the maps'
    device, in torch on mid-ranks."""
    table = _quantile_table(maps.shape[2] * maps.shape[3], bins).to(maps.device)

    def estimate(rx: torch.Tensor, ry: torch.Tensor):
        return _joint_mi_torch(table[rx], table[ry], bins)

    return by_rank_chunks(images, maps, midranks_torch, estimate, 2)


# -------------------------------------------------------------------------------- bins and tables


def _work_dtype(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    """The float type numpy.histogram2d would compute the pair's edges in: float32 when numpy's common
    type of the two is float32 (or float16), else float64."""

    def np_dtype(d: torch.dtype) -> np.dtype:
        return (
            np.dtype(np.float32)
            if d in (torch.bfloat16, torch.float16)
            else torch.empty(0, dtype=d).numpy().dtype
        )

    common = np.result_type(np_dtype(a), np_dtype(b))
    return torch.float32 if common in (np.float32, np.float16) else torch.float64


def _quantile_table(p: int, bins: int) -> torch.Tensor:
    """Equal-frequency bin of each mid-rank code k = less + leq: floor(k * bins / 2P), i.e. floor((mid-rank
    + 1/2) * bins / P); ties share a bin."""
    return (torch.arange(2 * p + 1) * bins).div(2 * p, rounding_mode="floor").clamp_(max=bins - 1)


def _xlogx_table(p: int) -> np.ndarray:
    c = np.arange(p + 1, dtype=np.float64)
    return c * np.log(np.maximum(c, 1.0))


# ---------------------------------------------------------------------------- numba kernels (CPU)


@njit(parallel=True, cache=True)
def _histogram_kernel(img, maps, bins, ar, unit, xlogx):
    """Plug-in MI of img[n] (N, P) with each maps[n, c] (N, C, P), (N, C); the Miller-Madow term
    (m_x + m_y - m_xy - 1)/(2P); whether the pair is finite; whether either array is constant (such
    pairs get no histogram). The image's bins are computed once."""
    n_img, n_map, p = maps.shape
    mi, mm = np.empty((n_img, n_map)), np.empty((n_img, n_map))
    ok, const = np.empty((n_img, n_map), np.bool_), np.empty((n_img, n_map), np.bool_)
    xi = np.empty((n_img, p), np.int32)
    okx = np.zeros(n_img, np.bool_)
    constx = np.zeros(n_img, np.bool_)
    for n in prange(n_img):
        okx[n], constx[n] = _width_bins(img[n], bins, ar, unit, xi[n])
        xi[n] *= bins
    for q in prange(n_img * n_map):
        n = q // n_map
        c = q - n * n_map
        yi = np.empty(p, np.int32)
        oky, consty = _width_bins(maps[n, c], bins, ar, unit, yi)
        ok[n, c] = oky and okx[n]
        const[n, c] = consty or constx[n]
        if not ok[n, c] or const[n, c]:
            mi[n, c] = mm[n, c] = 0.0
        else:
            x = xi[n]
            nb = bins * bins
            sub = np.zeros(4 * nb, np.int32)  # four interleaved histograms: no store-to-load stalls
            m4 = p - p % 4
            for i in range(0, m4, 4):
                sub[x[i] + yi[i]] += 1
                sub[nb + x[i + 1] + yi[i + 1]] += 1
                sub[2 * nb + x[i + 2] + yi[i + 2]] += 1
                sub[3 * nb + x[i + 3] + yi[i + 3]] += 1
            for i in range(m4, p):
                sub[x[i] + yi[i]] += 1
            counts = sub[:nb] + sub[nb : 2 * nb] + sub[2 * nb : 3 * nb] + sub[3 * nb :]
            mi[n, c], mm[n, c] = _plugin_mi(counts, bins, p, xlogx)
    return mi, mm, ok, const


@njit(parallel=True, cache=True)
def _quantile_kernel(rx, ry, qbin, bins, xlogx, mi, mm):
    """Like _histogram_kernel from mid-ranks rx (N, P), ry (N, C, P), bin = qbin[midrank]."""
    n_img, n_map, p = ry.shape
    for q in prange(n_img * n_map):
        n = q // n_map
        c = q - n * n_map
        x = rx[n]
        y = ry[n, c]
        counts = np.zeros(bins * bins, np.int32)
        for i in range(p):
            counts[qbin[x[i]] * bins + qbin[y[i]]] += 1
        mi[n, c], mm[n, c] = _plugin_mi(counts, bins, p, xlogx)


@njit(cache=True)
def _extremes(x):
    """(min, max, ok) of a 1-D float array; ok is False when it holds a NaN or an infinity."""
    n = x.size
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = x[0]
    m = n - n % 4
    nan = False
    for i in range(0, m, 4):  # four running extremes so the loop pipelines
        v0, v1, v2, v3 = x[i], x[i + 1], x[i + 2], x[i + 3]
        nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)
        a0 = v0 if v0 < a0 else a0
        a1 = v1 if v1 < a1 else a1
        a2 = v2 if v2 < a2 else a2
        a3 = v3 if v3 < a3 else a3
        b0 = v0 if v0 > b0 else b0
        b1 = v1 if v1 > b1 else b1
        b2 = v2 if v2 > b2 else b2
        b3 = v3 if v3 > b3 else b3
    for i in range(m, n):
        v = x[i]
        nan |= v != v
        a0 = v if v < a0 else a0
        b0 = v if v > b0 else b0
    lo = min(min(a0, a1), min(a2, a3))
    hi = max(max(b0, b1), max(b2, b3))
    return lo, hi, not nan and np.isfinite(lo) and np.isfinite(hi)


@njit(cache=True)
def _width_bins(x, bins, ar, unit, out):
    """Equal-width bin index of each value of `x` into `out` (int32), exactly as numpy.histogram2d bins
    it: edges e_i = i*step + lo in x's float type (numpy's linspace), the last bin closed. Returns
    (ok, constant); a constant array goes all to bin 0, and so does a non-finite one (ok False)."""
    lo, hi, ok = _extremes(x)
    if not ok:
        out[:] = 0
        return False, False
    if lo == hi:
        out[:] = 0
        return True, True
    one, top, fbins = ar[1], ar[bins - 1], ar[bins]  # ar = 0..bins in x's float type
    step = (hi - lo) / fbins
    mag = max(abs(np.float64(lo)), abs(np.float64(hi)))
    # Guess floor((x-lo)/step) and correct it by one against the exact edges. Rounding moves a guess
    # or an edge by at most ~unit*bins*(8 + |x|/span) bins; beyond a quarter bin, search instead.
    if unit * bins * (8.0 + mag / (np.float64(hi) - np.float64(lo))) < 0.25:
        inv = fbins / (hi - lo)
        for p in range(x.size):
            v = x[p]
            g = min(np.floor((v - lo) * inv), top)
            up = (v >= (g + one) * step + lo) & (g < top)
            down = v < g * step + lo
            out[p] = np.int32(g) + np.int32(up) - np.int32(down)
    else:
        inv64 = bins / (np.float64(hi) - np.float64(lo))
        for p in range(x.size):
            v = x[p]
            t = (np.float64(v) - np.float64(lo)) * inv64
            g = bins - 1 if not t < bins - 1 else (int(t) if t > 0 else 0)
            while g > 0 and v < ar[g] * step + lo:
                g -= 1
            while g < bins - 1 and v >= ar[g + 1] * step + lo:
                g += 1
            out[p] = g
    return True, False


@njit(cache=True)
def _plugin_mi(counts, bins, p, xlogx):
    """(plug-in MI, Miller-Madow term) from joint counts (bins*bins, row = image bin), via
    MI = (sum c_xy log c_xy - sum c_x log c_x - sum c_y log c_y) / P + log P."""
    sxy = 0.0
    sx = 0.0
    m = -1  # m_x + m_y - m_xy - 1
    cy = np.zeros(bins, np.int64)
    for a in range(bins):
        cx = 0
        for b in range(bins):
            c = counts[a * bins + b]
            sxy += xlogx[c]
            m -= c > 0
            cx += c
            cy[b] += c
        sx += xlogx[cx]
        m += cx > 0
    sy = 0.0
    for b in range(bins):
        sy += xlogx[cy[b]]
        m += cy[b] > 0
    return max((sxy - sx - sy) / p + np.log(p), 0.0), m / (2.0 * p)


# ---------------------------------------------------------------------------------- torch helpers


def _joint_mi_torch(
    xi: torch.Tensor, yi: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(MI, Miller-Madow term) (n, c) float64 from bin indices xi (n, P) and yi (n, c, P), one bincount."""
    n, c, p = yi.shape
    pair = torch.arange(n * c, device=yi.device).reshape(n, c, 1) * (bins * bins)
    flat = (pair + xi[:, None, :] * bins + yi).reshape(-1)
    counts = torch.bincount(flat, minlength=n * c * bins * bins).reshape(n, c, bins * bins)
    return _plugin_from_counts(counts, bins, p)


def _width_bins_torch(
    x: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Equal-width bin indices (R, P) int64 of rows x (R, P) in x's float type, numpy's edges and
    searchsorted; with (ok, constant) per row."""
    lo = x.amin(dim=-1)
    hi = x.amax(dim=-1)
    ok = torch.isfinite(lo) & torch.isfinite(hi)
    const = lo == hi
    lo = torch.where(ok, torch.where(const, lo - 0.5, lo), torch.zeros_like(lo))
    hi = torch.where(ok, torch.where(const, hi + 0.5, hi), torch.ones_like(hi))
    # a true division: CUDA multiplies by 1/bins for a scalar
    step = (hi - lo) / torch.full_like(hi, bins)

    def searched(rows: torch.Tensor) -> torch.Tensor:
        edges = (
            torch.arange(bins + 1, dtype=x.dtype, device=x.device) * step[rows, None]
            + lo[rows, None]
        )
        edges[:, -1] = hi[rows]
        return torch.searchsorted(edges, x[rows].contiguous(), right=True) - 1

    if x.device.type != "cpu":  # searchsorted is fast on a GPU and needs no host round-trip
        return searched(slice(None)).clamp_(0, bins - 1), ok, const
    # On CPU searchsorted is slow: guess floor((x-lo)/step), correct it by one against the exact edges
    # (as the numba kernel does), and search only the rare rows whose rounding could exceed that.
    lo_, step_ = lo[:, None], step[:, None]
    g = ((x - lo_) * (bins / (hi - lo))[:, None]).floor_().clamp_(max=bins - 1)
    up = (x >= (g + 1) * step_ + lo_) & (g < bins - 1)
    down = x < g * step_ + lo_
    idx = g.to(torch.int64) + up.to(torch.int64) - down.to(torch.int64)
    mag = torch.maximum(lo.abs(), hi.abs()).to(torch.float64)
    unit = torch.finfo(x.dtype).eps / 2
    wide = ok & (unit * bins * (8 + mag / (hi - lo).to(torch.float64)) >= 0.25)
    if wide.any():
        idx[wide] = searched(wide)
    return idx.clamp_(0, bins - 1), ok, const


def _plugin_from_counts(
    counts: torch.Tensor, bins: int, p: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(plug-in MI, Miller-Madow term) from joint counts (..., bins*bins), in float64."""
    c = counts.to(torch.float64).reshape(*counts.shape[:-1], bins, bins)
    cx = c.sum(dim=-1)
    cy = c.sum(dim=-2)

    def s(t: torch.Tensor, dims) -> torch.Tensor:
        return torch.xlogy(t, t).sum(dim=dims)

    mi = ((s(c, (-2, -1)) - s(cx, -1) - s(cy, -1)) / p + math.log(p)).clamp_min(0.0)
    occupied = (cx > 0).sum(-1) + (cy > 0).sum(-1) - (c > 0).sum((-2, -1)) - 1
    return mi, occupied.to(torch.float64) / (2.0 * p)
