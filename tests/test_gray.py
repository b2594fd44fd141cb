"""The grayscale and size rule (`sources.gray.gray_square`) every folder and torchvision image goes through."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from images_on_disk import LUMA, rgb_noise, save
from PIL import Image

from infomax_cli.sources.gray import gray_square

# ------------------------------------------------------------------------- the grayscale and size rule


def test_known_rgb_pixels_after_the_centre_crop():
    """Short side already `size`: no resampling, so every pixel is the luma of the pixel the centre crop
    keeps (columns 5..36 of 42), rounded; off by one column, random pixels would differ by far more."""
    rgb = rgb_noise(32, 42)
    got = gray_square(Image.fromarray(rgb), 32).numpy().astype(float)
    expected = np.round(rgb[:, 5:37].astype(float) @ LUMA)
    assert got.shape == (32, 32)
    assert np.abs(got - expected).max() <= 1 and (got == expected).mean() > 0.99
    shifted = np.round(rgb[:, 4:36].astype(float) @ LUMA)
    assert np.abs(got - shifted).mean() > 20
    # one known pixel, exactly: (200, 100, 50) -> 0.299*200 + 0.587*100 + 0.114*50 = 124.2 -> 124
    solid = np.broadcast_to(np.array([200, 100, 50], np.uint8), (57, 91, 3)).copy()
    assert gray_square(Image.fromarray(solid), 24).unique().tolist() == [124]


@pytest.mark.parametrize("h,w,size", [(100, 150, 40), (150, 100, 40), (37, 53, 96), (301, 207, 64)])
def test_resize_short_side_then_centre_crop_matches_pillow(h, w, size):
    """The rule against an independent computation: float luma, Pillow's bilinear resize of the short side
    to `size` (downscaling and upscaling), then the centre size x size; equal up to rounding (1 level)."""
    rgb = rgb_noise(h, w, seed=h + w)
    got = gray_square(Image.fromarray(rgb), size).numpy().astype(float)
    nh, nw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    luma = Image.fromarray((rgb.astype(np.float64) @ LUMA).astype(np.float32), "F")
    resized = np.asarray(luma.resize((nw, nh), Image.BILINEAR))
    top, left = int(round((nh - size) / 2)), int(round((nw - size) / 2))
    expected = np.clip(np.round(resized[top : top + size, left : left + size]), 0, 255)
    assert got.shape == (size, size)
    assert np.abs(got - expected).max() <= 1 and (got == expected).mean() > 0.95


@pytest.mark.parametrize(
    "name,array,mode,expected",
    [
        ("gray.png", np.full((20, 30), 77, np.uint8), None, 77),
        (
            "rgba.png",
            np.broadcast_to(np.array([200, 100, 50, 0], np.uint8), (20, 30, 4)).copy(),
            None,
            124,
        ),  # alpha dropped
        (
            "sixteen.png",
            np.full((20, 30), 77 * 257, np.uint16),
            None,
            77,
        ),  # 16 bits scaled by 255/65535
        ("float.tif", np.full((20, 30), 0.25, np.float32), None, 64),  # [0, 1] times 255: 63.75
        (
            "rgb.bmp",
            np.broadcast_to(np.array([200, 100, 50], np.uint8), (20, 30, 3)).copy(),
            None,
            124,
        ),
        (
            "rgb.tiff",
            np.broadcast_to(np.array([10, 250, 90], np.uint8), (20, 30, 3)).copy(),
            None,
            160,
        ),  # 159.995
        ("gray.jpg", np.full((24, 32), 140, np.uint8), None, 140),
        ("bits.png", np.ones((20, 30), bool), None, 255),
    ],
)
def test_any_mode_and_format(tmp_path, name, array, mode, expected):
    path = save(tmp_path / name, array, mode)
    with Image.open(path) as image:
        assert gray_square(image, 16).unique().tolist() == [expected], image.mode


def test_palette_image(tmp_path):
    image = Image.new("P", (30, 20))
    image.putpalette([200, 100, 50] + [0] * 765)
    image.save(tmp_path / "p.gif")
    with Image.open(tmp_path / "p.gif") as im:
        assert gray_square(im, 16).unique().tolist() == [124]


def test_exif_orientation_is_applied(tmp_path):
    """40 wide x 20 high, black left half, white right, stored with EXIF orientation 6 (shown rotated 90
    degrees clockwise: 20 wide x 40 high, black on top). The centre 20x20 of what is shown: black top half."""
    a = np.zeros((20, 40), np.uint8)
    a[:, 20:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "rotated.png", exif=exif)
    with Image.open(tmp_path / "rotated.png") as image:
        g = gray_square(image, 20).numpy()
    assert (g[:10] == 0).all() and (g[10:] == 255).all()


# ------------------------------------------------------------------------------------ dataset=folder


@pytest.mark.parametrize("h,w,size", [(40, 60, 32), (61, 37, 24), (96, 96, 96), (300, 200, 96)])
def test_pixel_operations_equal_torchvisions_to_the_bit(h, w, size):
    """sources.pixels does without torchvision (slow to import) what torchvision does, bit for bit."""
    import torchvision.transforms.functional as TF

    from infomax_cli.sources import pixels

    g = torch.Generator().manual_seed(h * w)
    rgb = torch.rand(3, h, w, generator=g) * 255
    assert torch.equal(pixels.luma(rgb), TF.rgb_to_grayscale(rgb)[0])
    gray = pixels.luma(rgb)[None]
    want = TF.resize(gray, [size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    got = pixels.resize(gray, *pixels.short_side_size(h, w, size))
    assert torch.equal(got, want)
    assert torch.equal(pixels.centre_crop(got, size), TF.center_crop(want, [size, size]))
    square = TF.resize(rgb[:, :50, :50], [96, 96], antialias=True)
    assert torch.equal(pixels.resize(rgb[:, :50, :50], 96, 96), square)
