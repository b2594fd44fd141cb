"""The image sources: `samples` (crops of scikit-image's bundled photographs, offline), STL-10, `folder`
(your own images, ImageFolder layout) and `torchvision` (any torchvision image dataset by class name).

All give grayscale images (ITU-R 601 luma, rounded to uint8 once, so `batch` and `all_uint8` agree
exactly): 96x96 for samples and STL-10, `dataset.size` x `dataset.size` for folder and torchvision (see
`gray.gray_square` for the rule). STL-10 is read lazily from its binary layout through `numpy.memmap`;
folder and torchvision images are decoded per batch (`GrayImages.lazy`).

One reader per `dataset.kind` (`READERS`), each a function of the typed config and a split; held-out
images come from the same reader: the other split where the source has splits, else the images of the
labels `dataset.heldout` names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..choices import DatasetKind, Split
from ..config import DatasetConfig, expand_path
from ..errors import ConfigError
from .folder import load_folder
from .gray import DECODE_ONCE_BYTES, IMAGE_SIZE, GrayImages
from .samples import SAMPLE_PHOTOS, load_samples
from .stl10 import load_stl10
from .torchvision_sets import load_torchvision

__all__ = ["DECODE_ONCE_BYTES", "IMAGE_SIZE", "GrayImages", "load_dataset", "load_datasets"]


def _root(cfg: DatasetConfig) -> Path:
    """`dataset.root` with `~` and environment variables expanded, as a shell would."""
    return Path(expand_path(cfg.root))


@dataclass(frozen=True)
class Reader:
    """How one kind of dataset is read: `read(cfg, split)`, and whether it holds images out by its
    other split (else by the labels of `dataset.heldout`)."""

    read: Callable[[DatasetConfig, Split], GrayImages]
    has_splits: bool
    heldout_what: str = ""  # what `dataset.heldout` names, for a source without splits


READERS: dict[DatasetKind, Reader] = {
    DatasetKind.samples: Reader(
        lambda cfg, split: load_samples(cfg.per_photo, cfg.n_images),
        has_splits=False,
        heldout_what="photographs of the embedded set",
    ),
    DatasetKind.stl10: Reader(
        lambda cfg, split: load_stl10(_root(cfg), split, cfg.download, cfg.n_images),
        has_splits=True,
    ),
    DatasetKind.folder: Reader(
        lambda cfg, split: load_folder(
            _root(cfg), cfg.size, cfg.n_images, cfg.skip_unreadable, cfg.max_images
        ),
        has_splits=False,
        heldout_what="labels (subfolders) of dataset.root",
    ),
    DatasetKind.torchvision: Reader(
        lambda cfg, split: load_torchvision(cfg, split),
        has_splits=True,
    ),
}


def load_dataset(cfg: DatasetConfig) -> GrayImages:
    """The dataset `cfg` names, cut to its first `n_images`."""
    return READERS[cfg.kind].read(cfg, cfg.split)


def load_datasets(cfg: DatasetConfig, holdout: bool = False) -> tuple[GrayImages, GrayImages]:
    """(the images trained on, the images measured): one set for both, as the study does, or with
    `holdout` the measured images are never trained on: STL-10's or a torchvision dataset's other split
    (test; train when training on test), or, for the embedded set and a folder, the images whose label is
    in `dataset.heldout` (photographs of the embedded set, subfolders of a folder)."""
    reader = READERS[cfg.kind]
    data = reader.read(cfg, cfg.split)
    if not holdout:
        return data, data
    if reader.has_splits:
        other = Split.train if cfg.split == Split.test else Split.test
        return data, reader.read(cfg, other)
    return _held_out_labels(cfg, data, reader.heldout_what)


def _held_out_labels(
    cfg: DatasetConfig, data: GrayImages, what: str
) -> tuple[GrayImages, GrayImages]:
    """(the images whose label is not in `dataset.heldout`, those whose label is)."""
    choices = SAMPLE_PHOTOS if cfg.kind == DatasetKind.samples else sorted(set(data.labels))
    held = [str(p) for p in cfg.heldout]
    unknown = sorted(set(held) - set(choices))
    if not held or unknown:
        raise ConfigError(
            f"train.holdout=true needs dataset.heldout to name {what} (got {held or 'none'}"
            f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}): choose among {', '.join(choices)}."
        )
    measured = [i for i, label in enumerate(data.labels) if label in held]
    trained = [i for i, label in enumerate(data.labels) if label not in held]
    if len(trained) < 2 or not measured:
        raise ConfigError(
            f"train.holdout=true leaves {len(trained)} training and {len(measured)} measured images of the first "
            f"{len(data)}: raise dataset.n_images (or null) or change dataset.heldout."
        )
    return data.subset(trained), data.subset(measured)
