"""Your own images (dataset=folder): listing, labels, lazy decoding, unreadable files, end to end.

Every test writes its own image files."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest
import torch
from conftest import compose_cfg, infomax
from images_on_disk import rgb_noise, save
from PIL import Image

from infomax_cli.config import DatasetConfig, DatasetKind
from infomax_cli.errors import ConfigError, RunError
from infomax_cli.sources import folder, gray, load_dataset
from infomax_cli.sources.folder import list_images
from infomax_cli.sources.gray import GrayImages, gray_square


def folder_cfg(root, **kw) -> DatasetConfig:
    return DatasetConfig(name="folder", kind=DatasetKind.folder, root=str(root), **kw)


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


@pytest.mark.slow
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
    assert ds.example_positions == [
        5,
        0,
        1,
        3,
    ]  # the first image of each label, labels sorted ('' first)
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
    monkeypatch.setattr(gray, "DECODE_ONCE_BYTES", 5 * 32 * 32)  # 6 images do not fit
    monkeypatch.setattr(GrayImages, "all_uint8", lambda self: pytest.fail("decoded the whole set"))
    images = ds.on(torch.device("cpu"))
    torch.testing.assert_close(images.batch(torch.tensor([2, 0])), ds.batch([2, 0]))


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
    # decodes no further
    small = load_dataset(folder_cfg(photos, size=24, skip_unreadable=True, n_images=3))
    assert small.files == ["bird/x.bmp", "cat/a.png", "cat/z.jpg"] and small.info[
        "skipped_files"
    ] == ["cat/broken.png"]
    with pytest.raises(
        ConfigError, match=r"dataset\.n_images=7 is larger than the 6 readable images"
    ):
        load_dataset(folder_cfg(photos, skip_unreadable=True, n_images=7))


def test_folder_skip_unreadable_above_the_budget_stays_lazy(photos, monkeypatch):
    monkeypatch.setattr(folder, "DECODE_ONCE_BYTES", 2 * 16 * 16)
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


def test_a_root_with_tilde_or_a_variable_is_the_folder_the_shell_would_name(photos, monkeypatch):
    """`dataset.root=~/photos` or `'$PHOTOS'` (quoted, or in a YAML preset) reads the same images as the
    absolute path: `~` and environment variables are expanded as a shell would."""
    monkeypatch.setenv("HOME", str(photos.parent))
    monkeypatch.setenv("PHOTOS", str(photos))
    by_path = load_dataset(folder_cfg(photos, size=32))
    for root in ("~/photos", "$PHOTOS", "${PHOTOS}/", "~/photos/../photos"):
        ds = load_dataset(folder_cfg(root, size=32))
        assert ds.files == ORDER and ds.labels == by_path.labels, root
        assert torch.equal(ds.batch([0, 5]), by_path.batch([0, 5])), root
        assert ds.info["dataset_root"] == str(photos.resolve())
