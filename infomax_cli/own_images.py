"""Your own images: a folder of image files (ImageFolder layout: one subfolder per label) and any
torchvision image dataset by class name, brought to gray `dataset.size` x `dataset.size` squares
(`gray_square`) and decoded per batch."""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF

from .errors import ConfigError, RunError, first_line
from .images import DECODE_ONCE_BYTES, GrayImages, check_n

log = logging.getLogger("infomax")


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
        gray = TF.rgb_to_grayscale(rgb.float())[0]
    gray = TF.resize(
        gray[None], [size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True
    )
    gray = TF.center_crop(gray, [size, size])[0]
    return gray.round_().clamp_(0, 255).to(torch.uint8)


class UnreadableImage(Exception):
    """A file of the folder that Pillow cannot decode."""

    def __init__(self, path: str, cause: BaseException):
        super().__init__(f"{path} ({type(cause).__name__}: {first_line(cause)})")
        self.path = path


@functools.lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """File extensions of the formats Pillow decodes, lower case with the dot. Left out: Pillow's stub
    formats (no decoder), MPEG (identification only) and EPS/PS (vector documents needing Ghostscript)."""
    from PIL import Image, ImageFile

    Image.init()
    out = set()
    for ext, fmt in Image.registered_extensions().items():
        factory = Image.OPEN.get(fmt, (None,))[0]
        if (
            factory is None
            or fmt in ("MPEG", "EPS")
            or (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))
        ):
            continue
        out.add(ext.lower())
    return frozenset(out)


def list_images(root: str | Path) -> list[str]:
    """Every image file under `root` (recursively, symbolic links followed once; hidden files and folders
    left out) as paths relative to root with '/', sorted by that string: the same order on every machine."""
    root = str(root)
    exts, seen, out = image_extensions(), set(), []

    def fail(e: OSError) -> None:
        raise RunError(
            f"cannot list {e.filename} ({e.strerror}): make it readable, or move it out of dataset.root."
        )

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back to a folder already listed
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, root)
        for f in filenames:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in exts:
                out.append(f if rel == "." else Path(rel, f).as_posix())
    return sorted(out)


def folder_label(rel: str) -> str:
    """ImageFolder's rule: the name of the subfolder of root an image lies in; '' for images in root itself."""
    return rel.split("/", 1)[0] if "/" in rel else ""


class _FolderSource:
    """Images of a folder decoded per batch (see `gray_square`); pickles as its file list."""

    def __init__(self, root: Path, paths: Sequence[str], size: int):
        self.root, self.paths, self.size = str(root), list(paths), int(size)

    def decode(self, rel: str) -> torch.Tensor:
        from PIL import Image

        path = os.path.join(self.root, rel)
        try:
            with Image.open(path) as image:
                return gray_square(image, self.size)
        except (
            Exception
        ) as e:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
            raise UnreadableImage(path, e) from e

    def gray(self, idx: np.ndarray) -> torch.Tensor:
        out = torch.empty(len(idx), self.size, self.size, dtype=torch.uint8)
        for k, i in enumerate(idx):
            try:
                out[k] = self.decode(self.paths[int(i)])
            except UnreadableImage as e:
                raise RunError(
                    f"cannot decode the image {e}: remove or replace the file, or set dataset.skip_unreadable=true "
                    "to skip unreadable images."
                ) from None
        return out


def _examples_by_label(labels: Sequence[str]) -> list[int]:
    """The first image of each label, labels in sorted order."""
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    return [first[label] for label in sorted(first)]


