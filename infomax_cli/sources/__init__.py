"""The image sources: `samples` (crops of scikit-image's bundled photographs, offline), STL-10, `folder`
(your own images, ImageFolder layout) and `torchvision` (any torchvision image dataset by class name).

All give grayscale images (ITU-R 601 luma, rounded to uint8 once, so `batch` and `all_uint8` agree
exactly): 96x96 for samples and STL-10, `dataset.size` x `dataset.size` for folder and torchvision (see
`gray_square` for the rule). STL-10 is read lazily from its binary layout through `numpy.memmap`; folder
and torchvision images are decoded per batch (`GrayImages.lazy`).
"""

from __future__ import annotations

from pathlib import Path

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


def load_datasets(cfg: DatasetConfig, holdout: bool = False) -> tuple[GrayImages, GrayImages]:
    """(the images trained on, the images measured): one set for both, as the study does, or with
    `holdout` the measured images are never trained on: STL-10's or a torchvision dataset's other split
    (test; train when training on test), or, for the embedded set and a folder, the images whose label is
    in `dataset.heldout` (photographs of the embedded set, subfolders of a folder)."""
    data = load_dataset(cfg)
    if not holdout:
        return data, data
    kind = getattr(cfg, "kind", None) or cfg.name
    split = str(cfg.split)
    other = "train" if split == "test" else "test"
    if kind == "stl10":
        return data, load_stl10(_root(cfg), other, bool(cfg.download), cfg.n_images)
    if kind == "torchvision":
        options = getattr(cfg, "options", None) or {}
        return data, load_torchvision(
            str(cfg.name),
            _root(cfg),
            other,
            bool(cfg.download),
            data.size,
            cfg.n_images,
            options,
        )
    if kind not in ("samples", "folder"):
        raise ConfigError(
            f"train.holdout=true is not available for dataset={kind}: use train.holdout=false."
        )
    what = (
        "photographs of the embedded set"
        if kind == "samples"
        else "labels (subfolders) of dataset.root"
    )
    choices = SAMPLE_PHOTOS if kind == "samples" else sorted(set(data.labels))
    held = [str(p) for p in getattr(cfg, "heldout", [])]
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


def load_dataset(cfg: DatasetConfig) -> GrayImages:
    """The dataset `cfg` names (a DatasetConfig-like object), cut to its first `n_images`. Its kind is
    `cfg.kind` (set by each preset) or, for configs without one, `cfg.name`."""
    split = str(cfg.split)
    kind = getattr(cfg, "kind", None) or cfg.name
    if kind == "samples":
        return load_samples(int(getattr(cfg, "per_photo", 16)), cfg.n_images)
    if kind == "stl10":
        return load_stl10(_root(cfg), str(split), bool(cfg.download), cfg.n_images)
    size = int(getattr(cfg, "size", IMAGE_SIZE))
    if kind == "folder":
        return load_folder(
            _root(cfg), size, cfg.n_images, bool(getattr(cfg, "skip_unreadable", False))
        )
    if kind == "torchvision":
        options = getattr(cfg, "options", None) or {}
        return load_torchvision(
            str(cfg.name),
            _root(cfg),
            str(split),
            bool(cfg.download),
            size,
            cfg.n_images,
            options,
        )
    raise ConfigError(f"dataset={kind} is unknown: use one of samples, stl10, folder, torchvision.")
