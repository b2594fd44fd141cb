"""STL-10 in its official binary layout (`stl10_binary/{split}_X.bin`, `{split}_y.bin`,
`class_names.txt`): read lazily through `numpy.memmap`, downloaded with torchvision when asked, and
written (`write_stl10_binary`) for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, RunError
from .gray import IMAGE_SIZE, Catalog, GrayImages, LazySource, check_n, download_failed
from .pixels import luma

STL10_CLASSES = (
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
)
_IMAGE_BYTES = 3 * IMAGE_SIZE * IMAGE_SIZE


def gray_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) uint8 RGB -> (..., H, W) uint8 luma (0.299 R + 0.587 G + 0.114 B, rounded)."""
    gray = luma(rgb.float())
    return gray.round_().clamp_(0, 255).to(torch.uint8)


class Planes(LazySource):
    """An `{split}_X.bin` file: (N, 3, 96, 96) uint8 RGB planes stored column-major, memory-mapped (nothing
    is read whole) and turned gray per batch. Pickles as its path (a pickled memmap carries the file)."""

    decodes = False  # a memory-mapped read, not a decode

    def __init__(self, path: Path, total: int):
        self.path, self.total = str(path), int(total)
        self.planes = self._open()

    def _open(self) -> np.memmap:
        shape = (self.total, 3, IMAGE_SIZE, IMAGE_SIZE)
        return np.memmap(self.path, dtype=np.uint8, mode="r", shape=shape)

    def gray(self, idx: np.ndarray) -> torch.Tensor:
        rgb = torch.from_numpy(np.ascontiguousarray(self.planes[idx])).transpose(-1, -2)
        return gray_uint8(rgb)

    def __getstate__(self) -> dict:
        return {"path": self.path, "total": self.total}

    def __setstate__(self, state: dict) -> None:
        self.path, self.total = state["path"], state["total"]
        self.planes = self._open()


def load_stl10(root: Path, split: str, download: bool, n_images: int | None) -> GrayImages:
    folder = root / "stl10_binary"
    x_path, y_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    needed = [x_path] if split == "unlabeled" else [x_path, y_path]
    if any(not p.is_file() for p in needed):
        if not download:
            missing = ", ".join(p.name for p in needed if not p.is_file())
            raise ConfigError(
                f"STL-10 {split} not found in {folder} (missing {missing}): set dataset.download=true to "
                f"download it there, or use dataset=samples to run offline."
            )
        _download(root, folder)
    size = x_path.stat().st_size
    if size == 0 or size % _IMAGE_BYTES:
        raise RunError(
            f"{x_path} has {size} bytes: expected a positive multiple of {_IMAGE_BYTES} (3x96x96 bytes per "
            f"image); the file is truncated or not STL-10."
        )
    total = size // _IMAGE_BYTES
    n = check_n(n_images, total, f"the STL-10 {split} split")
    x = Planes(x_path, total)
    names_path = folder / "class_names.txt"
    names = list(STL10_CLASSES)
    if names_path.is_file():
        names = [s.strip() for s in names_path.read_text().splitlines() if s.strip()]
    if split == "unlabeled":
        return GrayImages("stl10", split, x, Catalog(["unlabeled"] * n, range(min(10, n))))
    y = np.fromfile(y_path, dtype=np.uint8)
    if len(y) != total:
        raise RunError(
            f"{y_path} has {len(y)} bytes: expected {total} (one label byte per image of {x_path.name})."
        )
    y = y[:n].astype(np.int64)
    if n and (y.min() < 1 or y.max() > len(names)):
        raise RunError(
            f"{y_path} holds labels {y.min()}..{y.max()}: expected 1..{len(names)} (see {names_path.name})."
        )
    labels = [names[v - 1] for v in y]
    examples = [int(np.argmax(y == c)) for c in range(1, len(names) + 1) if (y == c).any()]
    # the study's example images: a cat, a horse
    study = [labels.index(c) for c in ("cat", "horse") if c in labels]
    return GrayImages("stl10", split, x, Catalog(labels, examples, study_positions=study))


def torchvision_stl10() -> type:
    """torchvision's STL10 class, imported when a download needs it (torchvision is slow to import)."""
    from torchvision.datasets import STL10

    return STL10


def _download(root: Path, folder: Path) -> None:
    """Fetch the whole archive (all splits) with torchvision; split='train' keeps what it loads small."""
    try:
        torchvision_stl10()(str(root), split="train", download=True)
    except Exception as e:  # offline, disk full, bad checksum
        raise download_failed("STL-10", folder, e) from e


def write_stl10_binary(
    root: str | Path,
    split: str,
    images_rgb: np.ndarray,
    labels: Sequence[int] | None,
    class_names: Sequence[str] = STL10_CLASSES,
) -> Path:
    """Write images (N, 3, 96, 96) uint8 (row-major) and labels 1..10 in STL-10's binary layout; returns the
    `stl10_binary` folder."""
    folder = Path(root) / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    x = np.asarray(images_rgb, dtype=np.uint8)
    if x.ndim != 4 or x.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images_rgb must have shape (N, 3, 96, 96), got {x.shape}")
    np.ascontiguousarray(x.transpose(0, 1, 3, 2)).tofile(folder / f"{split}_X.bin")
    if labels is not None:
        np.asarray(labels, dtype=np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("".join(f"{c}\n" for c in class_names))
    return folder