def load_folder(root: Path, size: int, n_images: int | None, skip_unreadable: bool) -> GrayImages:
    """Your own images under `root`, ImageFolder layout; image ids are positions in the sorted listing."""
    if not root.exists():
        raise ConfigError(
            f"dataset.root={root} does not exist: point dataset.root at your folder of images "
            "(dataset=folder dataset.root=DIR)."
        )
    if not root.is_dir():
        raise ConfigError(
            f"dataset.root={root} is a file, not a folder: point dataset.root at the folder that holds your images."
        )
    files = list_images(root)
    if not files:
        raise ConfigError(
            f"dataset.root={root} holds no image file Pillow reads (PNG, JPEG, TIFF, BMP, ...; hidden files are left "
            "out): put images in it, directly or one subfolder per label."
        )
    info: dict[str, Any] = {
        "dataset_kind": "folder",
        "dataset_root": str(root.resolve()),
        "image_size": size,
    }
    reader = _FolderSource(root, files, size)
    skipped: list[str] = []
    if (
        not skip_unreadable
    ):  # nothing decoded here: the first batch that meets a bad file stops the run
        keep = list(range(check_n(n_images, len(files), f"dataset.root={root}")))
        source: Any = _FolderSource(root, files[: len(keep)], size)
    else:  # every file decoded once, in order, until n_images readable ones; kept when they fit the budget
        want = len(files) if n_images is None else n_images
        keep, decoded = [], []
        for i, rel in enumerate(files):
            if len(keep) == want:
                break
            try:
                image = reader.decode(rel)
            except UnreadableImage as e:
                skipped.append(rel)
                if len(skipped) <= 20:
                    log.warning(f"skipped the unreadable image {e}")
                continue
            keep.append(i)
            if decoded is not None:
                decoded.append(image)
                if len(decoded) * size * size > DECODE_ONCE_BYTES:
                    decoded = None  # too many to hold: decoded again per batch
        if len(skipped) > 20:
            log.warning(
                f"... and {len(skipped) - 20} more unreadable images skipped (summary.json lists them all)"
            )
        if not keep:
            raise ConfigError(
                f"dataset.root={root}: none of its {len(files)} image files could be decoded (e.g. {skipped[0]}): "
                "check that they are images."
            )
        if n_images is not None and len(keep) < n_images:
            raise ConfigError(
                f"dataset.n_images={n_images} is larger than the {len(keep)} readable images of "
                f"dataset.root={root}: use "
                f"at most {len(keep)}, or null for all."
            )
        source = (
            torch.stack(decoded)
            if decoded is not None
            else _FolderSource(root, [files[i] for i in keep], size)
        )
    info["skipped_files"] = skipped
    labels = [folder_label(files[i]) for i in keep]
    data = GrayImages(
        "folder",
        "all",
        source,
        labels,
        _examples_by_label(labels),
        size=size,
        image_ids=keep,
        info=info,
    )
    data.files = [files[i] for i in keep]
    return data


# torchvision.datasets classes that are not image datasets one can name here
_NOT_IMAGE_SETS = ("VisionDataset", "DatasetFolder")
SUGGESTED_TORCHVISION = ("CIFAR10", "CIFAR100", "MNIST", "FashionMNIST", "SVHN", "FakeData")


def torchvision_datasets() -> list[str]:
    """The class names `dataset=torchvision dataset.name=...` accepts."""
    import torchvision.datasets as tvd

    names = []
    for name in tvd.__all__:
        cls = getattr(tvd, name, None)
        if (
            isinstance(cls, type)
            and issubclass(cls, tvd.VisionDataset)
            and name not in _NOT_IMAGE_SETS
        ):
            names.append(name)
    return sorted(names)


def torchvision_class(name: str) -> type:
    """torchvision.datasets' class of that name (any letter case); ConfigError with suggestions if none."""
    import difflib

    import torchvision.datasets as tvd

    valid = torchvision_datasets()
    match = name if name in valid else next((v for v in valid if v.lower() == name.lower()), None)
    if match is None:
        close = difflib.get_close_matches(name.lower(), [v.lower() for v in valid], n=1, cutoff=0.6)
        hint = (
            f" (did you mean {next(v for v in valid if v.lower() == close[0])}?)" if close else ""
        )
        raise ConfigError(
            f"dataset.name={name} is not a torchvision dataset{hint}: use a class of torchvision.datasets, e.g. "
            f"{', '.join(SUGGESTED_TORCHVISION)} (dataset=torchvision dataset.name=CIFAR10)."
        )
    return getattr(tvd, match)


class _TorchvisionSource:
    """A torchvision dataset's images, converted per batch (see `gray_square`); pickles as its class name
    and arguments (the dataset is built again where it is unpickled)."""

    def __init__(self, name: str, kwargs: dict, size: int, download: bool):
        self.name, self.kwargs, self.size, self.download = name, dict(kwargs), int(size), download
        self._ds = None

    @property
    def dataset(self):
        if self._ds is None:
            self._ds = self._build()
        return self._ds

    def _build(self):
        cls = torchvision_class(self.name)
        root = self.kwargs.get("root", "")
        try:
            return cls(**self.kwargs)
        except (
            TypeError,
            ValueError,
        ) as e:  # an argument it does not take, a split it does not have
            args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
            raise ConfigError(
                f"torchvision {self.name}({args}) failed: {first_line(e)}: check dataset.split and dataset.options."
            ) from e
        except Exception as e:  # missing or corrupt files, offline
            if not self.download:
                raise ConfigError(
                    f"torchvision {self.name} could not be read from {root} ({first_line(e)}): "
                    "set dataset.download=true "
                    f"to download it there, or point dataset.root at it."
                ) from e
            raise RunError(
                f"could not download or read torchvision {self.name} in {root} "
                f"({first_line(e)}); use dataset=samples to run offline."
            ) from e

    def image(self, i: int) -> torch.Tensor:
        from PIL import Image

        try:
            item = self.dataset[i]
        except Exception as e:
            raise RunError(
                f"torchvision {self.name} could not read its image {i} ({type(e).__name__}: {first_line(e)})."
            ) from e
        x = item[0] if isinstance(item, (tuple, list)) else item
        if isinstance(x, (torch.Tensor, np.ndarray)):
            x = _array_image(x)
        if not isinstance(x, Image.Image):
            raise RunError(
                f"torchvision {self.name} gives a {type(x).__name__}, not an image: use an image dataset."
            )
        return gray_square(x, self.size)

    def gray(self, idx: np.ndarray) -> torch.Tensor:
        out = torch.empty(len(idx), self.size, self.size, dtype=torch.uint8)
        for k, i in enumerate(idx):
            out[k] = self.image(int(i))
        return out

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ds": None}


