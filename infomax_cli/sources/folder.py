"""Your own images: every image file under a folder (ImageFolder layout: the subfolder of the root an
image lies in is its label), listed in a fixed order, brought to gray `dataset.size` squares by
`gray.gray_square` and decoded per batch (or once, when the set fits `gray.DECODE_ONCE_BYTES`)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, RunError, first_line
from .gray import (
    DECODE_ONCE_BYTES,
    Catalog,
    GrayImages,
    LazySource,
    check_n,
    examples_by_label,
    gray_square,
)

log = logging.getLogger("infomax")


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


class _FolderSource(LazySource):
    """Images of a folder decoded per batch (see `gray_square`); pickles as its file list."""

    def __init__(self, root: Path, paths: Sequence[str], size: int):
        self.root, self.paths, self.size = str(root), list(paths), int(size)

    def decode(self, rel: str) -> torch.Tensor:
        from PIL import Image

        path = os.path.join(self.root, rel)
        try:
            with Image.open(path) as image:
                return gray_square(image, self.size)
        # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        except Exception as e:
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


def load_folder(
    root: Path, size: int, n_images: int | None, skip_unreadable: bool, most: int | None = None
) -> GrayImages:
    """Your own images under `root`, ImageFolder layout; image ids are positions in the sorted listing;
    at most `most` (dataset.max_images) of them."""
    files = _listed(root)
    if skip_unreadable:
        # n_images readable files (null: all), no more than dataset.max_images
        check_n(None, min(n_images or len(files), len(files)), f"dataset.root={root}", most)
        keep, source, skipped = _readable(root, files, size, n_images)
    else:  # nothing decoded here: the first batch that meets a bad file stops the run
        n = check_n(n_images, len(files), f"dataset.root={root}", most)
        keep, skipped = list(range(n)), []
        source = _FolderSource(root, files[: len(keep)], size)
    info = {
        "dataset_kind": "folder",
        "dataset_root": str(root.resolve()),
        "image_size": size,
        "skipped_files": skipped,
    }
    labels = [folder_label(files[i]) for i in keep]
    paths = [files[i] for i in keep]
    catalog = Catalog(labels, examples_by_label(labels), image_ids=keep, files=paths)
    return GrayImages("folder", "all", source, catalog, size, info)


def _listed(root: Path) -> list[str]:
    """The image files under `root` (ConfigError, one line, when it is missing, a file or empty)."""
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
    return files


def _readable(
    root: Path, files: list[str], size: int, n_images: int | None
) -> tuple[list[int], Any, list[str]]:
    """dataset.skip_unreadable: every file decoded once, in order, until `n_images` readable ones; the
    decoded pixels kept while they fit DECODE_ONCE_BYTES (else read again per batch). Returns (the
    positions kept, the source, the files skipped)."""
    reader = _FolderSource(root, files, size)
    want = len(files) if n_images is None else n_images
    keep, decoded, skipped = [], [], []
    for i, rel in enumerate(files):
        if len(keep) == want:
            break
        try:
            image = reader.decode(rel)
        except UnreadableImage as e:
            skipped.append(rel)
            if len(skipped) <= 20:  # a folder of junk would flood the terminal
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
            f"dataset.root={root}: use at most {len(keep)}, or null for all."
        )
    kept = [files[i] for i in keep]
    source = torch.stack(decoded) if decoded is not None else _FolderSource(root, kept, size)
    return keep, source, skipped


# torchvision.datasets classes that are not image datasets one can name here
