"""The image sources: `samples` (crops of scikit-image's bundled photographs, offline), STL-10, `folder`
(your own images, ImageFolder layout) and `torchvision` (any torchvision image dataset by class name).

All give grayscale images (ITU-R 601 luma, rounded to uint8 once, so `batch` and `all_uint8` agree
exactly): 96x96 for samples and STL-10, `dataset.size` x `dataset.size` for folder and torchvision (see
`gray_square` for the rule). STL-10 is read lazily from its binary layout through `numpy.memmap`; folder
and torchvision images are decoded per batch (`GrayImages.lazy`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch.utils.data import Dataset

from .errors import ConfigError, RunError, first_line

IMAGE_SIZE = 96
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
# scikit-image photographs that load without a download; chelsea and horse first (the example images).
SAMPLE_PHOTOS = (
    "chelsea",
    "horse",
    "astronaut",
    "brick",
    "camera",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
    "clock",
    "colorwheel",
    "microaneurysms",
    "cell",
)
_SAMPLES_SEED = 20240607  # fixed: the crops never depend on the run's seed
# Folder and torchvision images are decoded from files per batch; a set whose decoded pixels fit in this
# many bytes is decoded once and kept (in memory, or on the device), a larger one is decoded per batch.
DECODE_ONCE_BYTES = 1 << 28
log = logging.getLogger("infomax")


def _gray_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) uint8 RGB -> (..., H, W) uint8 luma (0.299 R + 0.587 G + 0.114 B, rounded)."""
    gray = TF.rgb_to_grayscale(rgb.float())[..., 0, :, :]
    return gray.round_().clamp_(0, 255).to(torch.uint8)


class GrayImages(Dataset):
    """N grayscale size x size images with labels; positions 0..N-1, `image_ids` their index in the split.

    `source` is either a uint8 tensor (N, size, size) of gray images, an STL-10 `np.memmap`
    (>= N, 3, 96, 96) of RGB planes stored column-major, converted per batch, or a lazy source (an object
    with `gray(positions) -> uint8 (B, size, size)`, which decodes per batch: `lazy` is then true).

    `groups` names the independent unit each image belongs to (images cut from one source are one unit:
    the photograph for `samples`); None: every image is its own unit (its image id).
    `image_ids`: None for 0..N-1; `info`: extra keys for the run's summary.json (folder, torchvision).
    """

    def __init__(
        self,
        name: str,
        split: str,
        source: Any,
        labels: Sequence[str],
        example_ids: Sequence[int],
        groups: Sequence[str] | None = None,
        study_examples: Sequence[int] | None = None,
        size: int = IMAGE_SIZE,
        image_ids: Sequence[int] | None = None,
        info: dict | None = None,
    ):
        self.name, self.split = name, split
        self._x = source
        self.size = int(size)
        self.labels = list(labels)
        self.image_ids = (
            np.arange(len(self.labels), dtype=np.int64)
            if image_ids is None
            else np.asarray(image_ids, dtype=np.int64)
        )
        if len(self.image_ids) != len(self.labels):
            raise ValueError(f"{len(self.image_ids)} image ids for {len(self.labels)} images")
        self.info = dict(info or {})
        self.files: list[str] | None = (
            None  # folder: each image's path relative to dataset.root, in position order
        )
        self.example_ids = [int(i) for i in example_ids]  # positions whose pictures are drawn
        # positions of the study's example images (its cat and horse); by default the first two examples
        self.study_examples = [
            int(i) for i in (self.example_ids[:2] if study_examples is None else study_examples)
        ]
        if groups is not None and len(groups) != len(self.labels):
            raise ValueError(f"{len(groups)} groups for {len(self.labels)} images")
        self.groups = (
            [str(g) for g in groups] if groups is not None else [str(i) for i in self.image_ids]
        )

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
        sub = GrayImages(
            self.name,
            self.split,
            source,
            [self.labels[p] for p in pos],
            [where[p] for p in self.example_ids if p in where],
            groups=[self.groups[p] for p in pos],
            study_examples=[where[p] for p in self.study_examples if p in where],
            size=self.size,
            image_ids=self.image_ids[pos],
            info=self.info,
        )
        if self.files is not None:
            sub.files = [self.files[p] for p in pos]
        return sub

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lazy(self) -> bool:
        """Images decoded from files per batch (folder, torchvision): costly to read all at once."""
        return hasattr(self._x, "gray")

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
        if self.lazy:
            return self._x.gray(idx)
        rgb = torch.from_numpy(np.ascontiguousarray(self._x[idx])).transpose(
            -1, -2
        )  # planes are column-major
        return _gray_uint8(rgb)

    def batch(self, idx: Any) -> torch.Tensor:
        """Images at positions `idx` as float32 (B, 1, size, size) in [0, 1]."""
        return self._uint8(idx).unsqueeze(1).float().div_(255.0)

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