def _array_image(x: torch.Tensor | np.ndarray) -> Any:
    """A tensor (C, H, W) or array (H, W, C) / (H, W) image as a PIL image for `gray_square`: uint8 as is;
    floats taken as [0, 1] and kept in float (mode F, grayscale first), so nothing is truncated."""
    from PIL import Image

    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if not isinstance(x, torch.Tensor) and t.ndim == 3:
        t = t.permute(2, 0, 1)  # arrays are channels-last
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        return x  # not an image: the caller says so
    if t.is_floating_point():
        gray = TF.rgb_to_grayscale(t[:3].float())[0] if t.shape[0] >= 3 else t[0].float()
        return Image.fromarray(gray.numpy().astype(np.float32))
    t = t.to(torch.uint8)
    return (
        Image.fromarray(t[0].numpy())
        if t.shape[0] == 1
        else Image.fromarray(t[:3].permute(1, 2, 0).contiguous().numpy())
    )


def _torchvision_label(target: Any, classes: Sequence[str] | None) -> str:
    if isinstance(target, (torch.Tensor, np.ndarray, np.generic)):
        if (target.numel() if isinstance(target, torch.Tensor) else np.size(target)) != 1:
            return ""
        target = target.reshape(-1)[0].item()
    if isinstance(target, str):
        return target
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        t = int(target)
        return str(classes[t]) if classes is not None and 0 <= t < len(classes) else str(t)
    return ""


def _torchvision_labels(ds: Any, n: int) -> list[str]:
    """Labels of the first n items: from the dataset's targets when it keeps them, else item by item."""
    classes = getattr(ds, "classes", None)
    classes = list(classes) if isinstance(classes, (list, tuple)) else None
    for attr in ("targets", "labels", "_labels", "y"):
        t = getattr(ds, attr, None)
        if t is not None and not callable(t) and not isinstance(t, str):
            try:
                if len(t) == len(ds):
                    return [_torchvision_label(t[i], classes) for i in range(n)]
            except TypeError:
                pass
    items = (ds[i] for i in range(n))
    return [
        _torchvision_label(
            it[1] if isinstance(it, (tuple, list)) and len(it) > 1 else None, classes
        )
        for it in items
    ]


def load_torchvision(
    name: str, root: Path, split: str, download: bool, size: int, n_images: int | None, options: Any
) -> GrayImages:
    """Any torchvision image dataset: `dataset.split` becomes its `train` flag or its `split`, `dataset.root`
    its `root`, `dataset.download` its `download`; `dataset.options` are passed as they are (and win)."""
    from omegaconf import DictConfig, OmegaConf

    cls = torchvision_class(name)
    name = cls.__name__
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    if "root" in params:
        kwargs["root"] = str(root)
    if "download" in params:
        kwargs["download"] = download
    if "train" in params:
        if split not in ("train", "test"):
            raise ConfigError(
                f"dataset.split={split} is not a split of torchvision {name}: use train or test."
            )
        kwargs["train"] = split == "train"
    elif "split" in params:
        kwargs["split"] = split
    elif split != "train":
        raise ConfigError(
            f"dataset.split={split}: torchvision {name} has no splits: leave dataset.split at train."
        )
    if isinstance(options, DictConfig):
        options = OmegaConf.to_container(options, resolve=True)
    kwargs.update(dict(options or {}))
    source = _TorchvisionSource(name, kwargs, size, download)
    ds = source.dataset
    n = check_n(n_images, len(ds), f"torchvision {name} ({split})")
    labels = _torchvision_labels(ds, n)
    info = {"dataset_kind": "torchvision", "image_size": size}
    if options:
        info["dataset_options"] = dict(options)
    return GrayImages(name, split, source, labels, _examples_by_label(labels), size=size, info=info)
