"""Any torchvision image dataset by class name (`dataset=torchvision dataset.name=CIFAR10`), its images
brought to gray `dataset.size` squares by `gray.gray_square` and converted per batch."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..choices import Split
from ..config import DatasetConfig, expand_path
from ..errors import ConfigError, RunError, first_line
from .gray import (
    Catalog,
    GrayImages,
    LazySource,
    check_n,
    download_failed,
    examples_by_label,
    gray_square,
)
from .pixels import luma

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


class _TorchvisionSource(LazySource):
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
            raise download_failed(f"torchvision {self.name}", root, e) from e

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
        gray = luma(t[:3].float()) if t.shape[0] >= 3 else t[0].float()
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


def load_torchvision(cfg: DatasetConfig, split: Split) -> GrayImages:
    """Any torchvision image dataset, `cfg.name` its class: the split becomes its `train` flag or its
    `split`, `dataset.root` its `root`, `dataset.download` its `download`; `dataset.options` are passed as
    they are (and win)."""
    cls = torchvision_class(cfg.name)
    name = cls.__name__
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    if "root" in params:
        kwargs["root"] = expand_path(cfg.root)
    if "download" in params:
        kwargs["download"] = cfg.download
    if "train" in params:
        if split not in (Split.train, Split.test):
            raise ConfigError(
                f"dataset.split={split} is not a split of torchvision {name}: use train or test."
            )
        kwargs["train"] = split == Split.train
    elif "split" in params:
        kwargs["split"] = str(split)
    elif split != Split.train:
        raise ConfigError(
            f"dataset.split={split}: torchvision {name} has no splits: leave dataset.split at train."
        )
    kwargs.update(cfg.options)
    source = _TorchvisionSource(name, kwargs, cfg.size, cfg.download)
    ds = source.dataset
    n = check_n(cfg.n_images, len(ds), f"torchvision {name} ({split})", cfg.max_images)
    labels = _torchvision_labels(ds, n)
    info = {"dataset_kind": "torchvision", "image_size": cfg.size}
    if cfg.options:
        info["dataset_options"] = dict(cfg.options)
    catalog = Catalog(labels, examples_by_label(labels))
    return GrayImages(name, str(split), source, catalog, cfg.size, info)
