"""Mutual information estimators: pure functions, tensors in and tensors out, in nats.

`histogram_mi` is the contract's plug-in estimator on a 2-D joint histogram with equal-width bins
spanning each array's own min to max. Bin edges are computed exactly as `numpy.histogram2d(x, y, bins)`
computes them (`linspace` in the arrays' common float type, last bin closed), so the counts, not just
the MI, agree with numpy. On CPU a numba kernel does the work (parallel over image-map pairs, the
image's bin indices computed once and shared by its maps); the pure-torch path (the same bins, then
one bincount per chunk, all on the tensors' device) is the fallback and the CUDA path.

`estimate_mi` puts the histogram (equal-width or equal-frequency bins, optional Miller-Madow), KSG and
Gaussian-copula estimators behind one entry point; `shuffle_pixels` gives the null baseline.

A pair in which either array holds a NaN or an infinity gets NaN; a constant array gets MI 0.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import torch
from scipy.special import digamma

try:
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba's OpenMP layer shares torch's libgomp, whose spin-waiting threads fight over the cores
        # (measured 3x slower on a busy 2-core machine); the workqueue layer's threads sleep instead.
        # It must not be entered from two threads at once: _LOCK serialises the kernels.
        numba.config.THREADING_LAYER = "workqueue"
except ImportError:  # the torch paths below still work, only slower
    HAVE_NUMBA = False
    prange = range

    def njit(*args, **kwargs):
        return args[0] if args and callable(args[0]) else (lambda f: f)


_LOCK = threading.Lock()


ESTIMATORS = ("histogram", "ksg", "gcmi")
BINNINGS = ("width", "quantile")
_CHUNK = 1 << 23  # elements of a working buffer per internal chunk (bounds memory on CPU and GPU)
_IMAGE_CHUNK = 256  # images per numba call (their bin indices are held at once)


# ----------------------------------------------------------------------------------------- checks


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


# ------------------------------------------------------------------------------- numba histogram


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


@njit(parallel=True, cache=True)
def _histogram_kernel(img, maps, bins, ar, unit, xlogx, mi, mm):
    """Plug-in MI of img[n] (N, P) with each maps[n, c] (N, C, P) into mi (N, C), and the Miller-Madow
    term (m_x + m_y - m_xy - 1)/(2P) into mm. The image's bins are computed once per image."""
    n_img, n_map, p = maps.shape
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
        ok, const = _width_bins(maps[n, c], bins, ar, unit, yi)
        if not (ok and okx[n]):
            mi[n, c] = mm[n, c] = np.nan
        elif const or constx[n]:
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


def _xlogx_table(p: int) -> np.ndarray:
    c = np.arange(p + 1, dtype=np.float64)
    return c * np.log(np.maximum(c, 1.0))


