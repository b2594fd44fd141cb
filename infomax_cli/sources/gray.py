"""GrayImages: the one image bundle, the set of grayscale images every image source gives (samples.py,
stl10.py, folder.py, torchvision_sets.py) and that training and measurement both take; and the gray
rule (`gray_square`) that folder and torchvision images go through.

Two index spaces, named apart: a *position* (0..N-1) is where an image sits in this set, what a batch
is drawn by (`batch(positions)`, `example_positions`, `study_positions`); an *id* (`image_ids`) is its
index in its split, what files on disk name (per_image.csv's `image_id`, summary.json's
`study_examples`). `groups` are the independent units, position by position.

Pixels are ITU-R 601 luma rounded to uint8 once, so `batch` and `all_uint8` agree exactly. A source
read lazily (STL-10 through `numpy.memmap`, files decoded per batch) stays on disk until asked; `on`
gives the same set with its batches on a device.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, RunError, first_line
from .pixels import centre_crop, luma, resize, short_side_size

IMAGE_SIZE = 96  # the study's images (samples, STL-10)
# Folder and torchvision images are decoded from files per batch; a set whose decoded pixels fit in this
# many bytes is decoded once and kept (in memory, or on the device), a larger one is decoded per batch.
DECODE_ONCE_BYTES = 1 << 28
# Keep a set on the device (`GrayImages.on`) when its gray uint8 pixels fit in this many bytes.
ON_DEVICE_BYTES = 1 << 30


class LazySource:
    """Images read per batch: `gray(positions)` gives uint8 (B, size, size). `decodes`: reading means
    decoding files (folder, torchvision: costly, so a set is decoded once only under DECODE_ONCE_BYTES);
    a memory-mapped read (STL-10) does not."""

    decodes = True

    def gray(self, idx: np.ndarray) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class Catalog:
    """What a source knows of its images besides their pixels, position by position."""

    labels: Sequence[str]
    example_positions: Sequence[int]  # the images whose pictures are drawn
    # the independent unit of each image (images cut from one source are one unit: the photograph for
    # `samples`); None: every image is its own unit
    groups: Sequence[str] | None = None
    # the study's cat and horse; None: the first two examples
    study_positions: Sequence[int] | None = None
    image_ids: Sequence[int] | None = None  # each image's index in its split; None: 0..N-1
    files: Sequence[str] | None = None  # folder: each image's path relative to dataset.root


class GrayImages(Dataset):
    """N grayscale size x size images with labels; positions 0..N-1, `image_ids` their index in the split.

    `source` is either a uint8 tensor (N, size, size) of gray images or a LazySource read per batch
    (STL-10's memory-mapped planes, files decoded per batch: `lazy` when reading decodes).

    `catalog` holds the labels, image ids, independent units and example images; `info`: extra keys for
    the run's summary.json (folder, torchvision). `device`: where `batch` puts its images (`on`).
    """

    device = torch.device("cpu")
    _resident: torch.Tensor | None = None  # the pixels kept on `device` (`on`), or None

    def __init__(
        self,
        name: str,
        split: str,
        source: Any,
        catalog: Catalog,
        size: int = IMAGE_SIZE,
        info: dict | None = None,
    ):
        self.name, self.split = name, split
        self._x = source
        self.size = int(size)
        self.labels = list(catalog.labels)
        n = len(self.labels)
        ids = catalog.image_ids
        self.image_ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        for what, values in (("image ids", self.image_ids), ("groups", catalog.groups)):
            if values is not None and len(values) != n:
                raise ValueError(f"{len(values)} {what} for {n} images")
        self.info = dict(info or {})
        self.files = None if catalog.files is None else list(catalog.files)
        self.example_positions = [int(i) for i in catalog.example_positions]
        # the study's cat and horse: by default the first two examples
        study = catalog.study_positions
        self.study_positions = [
            int(i) for i in (self.example_positions[:2] if study is None else study)
        ]
        # every image its own unit unless the source says which images belong together
        groups = catalog.groups
        self.groups = [str(g) for g in (self.image_ids if groups is None else groups)]

    def subset(self, positions: Sequence[int]) -> GrayImages:
        """The images at `positions`, keeping their image ids, labels and groups (in memory: copied; read
        from files: still read per batch, through this set)."""
        pos = [int(p) for p in positions]
        where = {p: k for k, p in enumerate(pos)}
        source = (
            self._x[torch.tensor(pos, dtype=torch.long)]
            if isinstance(self._x, torch.Tensor)
            else _SubsetSource(self, pos)
        )
        catalog = Catalog(
            [self.labels[p] for p in pos],
            [where[p] for p in self.example_positions if p in where],
            groups=[self.groups[p] for p in pos],
            study_positions=[where[p] for p in self.study_positions if p in where],
            image_ids=self.image_ids[pos],
            files=None if self.files is None else [self.files[p] for p in pos],
        )
        return GrayImages(self.name, self.split, source, catalog, self.size, self.info)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lazy(self) -> bool:
        """Images decoded from files per batch (folder, torchvision): costly to read all at once."""
        return isinstance(self._x, LazySource) and self._x.decodes

    def _uint8(self, idx: Any) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(
                f"image positions must lie in 0..{len(self) - 1}, got {idx.min()}..{idx.max()}"
            )
        if isinstance(self._x, torch.Tensor):
            return self._x[torch.from_numpy(idx)]
        return self._x.gray(idx)

    def on(self, device: torch.device) -> GrayImages:
        """The same images (positions, ids, groups, labels) with their batches on `device`: the pixels
        copied there once when they fit (ON_DEVICE_BYTES; images decoded from files under the smaller
        DECODE_ONCE_BYTES), else read per batch (into pinned memory for a GPU) and copied without
        blocking."""
        out = copy.copy(self)
        out.device = torch.device(device)
        budget = DECODE_ONCE_BYTES if self.lazy else ON_DEVICE_BYTES
        fits = len(self) * self.size * self.size <= budget
        out._resident = self.all_uint8().to(out.device) if fits else None
        return out

    def batch(self, positions: Any) -> torch.Tensor:
        """Images at `positions` as float32 (B, 1, size, size) in [0, 1], on `device`."""
        if self._resident is not None:
            pos = (
                positions.long().reshape(-1)
                if isinstance(positions, torch.Tensor)
                else torch.as_tensor(np.asarray(positions, dtype=np.int64).reshape(-1))
            )
            return self._resident[pos.to(self.device)].unsqueeze(1).float().div_(255.0)
        batch = self._uint8(positions).unsqueeze(1).float().div_(255.0)
        if self.device.type == "cpu":
            return batch
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        return batch.to(self.device, non_blocking=True)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.batch([i])[0]

    def all_uint8(self) -> torch.Tensor:
        """All N images as uint8 (N, size, size)."""
        if isinstance(self._x, torch.Tensor):
            return self._x[: len(self)].clone()
        chunks = [
            self._uint8(np.arange(s, min(s + 1024, len(self)))) for s in range(0, len(self), 1024)
        ]
        return (
            torch.cat(chunks) if chunks else torch.empty(0, self.size, self.size, dtype=torch.uint8)
        )


class _SubsetSource(LazySource):
    """Some positions of a set whose images are read per batch."""

    def __init__(self, parent: GrayImages, positions: Sequence[int]):
        self.parent, self.positions = parent, np.asarray(positions, dtype=np.int64)
        self.decodes = parent.lazy

    def gray(self, idx: np.ndarray) -> torch.Tensor:
        return self.parent._uint8(self.positions[np.asarray(idx, dtype=np.int64)])


def check_n(n_images: int | None, total: int, what: str, most: int | None = None) -> int:
    """How many images a job reads of the `total` a source has: `n_images` (null: all), at most
    `most` (dataset.max_images); ConfigError (one line) past either, before any image is read."""
    if n_images is not None and n_images > total:
        raise ConfigError(
            f"dataset.n_images={n_images} is larger than {what} ({total} images): use at most {total}, or null for all."
        )
    n = total if n_images is None else int(n_images)
    if most is not None and n > most:
        raise ConfigError(
            f"{what} has {total} images, more than dataset.max_images={most} a job reads: use "
            f"dataset.n_images=N for its first N, or raise dataset.max_images."
        )
    return n


def download_failed(what: str, where: Path | str, error: BaseException) -> RunError:
    """The one error every source raises when `dataset.download=true` could not fetch its files
    (offline, disk full, bad checksum): a runtime failure (exit 1), as the contract has it, whatever the
    dataset; the command was right, the machine could not carry it out."""
    reason = first_line(error) or type(error).__name__
    return RunError(
        f"could not download {what} to {where} ({reason}): check the network, or put the files "
        "there yourself; dataset=samples runs offline."
    )


def gray_square(image: Any, size: int) -> torch.Tensor:
    """A PIL image of any size and mode -> uint8 (size, size) gray, by the documented rule:

    1. the EXIF orientation is applied (photos stand as they were taken);
    2. grayscale in float: `L` as is; 16-bit integer modes (`I;16*`, `I`) times 255/65535; `F` (float)
       taken as [0, 1], times 255; every other mode (RGB, RGBA, P, CMYK, 1, LA, ...) converted to RGB by
       Pillow (alpha dropped), then ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B;
    3. resized so that the short side is `size` (the long side int(size * long / short)), bilinear with
       antialiasing: torchvision's `Resize(size)`;
    4. the centre size x size cut out: torchvision's `CenterCrop(size)`;
    5. rounded to uint8 once.
    """
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "L":
        gray = torch.from_numpy(np.array(image, dtype=np.float32))
    elif mode == "F" or mode.startswith("I"):
        scale = 255.0 if mode == "F" else 255.0 / 65535.0
        gray = torch.from_numpy(np.clip(np.array(image, dtype=np.float32) * scale, 0, 255))
    else:
        rgb = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
        gray = luma(rgb.float())
    gray = resize(gray[None], *short_side_size(*gray.shape, size))
    gray = centre_crop(gray, size)[0]
    return gray.round_().clamp_(0, 255).to(torch.uint8)


def examples_by_label(labels: Sequence[str]) -> list[int]:
    """The first image of each label, labels in sorted order."""
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    return [first[label] for label in sorted(first)]
