"""What the MI estimator modules (mi_histogram, mi_ranks, mi_gcmi, mi_ksg, mi_shuffle) share: numba, or a
stand-in when it is absent, with the lock that serialises its kernels; the chunk size that bounds working
memory; and the finiteness check of rows.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import torch

try:
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba's OpenMP layer shares torch's libgomp, whose spin-waiting threads fight over the cores
        # (measured 3x slower on a busy 2-core machine); the workqueue layer's threads sleep instead.
        # It must not be entered from two threads at once: LOCK serialises the kernels.
        numba.config.THREADING_LAYER = "workqueue"
except ImportError:  # the torch paths still work, only slower
    numba = None
    HAVE_NUMBA = False
    prange = range

    def njit(*args, **kwargs):
        return args[0] if args and callable(args[0]) else (lambda f: f)


LOCK = threading.Lock()  # held around every numba kernel call

CHUNK = 1 << 23  # elements of a working buffer per internal chunk (bounds memory on CPU and GPU)


def chunks(n: int, size: int):
    """(start, end) ranges over n items of `size` elements each, CHUNK elements (at least one item) at
    a time."""
    step = max(1, CHUNK // max(1, size))
    return ((s, min(n, s + step)) for s in range(0, n, step))


def finite_rows(x: torch.Tensor) -> torch.Tensor:
    """Which rows of x (R, P) hold neither a NaN nor an infinity, (R,) bool on x's device."""
    if not x.is_floating_point():
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    if x.device.type == "cpu" and x.dtype != torch.bfloat16:  # numpy: no torch thread pool wakes
        return torch.from_numpy(np.isfinite(x.contiguous().numpy()).all(-1))
    return torch.isfinite(x).all(dim=-1)
