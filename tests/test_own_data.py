"""Your own images (dataset=folder), any torchvision dataset (dataset=torchvision), at any dataset.size.

Every test writes its own image files; torchvision is exercised offline with FakeData and stand-in classes.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_cfg, infomax
from PIL import Image

from infomax_cli import config, own_images, train
from infomax_cli.config import DatasetConfig
from infomax_cli.data import load_dataset
from infomax_cli.errors import ConfigError, RunError
from infomax_cli.images import GrayImages
from infomax_cli.own_images import gray_square, list_images

LUMA = np.array([0.299, 0.587, 0.114])


def folder_cfg(root, **kw) -> DatasetConfig:
    return DatasetConfig(name="folder", kind="folder", root=str(root), **kw)


def save(path: Path, array: np.ndarray, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path, **kw) if mode else Image.fromarray(array).save(
        path, **kw
    )
    return path


def rgb_noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


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


@pytest.fixture
def photos(tmp_path):
    """An ImageFolder layout written out of order, with things that are not images, and hidden files."""
    root = tmp_path / "photos"
    for rel, seed in [
        ("dog/b.png", 1),
        ("cat/z.jpg", 2),
        ("top.png", 3),
        ("cat/a.png", 4),
        ("dog/deep/c.tif", 5),
        ("bird/x.bmp", 6),
    ]:
        save(root / rel, rgb_noise(40 + seed, 60, seed))
    (root / "notes.txt").write_text("not an image")
    (root / "cat" / "._a.png").write_bytes(b"AppleDouble junk")  # hidden: left out
    (root / ".thumbs").mkdir()
    save(root / ".thumbs" / "t.png", rgb_noise(10, 10))
    return root


ORDER = ["bird/x.bmp", "cat/a.png", "cat/z.jpg", "dog/b.png", "dog/deep/c.tif", "top.png"]


def test_folder_listing_is_sorted_labelled_and_stable(photos):
    assert list_images(photos) == ORDER
    ds = load_dataset(folder_cfg(photos, size=32))
    assert isinstance(ds, GrayImages) and ds.name == "folder" and len(ds) == 6 and ds.size == 32
    assert ds.files == ORDER and ds.image_ids.tolist() == list(range(6))
    assert ds.labels == [
        "bird",
        "cat",
        "cat",
        "dog",
        "dog",
        "",
    ]  # ImageFolder: the subfolder of root
    assert ds.example_ids == [5, 0, 1, 3]  # the first image of each label, labels sorted ('' first)
    assert ds.groups == [str(i) for i in range(6)]  # each image its own unit
    assert ds.info == {
        "dataset_kind": "folder",
        "dataset_root": str(photos.resolve()),
        "image_size": 32,
        "skipped_files": [],
    }
    b = ds.batch([1, 5])
    assert b.dtype == torch.float32 and b.shape == (2, 1, 32, 32)
    with Image.open(photos / "cat/a.png") as im:
        torch.testing.assert_close(b[0, 0], gray_square(im, 32).float() / 255)
    again = load_dataset(folder_cfg(photos, size=32))
    torch.testing.assert_close(again.all_uint8(), ds.all_uint8(), rtol=0, atol=0)
    first3 = load_dataset(folder_cfg(photos, size=32, n_images=3))
    assert first3.files == ORDER[:3] and first3.labels == ["bird", "cat", "cat"]
    with pytest.raises(ConfigError, match=r"dataset\.n_images=7 .*\(6 images\)"):
        load_dataset(folder_cfg(photos, n_images=7))


def test_folder_decodes_lazily_and_pickles_small(photos, monkeypatch):
    opened = []
    real_open = Image.open
    monkeypatch.setattr(
        Image, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k)
    )
    ds = load_dataset(folder_cfg(photos))
    assert ds.lazy and opened == []  # listing decodes nothing
    ds.batch([3])
    assert opened == [str(photos / "dog/b.png")]
    blob = pickle.dumps(ds)
    assert len(blob) < 4000
    torch.testing.assert_close(pickle.loads(blob).batch([0, 4]), ds.batch([0, 4]))


def test_a_large_folder_is_decoded_per_batch(photos, monkeypatch):
    """Above the decode-once budget the loader never reads the whole set (memory stays bounded)."""
    ds = load_dataset(folder_cfg(photos, size=32))
    monkeypatch.setattr(train, "DECODE_ONCE_BYTES", 5 * 32 * 32)  # 6 images do not fit
    monkeypatch.setattr(GrayImages, "all_uint8", lambda self: pytest.fail("decoded the whole set"))
    images = train.DeviceImages(ds, torch.device("cpu"))
    torch.testing.assert_close(images(torch.tensor([2, 0])), ds.batch([2, 0]))


def test_folder_unreadable_file_stops_with_its_name(photos):
    (photos / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ds = load_dataset(folder_cfg(photos))  # listing is fine: nothing decoded yet
    assert ds.files[2] == "cat/broken.png"
    ds.batch([0, 1, 3])
    with pytest.raises(RunError) as e:
        ds.batch([1, 2])
    msg = str(e.value)
    assert (
        str(photos / "cat" / "broken.png") in msg
        and "dataset.skip_unreadable=true" in msg
        and "\n" not in msg
    )


def test_folder_skip_unreadable_lists_them_and_keeps_ids(photos):
    (photos / "cat" / "broken.png").write_bytes(b"garbage")
    png = (photos / "cat" / "a.png").read_bytes()
    (photos / "dog" / "cut.png").write_bytes(png[: len(png) // 2])  # a valid header, truncated data
    files = list_images(photos)
    ds = load_dataset(folder_cfg(photos, size=24, skip_unreadable=True))
    assert ds.info["skipped_files"] == ["cat/broken.png", "dog/cut.png"]
    assert ds.files == ORDER and ds.image_ids.tolist() == [
        files.index(f) for f in ORDER
    ]  # ids: listing positions
    assert not ds.lazy and ds.all_uint8().shape == (6, 24, 24)  # decoded once while checking, kept
    small = load_dataset(
        folder_cfg(photos, size=24, skip_unreadable=True, n_images=3)
    )  # decodes no further
    assert small.files == ["bird/x.bmp", "cat/a.png", "cat/z.jpg"] and small.info[
        "skipped_files"
    ] == ["cat/broken.png"]
    with pytest.raises(
        ConfigError, match=r"dataset\.n_images=7 is larger than the 6 readable images"
    ):
        load_dataset(folder_cfg(photos, skip_unreadable=True, n_images=7))


def test_folder_skip_unreadable_above_the_budget_stays_lazy(photos, monkeypatch):
    monkeypatch.setattr(own_images, "DECODE_ONCE_BYTES", 2 * 16 * 16)
    ds = load_dataset(folder_cfg(photos, size=16, skip_unreadable=True))
    assert ds.lazy and ds.files == ORDER


def test_folder_without_root_says_where_to_point_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(["dataset=folder"])
    with pytest.raises(
        ConfigError, match=r"dataset\.root=data does not exist: point dataset\.root at your folder"
    ):
        load_dataset(cfg.dataset)


def test_folder_missing_empty_or_unreadable_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as e:
        load_dataset(folder_cfg(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(e.value) and "dataset.root" in str(e.value)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="holds no image file"):
        load_dataset(folder_cfg(tmp_path / "empty"))
    (tmp_path / "afile.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        load_dataset(folder_cfg(tmp_path / "afile.png"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="none of its 1 image files could be decoded"):
        load_dataset(folder_cfg(tmp_path / "bad", skip_unreadable=True))


# ------------------------------------------------------------------------------- dataset=torchvision


def fake_cfg(n=10, image_size=(3, 40, 30), size=32, **kw) -> DatasetConfig:
    options = {"size": n, "image_size": list(image_size), "num_classes": 3}
    return DatasetConfig(name="FakeData", kind="torchvision", size=size, options=options, **kw)


def test_torchvision_fakedata_through_the_rule():
    import torchvision.datasets

    ds = load_dataset(fake_cfg())
    assert (
        ds.name == "FakeData"
        and ds.split == "train"
        and len(ds) == 10
        and ds.lazy
        and ds.size == 32
    )
    fake = torchvision.datasets.FakeData(size=10, image_size=(3, 40, 30), num_classes=3)
    assert ds.labels == [str(fake[i][1]) for i in range(10)]
    assert ds.example_ids == [ds.labels.index(label) for label in sorted(set(ds.labels))]
    torch.testing.assert_close(ds.batch([4])[0, 0], gray_square(fake[4][0], 32).float() / 255)
    assert ds.info == {
        "dataset_kind": "torchvision",
        "image_size": 32,
        "dataset_options": {"size": 10, "image_size": [3, 40, 30], "num_classes": 3},
    }
    clone = pickle.loads(pickle.dumps(ds))  # rebuilt from its class name and arguments
    torch.testing.assert_close(clone.all_uint8(), ds.all_uint8(), rtol=0, atol=0)
    assert len(load_dataset(fake_cfg(n_images=4))) == 4
    assert (
        load_dataset(DatasetConfig(name="fakedata", kind="torchvision", options={"size": 3})).name
        == "FakeData"
    )


def test_torchvision_unknown_name_suggests_valid_ones():
    with pytest.raises(ConfigError) as e:
        load_dataset(DatasetConfig(name="CIFAR-10", kind="torchvision"))
    msg = str(e.value)
    assert (
        "dataset.name=CIFAR-10" in msg
        and "did you mean CIFAR10?" in msg
        and "MNIST" in msg
        and "\n" not in msg
    )
    with pytest.raises(ConfigError, match="not a torchvision dataset: .*CIFAR10, CIFAR100, MNIST"):
        load_dataset(DatasetConfig(name="Zebra", kind="torchvision"))
    with pytest.raises(ConfigError):
        load_dataset(DatasetConfig(name="VisionDataset", kind="torchvision"))


@pytest.fixture
def standins(monkeypatch):
    """Two stand-in torchvision classes recording their arguments: one with a train flag, one with a split."""
    import torchvision.datasets as tvd

    calls = []

    class Flagged(tvd.VisionDataset):
        classes = ["zero", "one"]

        def __init__(self, root, train=True, transform=None, download=False):
            calls.append({"root": root, "train": train, "download": download})
            if not download and root.endswith("missing"):
                raise RuntimeError(
                    "Dataset not found or corrupted. You can use download=True to download it"
                )
            super().__init__(root)
            self.targets = [1, 0, 1]

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.full((1, 8, 12), i / 2), self.targets[i]  # a float tensor image

    class Splitted(tvd.VisionDataset):
        def __init__(self, root, split="train", download=False, flavour="plain"):
            calls.append({"root": root, "split": split, "download": download, "flavour": flavour})
            super().__init__(root)

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.full((9, 9, 3), 200, np.uint8), "label"

    for cls in (Flagged, Splitted):
        monkeypatch.setattr(tvd, cls.__name__, cls, raising=False)
    monkeypatch.setattr(tvd, "__all__", [*tvd.__all__, "Flagged", "Splitted"])
    return calls


def test_torchvision_split_and_download_map_to_the_class_arguments(standins, tmp_path):
    ds = load_dataset(
        DatasetConfig(
            name="Flagged", kind="torchvision", root=str(tmp_path), split=config.Split.test, size=16
        )
    )
    assert standins[-1] == {"root": str(tmp_path), "train": False, "download": False}
    assert ds.labels == ["one", "zero", "one"] and ds.split == "test"  # class names from `classes`
    assert ds.all_uint8()[:, 0, 0].tolist() == [
        0,
        128,
        255,
    ]  # tensor images [0, 0.5, 1] -> 0, 127.5, 255
    with pytest.raises(
        ConfigError,
        match="dataset.split=unlabeled is not a split of torchvision Flagged: use train or test",
    ):
        load_dataset(
            DatasetConfig(name="Flagged", kind="torchvision", split=config.Split.unlabeled)
        )
    ds = load_dataset(
        DatasetConfig(
            name="Splitted",
            kind="torchvision",
            root="r",
            split=config.Split.test,
            download=True,
            options={"flavour": "x"},
        )
    )
    assert standins[-1] == {"root": "r", "split": "test", "download": True, "flavour": "x"}
    assert ds.labels == ["label", "label"] and ds.all_uint8().unique().tolist() == [
        round(200 * 0.299 + 200 * 0.587 + 200 * 0.114)
    ]
    with pytest.raises(
        ConfigError, match=r"torchvision Splitted\(.*bogus.*\) failed: .*dataset\.options"
    ):
        load_dataset(DatasetConfig(name="Splitted", kind="torchvision", options={"bogus": 1}))


def test_torchvision_missing_data_says_download(standins, tmp_path):
    with pytest.raises(ConfigError) as e:
        load_dataset(
            DatasetConfig(name="Flagged", kind="torchvision", root=str(tmp_path / "missing"))
        )
    assert "dataset.download=true" in str(e.value) and str(tmp_path / "missing") in str(e.value)


# ----------------------------------------------------------------------------- config: size and keys


@pytest.mark.parametrize("case", "abcd")
def test_every_case_works_down_to_16_pixels_and_says_so_below(case):
    cfg = compose_cfg([f"case={case}", "dataset=folder", "dataset.root=x", "dataset.size=16"])
    config.check(cfg)
    cfg = compose_cfg([f"case={case}", "dataset=folder", "dataset.root=x", "dataset.size=15"])
    with pytest.raises(
        ConfigError,
        match=rf"dataset\.size=15 is too small for case {case} .*use dataset\.size=16 or more",
    ):
        config.check(cfg)


def test_a_deeper_case_needs_a_larger_size():
    cfg = compose_cfg(
        [
            "case=a",
            "case.layers=[conv,conv,conv,conv,conv,conv]",
            "encoder.widths=[8,8,8,8,8]",
            "dataset=folder",
            "dataset.root=x",
            "dataset.size=16",
        ]
    )
    with pytest.raises(
        ConfigError, match=r"16 -> 14 -> 12 -> 10 -> 8 -> 6 -> 4\).*use dataset\.size=20 or more"
    ):
        config.check(cfg)


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            ["dataset=samples", "dataset.size=64"],
            r"dataset\.size=64 applies to dataset=folder and dataset=torchvision",
        ),
        (["dataset=stl10", "dataset.size=32"], "stl10 images are 96x96"),
        (
            ["dataset=torchvision"],
            "dataset=torchvision needs the dataset's class name: add dataset.name=CIFAR10",
        ),
        (["dataset=folder", "dataset.root=x", "dataset.split=test"], "a folder has no splits"),
        (["dataset=folder", "dataset.root=x", "dataset.size=0"], r"dataset\.size=0 is not allowed"),
        (["dataset=samples", "dataset.kind=mnist"], r"dataset\.kind=mnist is unknown"),
    ],
)
def test_dataset_config_errors_name_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        config.check(compose_cfg(overrides))


def test_new_presets_compose_with_declared_keys_only():
    for overrides in (
        ["dataset=folder", "dataset.root=x"],
        ["dataset=torchvision", "dataset.name=MNIST", "+dataset.options.foo=1"],
    ):
        assert config.unknown_keys(compose_cfg(overrides)) == []
    cfg = compose_cfg(["dataset=torchvision", "dataset.name=MNIST"])
    assert (cfg.dataset.kind, cfg.dataset.size, cfg.dataset.download, cfg.dataset.split) == (
        "torchvision",
        96,
        False,
        config.Split.train,
    )
    cfg = compose_cfg(["dataset=samples"])
    assert (cfg.dataset.kind, cfg.dataset.name, cfg.dataset.size) == ("samples", "samples", 96)


# ---------------------------------------------------------------------------------- end to end (CLI)

TINY_OWN = [
    "train.steps=2",
    "train.batch_size=4",
    "measure.batch_size=8",
    "device=cpu",
    "measure.examples=3",
]


@pytest.mark.slow
def test_folder_run_at_size_64_with_an_unreadable_file(tmp_path):
    root = tmp_path / "mine"
    for i in range(8):
        save(root / ("ab"[i % 2]) / f"{i}.png", rgb_noise(70 + i, 90, i))
    save(root / "loose.jpg", rgb_noise(64, 64, 9))
    (root / "b" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "stops"
    r = infomax(
        "run",
        "case=a",
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.size=64",
        *TINY_OWN,
        f"hydra.run.dir={out}",
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert str(root / "b" / "broken.png") in r.stderr and "dataset.skip_unreadable=true" in r.stderr
    assert json.loads((out / "failed.json").read_text())["exit_code"] == 1

    out = tmp_path / "skips"
    r = infomax(
        "run",
        "case=a",
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.size=64",
        "dataset.skip_unreadable=true",
        *TINY_OWN,
        f"hydra.run.dir={out}",
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_files"] == ["b/broken.png"] and summary["n_images"] == 9
    assert (summary["dataset"], summary["dataset_kind"], summary["image_size"]) == (
        "folder",
        "folder",
        64,
    )
    assert summary["layer_sizes"] == [64, 62, 60, 58, 56]
    listing = pd.read_csv(out / "images.csv", keep_default_na=False)
    expected = (
        [f"a/{i}.png" for i in (0, 2, 4, 6)] + [f"b/{i}.png" for i in (1, 3, 5, 7)] + ["loose.jpg"]
    )
    assert listing["path"].tolist() == expected and listing["label"].tolist() == ["a"] * 4 + [
        "b"
    ] * 4 + [""]
    assert listing["image_id"].tolist() == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        9,
    ]  # b/broken.png (id 8) skipped
    per_image = pd.read_csv(out / "mi_per_image.csv", keep_default_na=False)
    assert (
        per_image["image_id"].tolist() == listing["image_id"].tolist()
        and (per_image["mi_max"] > 0).all()
    )
    assert sorted(p.name for p in (out / "features").glob("*.png")) == [
        "00000_a.png",
        "00004_b.png",
        "00009_.png",
    ]


@pytest.mark.slow
def test_folder_missing_or_empty_exits_2_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "nowhere", tmp_path / "empty"):
        r = infomax(
            "run",
            "dataset=folder",
            f"dataset.root={root}",
            *TINY_OWN,
            f"hydra.run.dir={tmp_path / 'run'}",
        )
        assert r.returncode == 2 and "Traceback" not in r.stderr
        lines = [line for line in r.stderr.splitlines() if line.startswith("infomax:")]
        assert len(lines) == 1 and str(root) in lines[0], r.stderr


@pytest.mark.slow
def test_torchvision_fakedata_end_to_end(tmp_path):
    out = tmp_path / "run"
    r = infomax(
        "run",
        "case=d",
        "dataset=torchvision",
        "dataset.name=FakeData",
        "+dataset.options.size=12",
        "+dataset.options.image_size=[3,40,30]",
        "+dataset.options.num_classes=3",
        "dataset.size=32",
        *TINY_OWN,
        f"hydra.run.dir={out}",
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["dataset"],
        summary["dataset_kind"],
        summary["n_images"],
        summary["image_size"],
    ) == ("FakeData", "torchvision", 12, 32)
    assert summary["layer_sizes"] == [32, 34, 36, 34, 32]
    per_map = pd.read_csv(out / "mi_per_map.csv")
    assert len(per_map) == 12 * 32 and set(per_map["label"].astype(str)) <= {"0", "1", "2"}
    assert not (out / "images.csv").exists()


@pytest.mark.slow
def test_torchvision_unknown_name_exits_2_with_suggestions(tmp_path):
    r = infomax(
        "run",
        "dataset=torchvision",
        "dataset.name=Cifar-10",
        *TINY_OWN,
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "did you mean CIFAR10?" in r.stderr and "MNIST, FashionMNIST, SVHN" in r.stderr
