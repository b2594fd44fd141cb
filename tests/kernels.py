"""numba's kernels compiled once per checkout, before the test processes need them.

On a clean checkout numba's cache (`cache=True`: infomax_cli/mi/__pycache__) is empty, and a process
that calls a kernel before its cache file is written compiles it itself (the equal-width histogram
alone: about 9 s of a CPU). Under `make test` that was both workers, both warm interpreters and the
first forked jobs, each compiling the same kernels at once. Here the first process to take the lock
compiles them; the others wait for it, then load them from numba's cache (well under a second).

    python tests/kernels.py    # compile them (or load them), holding the lock: conftest starts it
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lock_path() -> Path:
    """The lock of this checkout's kernels (one per checkout: its cache is its own)."""
    tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"infomax-numba-{tag}.lock"


def compile_kernels() -> None:
    """Every numba kernel a measurement calls (each estimator and binning, the shuffle), on float32
    tensors as the jobs pass them, compiled or loaded from numba's cache while holding the lock."""
    from filelock import FileLock

    with FileLock(str(lock_path())):  # taken before the imports: a process started first wins it
        import torch

        from infomax_cli import mi

        g = torch.Generator().manual_seed(0)
        images, maps = torch.rand(2, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
        for options in (
            {},
            {"binning": "quantile"},
            {"estimator": "gcmi"},
            {"estimator": "ksg", "ksg_samples": 16},
        ):
            mi.estimate_mi(images, maps, **options)
        mi.shuffle_pixels(maps, seed=0)


if __name__ == "__main__":
    compile_kernels()
