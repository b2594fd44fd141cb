"""numba's kernels compiled once per checkout, before the test processes need them.

On a clean checkout numba's cache (`cache=True`: infomax_cli/mi/__pycache__) is empty, and a process
that calls a kernel before its cache file is written compiles it itself (the equal-width histogram
alone: about 9 s of a CPU). Under `make test` that was both workers, both warm interpreters and the
first forked jobs, each compiling the same kernels at once. Here the first process to take the lock
compiles them; the others wait for it, then load them from numba's cache (well under a second). They
are compiled in two parts of about 8 s each, one process per part (both CPUs of a 2-core runner busy
while the test workers wait, not one), each part under its own lock.

    python tests/kernels.py PART    # compile part PART (or load it), holding its lock: conftest
                                    # starts one per part
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# The measurements whose kernels are compiled, in two parts of about the same compile time: the
# equal-width histogram alone; the quantile binning, GCMI, KSG and the pixel shuffle.
PARTS: tuple[tuple[dict | None, ...], ...] = (
    ({},),
    ({"binning": "quantile"}, {"estimator": "gcmi"}, {"estimator": "ksg", "ksg_samples": 16}, None),
)


def lock_path(part: int) -> Path:
    """The lock of this checkout's part `part` of the kernels (one per checkout: its cache is its own)."""
    tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"infomax-numba-{tag}-{part}.lock"


def compile_kernels(parts: range = range(len(PARTS))) -> None:
    """Every numba kernel a measurement calls (each estimator and binning, the shuffle: None), on
    float32 tensors as the jobs pass them, compiled or loaded from numba's cache while holding each
    part's lock in turn."""
    from filelock import FileLock

    for part in parts:
        # taken before the imports: a process started first wins it
        with FileLock(str(lock_path(part))):
            import torch

            from infomax_cli import mi

            g = torch.Generator().manual_seed(0)
            images, maps = torch.rand(2, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
            for options in PARTS[part]:
                if options is None:
                    mi.shuffle_pixels(maps, seed=0)
                else:
                    mi.estimate_mi(images, maps, **options)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2 or sys.argv[1] not in {str(k) for k in range(len(PARTS))}:
        sys.exit(f"usage: python tests/kernels.py PART (0-{len(PARTS) - 1})")
    compile_kernels(range(int(sys.argv[1]), int(sys.argv[1]) + 1))
