"""Mid-ranks, shared by the rank-based estimators: equal-frequency histograms (mi_histogram) and the
Gaussian copula (mi_gcmi). A value's rank code is less + less_or_equal within its array (twice the
0-based mid-rank plus one, 1..2P-1): tied values share it, and it is invariant to strictly increasing
transforms. Computed by a numba kernel on numpy's argsort (CPU) or by torch's sort and searchsorted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .common import LOCK, chunks, finite_rows, njit, prange


def by_rank_chunks(
    images: torch.Tensor,
    maps: torch.Tensor,
    midranks: Callable[[torch.Tensor], torch.Tensor],
    estimate: Callable,
    outputs: int,
) -> tuple[torch.Tensor, ...]:
    """`estimate(rx, ry)` on the mid-rank codes (by `midranks`) of each chunk of images, rx (n, P), and
    of their maps, ry (n, C, P), returning `outputs` (n, C) estimates. Returns those over all N images,
    then which pairs are finite and which hold a constant array, each (N, C) on the maps' device."""
    n, c, h, w = maps.shape
    p = h * w
    out = torch.empty(outputs, n, c, dtype=torch.float64, device=maps.device)
    ok = torch.empty(n, c, dtype=torch.bool, device=maps.device)
    const = torch.empty_like(ok)
    half = (torch.float16, torch.bfloat16)  # numpy has no bfloat16; float32 ranks them the same
    for s, e in chunks(n, c * 4 * p):
        x = images[s:e].detach().reshape(e - s, p)
        y = maps[s:e].detach().reshape((e - s) * c, p)
        x, y = (x.float() if x.dtype in half else x), (y.float() if y.dtype in half else y)
        rx, ry = midranks(x), midranks(y).reshape(e - s, c, p)
        for o, v in zip(out, estimate(rx, ry), strict=True):
            o[s:e] = v
        ok[s:e] = finite_rows(x)[:, None] & finite_rows(y).reshape(e - s, c)
        const[s:e] = (rx[:, None, 0] == p) | (ry[:, :, 0] == p)  # the first value ties with all
    return (*out, ok, const)


def midranks_numba(x: torch.Tensor) -> torch.Tensor:
    """Mid-rank codes (R, P) int64 of each value in its row of x (R, P) on CPU, by numba on numpy's
    argsort (SIMD-accelerated; torch's CPU sort and searchsorted are not)."""
    a = _sortable(x).contiguous().numpy()
    out = np.empty(a.shape, np.int64)
    with LOCK:
        _tie_ranks_kernel(a, np.argsort(a, axis=-1), out)
    return torch.from_numpy(out)


def midranks_torch(x: torch.Tensor) -> torch.Tensor:
    """Mid-rank codes (R, P) int64 of each value in its row of x (R, P), by torch on x's device."""
    x = _sortable(x)
    s = x.sort(dim=-1).values
    x = x.contiguous()
    return torch.searchsorted(s, x, right=False) + torch.searchsorted(s, x, right=True)


def _sortable(x: torch.Tensor) -> torch.Tensor:
    x = x.detach()
    return x.to(torch.uint8) if x.dtype == torch.bool else x


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
