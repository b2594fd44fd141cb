"""The embedded offline set (`dataset=samples`): 20 photographs bundled with scikit-image (no download),
cut into deterministic 96x96 grayscale crops, the first crop of each the whole photograph. The crops
of one photograph are one independent unit (`groups`); the cat (`chelsea`) and the `horse` are the
study's example images."""

from __future__ import annotations

import functools
import zlib

import numpy as np
import torch
import torchvision.transforms.functional as TF

from .gray import IMAGE_SIZE, Catalog, GrayImages, check_n

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


def load_samples(per_photo: int, n_images: int | None) -> GrayImages:
    """The first `n_images` crops (all: None), `per_photo` per photograph, crop-major."""
    images, labels, examples = _samples(per_photo)
    n = check_n(n_images, len(labels), "samples")
    # the crops of one photograph are one unit: they overlap and share its content
    catalog = Catalog(labels[:n], [i for i in examples if i < n], groups=labels[:n])
    return GrayImages("samples", "train", images[:n], catalog)


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
