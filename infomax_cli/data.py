"""The two image sources: `samples` (crops of scikit-image's bundled photographs, offline) and STL-10.

Both give 96x96 grayscale images (ITU-R 601 luma, rounded to uint8 once, so `batch` and `all_uint8`
agree exactly). STL-10 is read lazily from its binary layout through `numpy.memmap`.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch.utils.data import Dataset

from .errors import ConfigError, RunError

IMAGE_SIZE = 96
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
_IMAGE_BYTES = 3 * IMAGE_SIZE * IMAGE_SIZE
# scikit-image photographs that load without a download; chelsea and horse first (the example images).
SAMPLE_PHOTOS = (
    "chelsea", "horse", "astronaut", "brick", "camera", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
    "clock", "colorwheel", "microaneurysms", "cell",
)  # fmt: skip
_SAMPLES_SEED = 20240607  # fixed: the crops never depend on the run's seed


def _gray_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) uint8 RGB -> (..., H, W) uint8 luma (0.299 R + 0.587 G + 0.114 B, rounded)."""
    gray = TF.rgb_to_grayscale(rgb.float())[..., 0, :, :]
    return gray.round_().clamp_(0, 255).to(torch.uint8)


class GrayImages(Dataset):
    """N grayscale 96x96 images with labels; positions 0..N-1, `image_ids` their index in the split.

    `source` is either a uint8 tensor (N, 96, 96) of gray images, or an STL-10 `np.memmap`
    (>= N, 3, 96, 96) of RGB planes stored column-major, converted per batch.

    `groups` names the independent unit each image belongs to (images cut from one source are one unit:
    the photograph for `samples`); None: every image is its own unit (its image id).
    """

    def __init__(
        self, name: str, split: str, source: Any, labels: Sequence[str], example_ids: Sequence[int],
        groups: Sequence[str] | None = None, study_examples: Sequence[int] | None = None,
        image_ids: Sequence[int] | None = None,
    ):  # fmt: skip
        self.name, self.split = name, split
        self._x = source
        self.labels = list(labels)
        self.image_ids = np.arange(len(self.labels), dtype=np.int64) if image_ids is None else np.asarray(image_ids, dtype=np.int64)
        self.example_ids = [int(i) for i in example_ids]  # positions whose pictures are drawn
        # positions of the study's example images (its cat and horse); by default the first two examples
        self.study_examples = [int(i) for i in (self.example_ids[:2] if study_examples is None else study_examples)]
        if groups is not None and len(groups) != len(self.labels):
            raise ValueError(f"{len(groups)} groups for {len(self.labels)} images")
        self.groups = [str(g) for g in groups] if groups is not None else [str(i) for i in self.image_ids]

    def subset(self, positions: Sequence[int]) -> "GrayImages":
        """The images at `positions` (of an in-memory set), keeping their image ids, labels and groups."""
        if not isinstance(self._x, torch.Tensor):
            raise ValueError("subset needs an in-memory image set")
        pos = [int(p) for p in positions]
        where = {p: k for k, p in enumerate(pos)}
        return GrayImages(
            self.name, self.split, self._x[torch.tensor(pos, dtype=torch.long)], [self.labels[p] for p in pos],
            [where[p] for p in self.example_ids if p in where], [self.groups[p] for p in pos],
            [where[p] for p in self.study_examples if p in where], self.image_ids[pos],
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.labels)

    def _uint8(self, idx: Any) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"image positions must lie in 0..{len(self) - 1}, got {idx.min()}..{idx.max()}")
        if isinstance(self._x, torch.Tensor):
            return self._x[torch.from_numpy(idx)]
        rgb = torch.from_numpy(np.ascontiguousarray(self._x[idx])).transpose(-1, -2)  # planes are column-major
        return _gray_uint8(rgb)

    def batch(self, idx: Any) -> torch.Tensor:
        """Images at positions `idx` as float32 (B, 1, 96, 96) in [0, 1]."""
        return self._uint8(idx).unsqueeze(1).float().div_(255.0)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.batch([i])[0]

    def all_uint8(self) -> torch.Tensor:
        """All N images as uint8 (N, 96, 96)."""
        if isinstance(self._x, torch.Tensor):
            return self._x[: len(self)].clone()
        chunks = [self._uint8(np.arange(s, min(s + 1024, len(self)))) for s in range(0, len(self), 1024)]
        return torch.cat(chunks) if chunks else torch.empty(0, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)

    def __getstate__(self) -> dict:
        # a pickled memmap would carry the whole file; carry its path and reopen it instead
        state = dict(self.__dict__)
        if isinstance(self._x, np.memmap):
            state["_x"] = (str(self._x.filename), self._x.shape)
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["_x"], tuple):
            path, shape = state["_x"]
            state["_x"] = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
        self.__dict__.update(state)