def _histogram_numba(
    images: torch.Tensor, maps: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(plug-in MI, Miller-Madow term), each (N, C) float64 on CPU, by the numba kernel."""
    n, c, p = _check(images, maps)
    wd = _work_dtype(images.dtype, maps.dtype)
    x = images.detach().reshape(n, p).to(wd).contiguous().numpy()
    y = maps.detach().reshape(n, c, p).to(wd).contiguous().numpy()
    ar = np.arange(bins + 1).astype(x.dtype)
    unit = float(np.finfo(x.dtype).eps) / 2
    xlogx = _xlogx_table(p)
    mi = np.empty((n, c))
    mm = np.empty((n, c))
    for s in range(0, n, _IMAGE_CHUNK):
        e = min(n, s + _IMAGE_CHUNK)
        with _LOCK:
            _histogram_kernel(x[s:e], y[s:e], bins, ar, unit, xlogx, mi[s:e], mm[s:e])
    return torch.from_numpy(mi), torch.from_numpy(mm)


# ------------------------------------------------------------------------------- torch histogram


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
    step = (hi - lo) / torch.full_like(
        hi, bins
    )  # a true division: CUDA multiplies by 1/bins for a scalar

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


def _joint_mi_torch(
    xi: torch.Tensor, yi: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(MI, Miller-Madow term) (n, c) float64 from bin indices xi (n, P) and yi (n, c, P), one bincount."""
    n, c, p = yi.shape
    pair = torch.arange(n * c, device=yi.device).reshape(n, c, 1) * (bins * bins)
    flat = (pair + xi[:, None, :] * bins + yi).reshape(-1)
    counts = torch.bincount(flat, minlength=n * c * bins * bins).reshape(n, c, bins * bins)
    return _plugin_from_counts(counts, bins, p)


def _image_chunks(n: int, c: int, p: int, bins: int):
    step = max(1, _CHUNK // max(1, c * max(p, bins * bins)))
    return ((s, min(n, s + step)) for s in range(0, n, step))


def _histogram_torch(
    images: torch.Tensor, maps: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(plug-in MI, Miller-Madow term), each (N, C) float64 on the maps' device, in torch."""
    n, c, p = _check(images, maps)
    wd = _work_dtype(images.dtype, maps.dtype)
    mi = torch.empty(n, c, dtype=torch.float64, device=maps.device)
    mm = torch.empty_like(mi)
    for s, e in _image_chunks(n, c, p, bins):
        xi, okx, cx = _width_bins_torch(images[s:e].detach().reshape(e - s, p).to(wd), bins)
        yi, oky, cy = _width_bins_torch(maps[s:e].detach().reshape((e - s) * c, p).to(wd), bins)
        a, b = _joint_mi_torch(xi, yi.reshape(e - s, c, p), bins)
        ok = okx[:, None] & oky.reshape(e - s, c)
        zero = cx[:, None] | cy.reshape(e - s, c)
        mi[s:e] = torch.where(ok, torch.where(zero, 0.0, a), math.nan)
        mm[s:e] = torch.where(ok, torch.where(zero, 0.0, b), math.nan)
    return mi, mm


def _use_numba(t: torch.Tensor) -> bool:
    return HAVE_NUMBA and t.device.type == "cpu"


def histogram_mi(images: torch.Tensor, maps: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Plug-in MI in nats between `images[n]` (N, H, W) and each `maps[n, c]` (N, C, H, W) -> (N, C)
    float32 on the maps' device; equal-width bins spanning each array's own min..max, as
    numpy.histogram2d(x, y, bins). The image's bin indices are computed once and shared by its maps."""
    _check(images, maps)
    bins = _check_bins(bins)
    mi, _ = (_histogram_numba if _use_numba(maps) else _histogram_torch)(images, maps, bins)
    return mi.to(device=maps.device, dtype=torch.float32)


# ---------------------------------------------------------------------- rank based: quantile, GCMI


@njit(parallel=True, cache=True)
def _tie_ranks_kernel(x, order, out):
    """out[r, i] = less + less_or_equal of x[r, i] in its row, given each row's argsort `order`."""
    rows, p = x.shape
    for r in prange(rows):
        o = order[r]
        row = x[r]
        res = out[r]
        j = 0
        while j < p:
            k = j + 1
            while k < p and row[o[k]] == row[o[j]]:
                k += 1
            for t in range(j, k):
                res[o[t]] = j + k
            j = k


def _midranks(x: torch.Tensor) -> torch.Tensor:
    """less + less_or_equal (= twice the 0-based mid-rank plus one, 1..2P-1) of each value in its row
    of x (R, P), int64: tied values share it, and it is invariant to strictly increasing transforms."""
    x = x.detach()
    x = x.to(torch.uint8) if x.dtype == torch.bool else x
    if _use_numba(
        x
    ):  # numpy's argsort is SIMD-accelerated; torch's CPU sort and searchsorted are not
        a = x.contiguous().numpy()
        out = np.empty(a.shape, np.int64)
        with _LOCK:
            _tie_ranks_kernel(a, np.argsort(a, axis=-1), out)
        return torch.from_numpy(out)
    s = x.sort(dim=-1).values
    x = x.contiguous()
    return torch.searchsorted(s, x, right=False) + torch.searchsorted(s, x, right=True)


def _quantile_table(p: int, bins: int) -> torch.Tensor:
    """Equal-frequency bin of each mid-rank code k = less + leq: floor(k * bins / 2P), i.e. floor((mid-rank
    + 1/2) * bins / P); ties share a bin."""
    return (torch.arange(2 * p + 1) * bins).div(2 * p, rounding_mode="floor").clamp_(max=bins - 1)


def _normal_table(p: int) -> torch.Tensor:
    """Copula normal of each mid-rank code k = less + leq (= 2 * 0-based mid-rank + 1):
    Phi^-1(1-based mid-rank / (P + 1)) = Phi^-1((k + 1) / (2 (P + 1))), as Ince et al. (2017) and frites'
    copnorm have it (rank / (P + 1), ranks 1..P)."""
    return torch.special.ndtri((torch.arange(2 * p + 1, dtype=torch.float64) + 1) / (2.0 * (p + 1)))


def _rank_pairs(images: torch.Tensor, maps: torch.Tensor):
    """Per chunk of images: (start, end, mid-rank codes of the images (n, P) and maps (n, C, P), and the
    (finite, constant) masks of the pairs (n, C))."""
    n, c, p = _check(images, maps)
    half = (torch.float16, torch.bfloat16)  # numpy has no bfloat16; float32 ranks them the same
    for s, e in _image_chunks(n, c, 4 * p, 1):
        x = images[s:e].detach().reshape(e - s, p)
        y = maps[s:e].detach().reshape((e - s) * c, p)
        x, y = (x.float() if x.dtype in half else x), (y.float() if y.dtype in half else y)
        rx, ry = _midranks(x), _midranks(y).reshape(e - s, c, p)
        ok = _finite_rows(x)[:, None] & _finite_rows(y).reshape(e - s, c)
        const = (rx[:, None, 0] == p) | (
            ry[:, :, 0] == p
        )  # the first value ties with all: constant
        yield s, e, rx, ry, ok, const


def _finite_rows(x: torch.Tensor) -> torch.Tensor:
    if not x.is_floating_point():
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    if x.device.type == "cpu" and x.dtype != torch.bfloat16:  # numpy: no torch thread pool wakes
        return torch.from_numpy(np.isfinite(x.contiguous().numpy()).all(-1))
    return torch.isfinite(x).all(dim=-1)


def _histogram_quantile(
    images: torch.Tensor, maps: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(plug-in MI, Miller-Madow term) (N, C) float64 with equal-frequency bins (rank based)."""
    n, c, p = _check(images, maps)
    mi = torch.empty(n, c, dtype=torch.float64, device=maps.device)
    mm = torch.empty_like(mi)
    table = _quantile_table(p, bins)
    xlogx = _xlogx_table(p)
    for s, e, rx, ry, ok, const in _rank_pairs(images, maps):
        if _use_numba(rx):
            a, b = np.empty((e - s, c)), np.empty((e - s, c))
            with _LOCK:
                _quantile_kernel(
                    rx.numpy(), ry.numpy(), table.to(torch.int32).numpy(), bins, xlogx, a, b
                )
            a, b = torch.from_numpy(a), torch.from_numpy(b)
        else:
            t = table.to(rx.device)
            a, b = _joint_mi_torch(t[rx], t[ry], bins)
        mi[s:e] = torch.where(ok, torch.where(const, 0.0, a), math.nan)
        mm[s:e] = torch.where(ok, torch.where(const, 0.0, b), math.nan)
    return mi, mm


# r^2 of the copula normals is clamped here on every path: a map whose ranks equal or reverse the image's
# (r^2 = 1 up to rounding, which differs between the numba and torch sums) gets the same finite cap,
# -1/2 ln(1e-12) = 13.8155 nats plus the bias term.
GCMI_R2_MAX = 1.0 - 1e-12


def _gcmi(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Gaussian-copula MI (N, C) float64 with Ince et al.'s (2017) analytic bias correction:
    -1/2 ln(1 - r^2) + (psi((P-2)/2) - psi((P-1)/2))/2, r the correlation of the copula normals (r^2 at
    most GCMI_R2_MAX)."""
    n, c, p = _check(images, maps)
    bias = float(digamma((p - 2) / 2) - digamma((p - 1) / 2)) / 2 if p > 2 else 0.0
    out = torch.empty(n, c, dtype=torch.float64, device=maps.device)
    normal = _normal_table(p)
    for s, e, rx, ry, ok, const in _rank_pairs(images, maps):
        if _use_numba(rx):
            mi = np.empty((e - s, c))
            with _LOCK:
                _gcmi_kernel(rx.numpy(), ry.numpy(), normal.numpy(), bias, GCMI_R2_MAX, mi)
            mi = torch.from_numpy(mi)
        else:
            t = normal.to(rx.device)
            zx, zy = t[rx][:, None, :], t[ry]
            zx = zx - zx.mean(-1, keepdim=True)
            zy = zy - zy.mean(-1, keepdim=True)
            r = (zx * zy).sum(-1) / (zx.norm(dim=-1) * zy.norm(dim=-1))
            mi = -0.5 * torch.log1p(-(r * r).clamp(max=GCMI_R2_MAX)) + bias
        out[s:e] = torch.where(ok, torch.where(const, 0.0, mi), math.nan)
    return out


# -------------------------------------------------------------------------------------------- KSG


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


@njit(parallel=True, cache=True)
def _ksg_kernel(x, y, k, psi, out):
    """KSG MI of x[n] (N, S) with each y[n, c] (N, C, S) into out (N, C)."""
    n_img, n_map, _ = y.shape
    for q in prange(n_img * n_map):
        n = q // n_map
        c = q - n * n_map
        out[n, c] = _ksg_pair(x[n], y[n, c], k, psi)


def _ksg_torch(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """The same KSG estimate by brute force (pairwise max-norm distances), x (n, S), y (n, c, S)."""
    n, c, s = y.shape
    out = torch.empty(n, c, dtype=torch.float64, device=y.device)
    per = max(1, _CHUNK // (s * s))
    xx = x[:, None, :].expand(n, c, s).reshape(n * c, s)
    yy = y.reshape(n * c, s)
    flat = out.view(-1)
    psi = torch.special.digamma
    for a in range(0, n * c, per):
        xa, ya = xx[a : a + per], yy[a : a + per]
        dx = (xa[:, :, None] - xa[:, None, :]).abs()
        dy = (ya[:, :, None] - ya[:, None, :]).abs()
        d = torch.maximum(dx, dy)
        d.diagonal(dim1=-2, dim2=-1).fill_(math.inf)
        eps = d.kthvalue(k, dim=-1).values[..., None]
        nx = ((dx < eps).sum(-1) - 1).clamp_min(0)
        ny = ((dy < eps).sum(-1) - 1).clamp_min(0)
        terms = psi((nx + 1).to(torch.float64)) + psi((ny + 1).to(torch.float64))
        flat[a : a + per] = float(digamma(k) + digamma(s)) - terms.mean(-1)
    return out


def _ksg_inputs(images: torch.Tensor, maps: torch.Tensor, samples: int, seed: int, ids: np.ndarray):
    """The KSG samples: per image n a random pixel subset (shared by its maps) and jitter, both drawn from
    (seed, ids[n]) alone so they do not depend on how the caller batches; each row standardised plus
    1e-10 * max(1, mean |x|) * N(0, 1) (scikit-learn's tie breaking). x (N, S), y (N, C, S) float64."""
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


def _ksg(
    images: torch.Tensor, maps: torch.Tensor, k: int, samples: int, seed: int, ids: np.ndarray
) -> torch.Tensor:
    """KSG estimator 1 (N, C) float64 on `samples` random pixels per image (seeded): the numba kernel on
    CPU, brute force in torch on a GPU (or without numba)."""
    n, c, p = _check(images, maps)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"ksg_k must be an integer >= 1, got {k!r}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ValueError(f"ksg_samples must be an integer >= 2, got {samples!r}")
    s = min(int(samples), p)
    if s <= k:
        raise ValueError(f"KSG needs more than ksg_k={k} samples per pair, got {s}")
    if n * c == 0:
        return torch.zeros(n, c, dtype=torch.float64)
    x, y, const = _ksg_inputs(images, maps, s, seed, ids)
    ok = _finite_rows(images.detach().reshape(n, p))[:, None] & _finite_rows(
        maps.detach().reshape(n * c, p)
    ).reshape(n, c)
    ok = ok.to(x.device)
    x, y = torch.nan_to_num(x), torch.nan_to_num(y)
    if _use_numba(maps):
        out = np.empty((n, c))
        with _LOCK:
            _ksg_kernel(
                x.numpy(), y.numpy(), int(k), digamma(np.arange(s + 2, dtype=np.float64)), out
            )
        out = torch.from_numpy(out)
    else:
        out = _ksg_torch(x, y, int(k))
    return torch.where(ok, torch.where(const, 0.0, out), math.nan)


# ------------------------------------------------------------------------------------ entry point


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
    n, _, _ = _check(images, maps)
    if estimator == "histogram":
        bins = _check_bins(bins)
        if binning == "width":
            mi, mm = (_histogram_numba if _use_numba(maps) else _histogram_torch)(
                images, maps, bins
            )
        elif binning == "quantile":
            mi, mm = _histogram_quantile(images, maps, bins)
        else:
            raise ValueError(f"unknown binning {binning!r}; use one of {BINNINGS}")
        out = mi + mm if miller_madow else mi
    elif estimator == "ksg":
        out = _ksg(images, maps, ksg_k, ksg_samples, seed, _ids(ids, n))
    elif estimator == "gcmi":
        out = _gcmi(images, maps)
    else:
        raise ValueError(f"unknown estimator {estimator!r}; use one of {ESTIMATORS}")
    return out.to(device="cpu", dtype=torch.float32)


# --------------------------------------------------------------------------------- shuffled null


_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


@njit(cache=True)
def _splitmix(z):
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


@njit(parallel=True, cache=True)
def _permutations_kernel(keys, out):
    """Fisher-Yates permutation of 0..P-1 per row of out (R, P): step i swaps i with
    j = (high 32 bits of splitmix64(keys[r] + i)) * (i + 1) >> 32, a uniform draw from 0..i."""
    rows, p = out.shape
    for r in prange(rows):
        perm = out[r]
        for i in range(p):
            perm[i] = i
        for i in range(p - 1, 0, -1):
            j = (
                (_splitmix(keys[r] + np.uint64(i)) >> np.uint64(32)) * np.uint64(i + 1)
            ) >> np.uint64(32)
            t = perm[i]
            perm[i] = perm[j]
            perm[j] = t


def _permutations_numpy(keys: np.ndarray, p: int) -> np.ndarray:
    """The same permutations as _permutations_kernel, vectorised over rows."""
    out = np.tile(np.arange(p, dtype=np.int64), (keys.size, 1))
    rows = np.arange(keys.size)
    with np.errstate(over="ignore"):
        for i in range(p - 1, 0, -1):
            j = (
                ((_splitmix_np(keys + np.uint64(i)) >> np.uint64(32)) * np.uint64(i + 1))
                >> np.uint64(32)
            ).astype(np.int64)
            out[rows, i], out[rows, j] = out[rows, j], out[rows, i].copy()
    return out


def _splitmix_np(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        return z ^ (z >> np.uint64(31))


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


def _pixel_permutations(seed: int, ids: np.ndarray, c: int, p: int) -> np.ndarray:
    """(n, c, p) int64 permutations, the one of (image ids[n], map c) a function of (seed, ids[n], c) alone."""
    n = ids.size
    base = _splitmix_np(np.array([seed % 2**64], dtype=np.uint64))
    with np.errstate(over="ignore"):
        keys = _splitmix_np(
            _splitmix_np(base + ids.astype(np.uint64))[:, None] + np.arange(c, dtype=np.uint64)
        )
    keys = _splitmix_np(keys.reshape(-1))
    if HAVE_NUMBA:
        out = np.empty((n * c, p), np.int64)
        with _LOCK:
            _permutations_kernel(keys, out)
    else:
        out = _permutations_numpy(keys, p)
    return out.reshape(n, c, p)


def shuffle_pixels(maps: torch.Tensor, seed: int, ids=None) -> torch.Tensor:
    """The maps (N, C, H, W) with each map's pixels spatially permuted, one uniform random permutation
    per (image, map c) that depends only on (seed, ids[n], c) (ids: global image ids, default 0..N-1):
    the shuffled null (its MI with the image is the estimator's bias). Same device and dtype as `maps`."""
    if not isinstance(maps, torch.Tensor) or maps.ndim != 4:
        raise ValueError(
            f"maps must be a (N, C, H, W) tensor, got {getattr(maps, 'shape', type(maps))}"
        )
    n, c, h, w = maps.shape
    perm = torch.from_numpy(_pixel_permutations(int(seed), _ids(ids, n), c, h * w)).to(maps.device)
    return maps.reshape(n, c, h * w).gather(-1, perm).reshape(n, c, h, w)