class _SubsetSource:
    """Some positions of a set whose images are read per batch (the `gray` protocol of lazy sources)."""

    def __init__(self, parent: GrayImages, positions: Sequence[int]):
        self.parent, self.positions = parent, np.asarray(positions, dtype=np.int64)

    def gray(self, idx: np.ndarray) -> torch.Tensor:
        return self.parent._uint8(self.positions[np.asarray(idx, dtype=np.int64)])


def load_datasets(cfg: Any, holdout: bool = False) -> tuple[GrayImages, GrayImages]:
    """(the images trained on, the images measured): one set for both, as the study does, or with
    `holdout` the measured images are never trained on: STL-10's or a torchvision dataset's other split
    (test; train when training on test), or, for the embedded set and a folder, the images whose label is
    in `dataset.heldout` (photographs of the embedded set, subfolders of a folder)."""
    data = load_dataset(cfg)
    if not holdout:
        return data, data
    kind = getattr(cfg, "kind", None) or cfg.name
    split = str(getattr(cfg.split, "value", cfg.split))
    other = "train" if split == "test" else "test"
    if kind == "stl10":
        return data, _stl10(Path(cfg.root), other, bool(cfg.download), cfg.n_images)
    if kind == "torchvision":
        options = getattr(cfg, "options", None) or {}
        return data, _torchvision(
            str(cfg.name),
            Path(cfg.root),
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


def load_dataset(cfg: Any) -> GrayImages:
    """The dataset `cfg` names (a DatasetConfig-like object), cut to its first `n_images`. Its kind is
    `cfg.kind` (set by each preset) or, for configs without one, `cfg.name`."""
    split = getattr(cfg.split, "value", cfg.split)
    kind = getattr(cfg, "kind", None) or cfg.name
    if kind == "samples":
        images, labels, examples = _samples(int(getattr(cfg, "per_photo", 16)))
        n = _check_n(cfg.n_images, len(labels), "samples")
        # the crops of one photograph are one unit: they overlap and share its content
        return GrayImages(
            "samples",
            "train",
            images[:n],
            labels[:n],
            [i for i in examples if i < n],
            groups=labels[:n],
        )
    if kind == "stl10":
        return _stl10(Path(cfg.root), str(split), bool(cfg.download), cfg.n_images)
    size = int(getattr(cfg, "size", IMAGE_SIZE))
    if kind == "folder":
        return _folder(
            Path(cfg.root), size, cfg.n_images, bool(getattr(cfg, "skip_unreadable", False))
        )
    if kind == "torchvision":
        options = getattr(cfg, "options", None) or {}
        return _torchvision(
            str(cfg.name),
            Path(cfg.root),
            str(split),
            bool(cfg.download),
            size,
            cfg.n_images,
            options,
        )
    raise ConfigError(f"dataset={kind} is unknown: use one of samples, stl10, folder, torchvision.")


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
            [
                TF.resize(img[:, y : y + s, x : x + s], [IMAGE_SIZE, IMAGE_SIZE], antialias=True)[0]
                for y, x, s in boxes
            ]
        )
    order = [(p, k) for k in range(per_photo) for p in range(len(SAMPLE_PHOTOS))]
    images = (
        torch.stack([crops[p][k] for p, k in order])
        .mul_(255)
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
    )
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
    study = [
        labels.index(c) for c in ("cat", "horse") if c in labels
    ]  # the study's example images: a cat, a horse
    return GrayImages("stl10", split, x, labels, examples, study_examples=study)


def _download(root: Path, folder: Path) -> None:
    """Fetch the whole archive (all splits) with torchvision; split='train' keeps what it loads small."""
    from torchvision.datasets import STL10

    try:
        STL10(str(root), split="train", download=True)
    except Exception as e:  # offline, disk full, bad checksum
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunError(
            f"could not download STL-10 to {folder} ({msg}); use dataset=samples to run offline."
        ) from e


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


# --------------------------------------------------------------------- your own images, torchvision


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


def _folder(root: Path, size: int, n_images: int | None, skip_unreadable: bool) -> GrayImages:
    """Your own images under `root`, ImageFolder layout; image ids are positions in the sorted listing."""
    if not root.exists():
        raise ConfigError(
            f"dataset.root={root} does not exist: point dataset.root at your folder of images (dataset=folder dataset.root=DIR)."
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
        keep = list(range(_check_n(n_images, len(files), f"dataset.root={root}")))
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
                f"dataset.n_images={n_images} is larger than the {len(keep)} readable images of dataset.root={root}: use "
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
                    f"torchvision {self.name} could not be read from {root} ({first_line(e)}): set dataset.download=true "
                    f"to download it there, or point dataset.root at it."
                ) from e
            raise RunError(
                f"could not download or read torchvision {self.name} in {root} ({first_line(e)}); use dataset=samples to run offline."
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


def _torchvision(
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
    n = _check_n(n_images, len(ds), f"torchvision {name} ({split})")
    labels = _torchvision_labels(ds, n)
    info = {"dataset_kind": "torchvision", "image_size": size}
    if options:
        info["dataset_options"] = dict(options)
    return GrayImages(name, split, source, labels, _examples_by_label(labels), size=size, info=info)