def load_datasets(cfg: Any, holdout: bool = False) -> tuple[GrayImages, GrayImages]:
    """(the images trained on, the images measured): one set for both, as the study does, or with
    `holdout` the measured images are never trained on: STL-10's test split (its train split when the
    training split is test), or the crops of the embedded set's `dataset.heldout` photographs."""
    data = load_dataset(cfg)
    if not holdout:
        return data, data
    if cfg.name == "samples":
        held = [str(p) for p in getattr(cfg, "heldout", [])]
        unknown = sorted(set(held) - set(SAMPLE_PHOTOS))
        if not held or unknown:
            raise ConfigError(
                f"train.holdout=true needs dataset.heldout to name photographs of the embedded set (got {held or 'none'}"
                f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}): choose among {', '.join(SAMPLE_PHOTOS)}."
            )
        measured = [i for i, label in enumerate(data.labels) if label in held]
        trained = [i for i, label in enumerate(data.labels) if label not in held]
        if len(trained) < 2 or not measured:
            raise ConfigError(
                f"train.holdout=true leaves {len(trained)} training and {len(measured)} measured images of the first "
                f"{len(data)}: raise dataset.n_images (or null) or change dataset.heldout."
            )
        return data.subset(trained), data.subset(measured)
    if cfg.name == "stl10":
        split = str(getattr(cfg.split, "value", cfg.split))
        other = "train" if split == "test" else "test"
        return data, _stl10(Path(cfg.root), other, bool(cfg.download), cfg.n_images)
    raise ConfigError(f"train.holdout=true is not available for dataset={cfg.name}: use train.holdout=false.")


def load_dataset(cfg: Any) -> GrayImages:
    """The dataset `cfg` names (a DatasetConfig-like object), cut to its first `n_images`."""
    split = getattr(cfg.split, "value", cfg.split)
    if cfg.name == "samples":
        images, labels, examples = _samples(int(getattr(cfg, "per_photo", 16)))
        n = _check_n(cfg.n_images, len(labels), "samples")
        # the crops of one photograph are one unit: they overlap and share its content
        return GrayImages("samples", "train", images[:n], labels[:n], [i for i in examples if i < n], groups=labels[:n])
    if cfg.name == "stl10":
        return _stl10(Path(cfg.root), str(split), bool(cfg.download), cfg.n_images)
    raise ConfigError(f"dataset={cfg.name} is unknown: use one of samples, stl10.")


def _check_n(n_images: int | None, total: int, what: str) -> int:
    if n_images is None:
        return total
    if n_images > total:
        raise ConfigError(
            f"dataset.n_images={n_images} is larger than {what} ({total} images): use at most {total}, or null for all."
        )
    return int(n_images)


@functools.lru_cache(maxsize=4)
def _samples(per_photo: int) -> tuple[torch.Tensor, tuple[str, ...], tuple[int, ...]]:
    """Crops ordered crop-major (every photo's first crop, then every photo's second, ...), so that a
    small n_images still holds many photographs; the first crops are the whole photos."""
    import skimage.data

    crops = []
    for name in SAMPLE_PHOTOS:
        a = np.asarray(getattr(skimage.data, name)())
        img = torch.from_numpy(a.astype(np.float32) / (1.0 if a.dtype == bool else 255.0))
        img = img.permute(2, 0, 1)[:3] if img.ndim == 3 else img[None]
        if img.shape[0] == 3:
            img = TF.rgb_to_grayscale(img)
        h, w = img.shape[-2:]
        short = min(h, w)
        rng = np.random.default_rng([_SAMPLES_SEED, zlib.crc32(name.encode())])
        boxes = [((h - short) // 2, (w - short) // 2, short)]
        for _ in range(per_photo - 1):
            for _ in range(20):  # redraw a box already taken (small photos), within reason
                s = int(rng.integers(IMAGE_SIZE, short + 1))
                box = (int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1)), s)
                if box not in boxes:
                    break
            boxes.append(box)
        crops.append(
            [TF.resize(img[:, y : y + s, x : x + s], [IMAGE_SIZE, IMAGE_SIZE], antialias=True)[0] for y, x, s in boxes]
        )
    order = [(p, k) for k in range(per_photo) for p in range(len(SAMPLE_PHOTOS))]
    images = torch.stack([crops[p][k] for p, k in order]).mul_(255).round_().clamp_(0, 255).to(torch.uint8)
    labels = tuple(SAMPLE_PHOTOS[p] for p, _ in order)
    return images, labels, (labels.index("chelsea"), labels.index("horse"))


def _stl10(root: Path, split: str, download: bool, n_images: int | None) -> GrayImages:
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
    n = _check_n(n_images, total, f"the STL-10 {split} split")
    x = np.memmap(x_path, dtype=np.uint8, mode="r", shape=(total, 3, IMAGE_SIZE, IMAGE_SIZE))
    names_path = folder / "class_names.txt"
    names = list(STL10_CLASSES)
    if names_path.is_file():
        names = [s.strip() for s in names_path.read_text().splitlines() if s.strip()]
    if split == "unlabeled":
        return GrayImages("stl10", split, x, ["unlabeled"] * n, range(min(10, n)))
    y = np.fromfile(y_path, dtype=np.uint8)
    if len(y) != total:
        raise RunError(f"{y_path} has {len(y)} bytes: expected {total} (one label byte per image of {x_path.name}).")
    y = y[:n].astype(np.int64)
    if n and (y.min() < 1 or y.max() > len(names)):
        raise RunError(f"{y_path} holds labels {y.min()}..{y.max()}: expected 1..{len(names)} (see {names_path.name}).")
    labels = [names[v - 1] for v in y]
    examples = [int(np.argmax(y == c)) for c in range(1, len(names) + 1) if (y == c).any()]
    study = [labels.index(c) for c in ("cat", "horse") if c in labels]  # the study's example images: a cat, a horse
    return GrayImages("stl10", split, x, labels, examples, study_examples=study)


def _download(root: Path, folder: Path) -> None:
    """Fetch the whole archive (all splits) with torchvision; split='train' keeps what it loads small."""
    from torchvision.datasets import STL10

    try:
        STL10(str(root), split="train", download=True)
    except Exception as e:  # offline, disk full, bad checksum
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunError(f"could not download STL-10 to {folder} ({msg}); use dataset=samples to run offline.") from e


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
