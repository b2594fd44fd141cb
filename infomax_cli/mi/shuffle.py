"""The shuffled-pixel null's permutations: one uniform random permutation of 0..P-1 per (image, map),
a Fisher-Yates shuffle driven by splitmix64 from a key that is a function of (seed, image id, map) alone.
A numba kernel (parallel over rows) and a numpy version give the same permutations; `mi.shuffle_pixels`
picks one and applies it.
"""

from __future__ import annotations

import numpy as np

from .common import LOCK, njit, prange

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def permutation_keys(seed: int, ids: np.ndarray, c: int) -> np.ndarray:
    """(n * c,) uint64 keys, the one of (image ids[n], map c) a function of (seed, ids[n], c) alone."""
    base = _splitmix_np(np.array([seed % 2**64], dtype=np.uint64))
    with np.errstate(over="ignore"):
        keys = _splitmix_np(
            _splitmix_np(base + ids.astype(np.uint64))[:, None] + np.arange(c, dtype=np.uint64)
        )
    return _splitmix_np(keys.reshape(-1))


def permutations_numba(keys: np.ndarray, p: int) -> np.ndarray:
    """(R, P) int64: a permutation of 0..P-1 per key, by the numba kernel."""
    out = np.empty((keys.size, p), np.int64)
    with LOCK:
        _permutations_kernel(keys, out)
    return out


def permutations_numpy(keys: np.ndarray, p: int) -> np.ndarray:
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


@njit(cache=True)
def _splitmix(z):
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def _splitmix_np(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        return z ^ (z >> np.uint64(31))
