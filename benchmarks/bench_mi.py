"""Pairs per second of `histogram_mi` against the per-pair numpy histogram2d method and a batched numpy
bincount method, all on one shared set of arrays (default 64 images x 32 maps of 96x96, float32).

    .venv/bin/python benchmarks/bench_mi.py [--images 64] [--maps 32] [--size 96] [--bins 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from infomax_cli import mi  # noqa: E402
from infomax_cli.mi import histogram  # noqa: E402


def numpy_per_pair(images: np.ndarray, maps: np.ndarray, bins: int) -> np.ndarray:
    """Matthew Brett's tutorial, one numpy.histogram2d per (image, map) pair."""
    out = np.empty(maps.shape[:2])
    for n in range(maps.shape[0]):
        for c in range(maps.shape[1]):
            h = np.histogram2d(images[n].ravel(), maps[n, c].ravel(), bins)[0]
            pxy = h / h.sum()
            px_py = pxy.sum(1)[:, None] * pxy.sum(0)[None, :]
            nz = pxy > 0
            out[n, c] = np.sum(pxy[nz] * np.log(pxy[nz] / px_py[nz]))
    return out


def _bins(x: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each value of each row (last axis), floor((x - min) / (max - min) * bins)."""
    lo = x.min(-1, keepdims=True)
    span = np.maximum(x.max(-1, keepdims=True) - lo, np.finfo(x.dtype).tiny)
    return np.minimum(((x - lo) / span * bins).astype(np.int64), bins - 1)


def numpy_bincount(images: np.ndarray, maps: np.ndarray, bins: int) -> np.ndarray:
    """Batched numpy: per image, its bins once, all C maps' joint counts in one bincount."""
    n_img, c = maps.shape[:2]
    out = np.empty((n_img, c))
    offset = (np.arange(c) * bins * bins)[:, None]
    for n in range(n_img):
        xi = _bins(images[n].reshape(1, -1), bins)
        yi = _bins(maps[n].reshape(c, -1), bins)
        counts = np.bincount((offset + xi * bins + yi).ravel(), minlength=c * bins * bins).reshape(
            c, bins, bins
        )
        pxy = counts / counts.sum((1, 2), keepdims=True)
        px_py = pxy.sum(2, keepdims=True) * pxy.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[n] = np.where(pxy > 0, pxy * np.log(pxy / px_py), 0.0).sum((1, 2))
    return out


def shared_arrays(n: int, c: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Image-like float32 arrays: smooth random images, maps mixing a transform of the image with noise."""
    rng = np.random.default_rng(seed)
    img = torch.from_numpy(rng.standard_normal((n, 1, size, size), dtype=np.float32))
    img = torch.nn.functional.avg_pool2d(img, 7, 1, 3)[:, 0]
    noise = torch.from_numpy(rng.standard_normal((n, c, size, size), dtype=np.float32))
    w = torch.from_numpy(rng.random((1, c, 1, 1), dtype=np.float32))
    maps = torch.relu(w * img[:, None] + (1 - w) * torch.nn.functional.avg_pool2d(noise, 3, 1, 1))
    return img.numpy(), maps.contiguous().numpy()


def timed(fn, repeat: int, sync=lambda: None) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        sync()
        t = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t)
    return times, result


def throughput(n: int, c: int, size: int, bins: int, repeat: int, seed: int = 0) -> list[dict]:
    """Each method's pairs/s on one shared set of n x c arrays of size x size: per method its name, the
    device it ran on, the median and best rate over `repeat` timed runs after a warm-up, the rate
    against the first (numpy per pair) and its largest difference from numpy's MI. CUDA when visible."""
    images, maps = shared_arrays(n, c, size, seed)
    ti, tm = torch.from_numpy(images), torch.from_numpy(maps)
    pairs = n * c

    def torch_cpu():
        est, _, finite, constant = histogram.width_torch(ti, tm, bins)
        return mi._masked(est, finite, constant).float()

    methods = [
        ("numpy histogram2d per pair", "cpu", lambda: numpy_per_pair(images, maps, bins), None),
        ("numpy batched bincount", "cpu", lambda: numpy_bincount(images, maps, bins), None),
        ("histogram_mi (numba)", "cpu", lambda: mi.histogram_mi(ti, tm, bins), None),
        ("histogram_mi torch fallback", "cpu", torch_cpu, None),
    ]
    if torch.cuda.is_available():
        gi, gm = ti.cuda(), tm.cuda()
        methods.append(
            (
                "histogram_mi (torch, CUDA)",
                torch.cuda.get_device_name(),
                lambda: mi.histogram_mi(gi, gm, bins),
                torch.cuda.synchronize,
            )
        )
    rows, ref, base = [], None, None
    for name, device, fn, sync in methods:
        fn()  # warm up: numba compiles (or loads its cache), CUDA initialises
        times, out = timed(fn, repeat, sync or (lambda: None))
        out = np.asarray(out.cpu() if isinstance(out, torch.Tensor) else out, dtype=np.float64)
        ref = out if ref is None else ref
        rate, best = pairs / statistics.median(times), pairs / min(times)
        base = rate if base is None else base
        diff = float(np.abs(out - ref).max())
        rows.append(
            dict(method=name, device=device, rate=rate, best=best, vs_numpy=rate / base, diff=diff)
        )
    return rows


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--maps", type=int, default=32)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--bins", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    numba_version = mi.numba.__version__ if mi.HAVE_NUMBA else "absent"
    numba_threads = mi.numba.get_num_threads() if mi.HAVE_NUMBA else 0
    console.print(
        f"{a.images} images x {a.maps} maps of {a.size}x{a.size} float32, {a.bins} bins; {os.cpu_count()} CPUs, "
        f"numba {numba_version} on {numba_threads} threads, torch {torch.__version__} on "
        f"{torch.get_num_threads()} threads; median (best) of {a.repeat} runs after a warm-up"
    )
    table = Table(title="histogram MI throughput (pairs/s)")
    for col in ("method", "device", "pairs/s", "best", "vs numpy per pair", "max |diff| vs numpy"):
        table.add_column(col, justify="left" if col in ("method", "device") else "right")
    for r in throughput(a.images, a.maps, a.size, a.bins, a.repeat, a.seed):
        table.add_row(
            r["method"],
            r["device"],
            f"{r['rate']:,.0f}",
            f"{r['best']:,.0f}",
            f"{r['vs_numpy']:.1f}x",
            f"{r['diff']:.1e}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
