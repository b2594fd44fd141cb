"""The STL-10 reader (sources.stl10) on tiny hand-made files in the official binary layout."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from infomax_cli.config import DatasetConfig, DatasetKind, Split
from infomax_cli.errors import ConfigError, RunError
from infomax_cli.sources import load_dataset, stl10
from infomax_cli.sources.gray import IMAGE_SIZE, GrayImages
from infomax_cli.sources.stl10 import STL10_CLASSES, write_stl10_binary

N = 7
LABELS = [3, 1, 3, 10, 7, 1, 5]  # cat, airplane, cat, truck, horse, airplane, deer


def _rgb(n: int = N) -> np.ndarray:
    """Distinct, non-symmetric per-channel patterns: R varies along rows, G along columns, B with the image."""
    r = np.arange(IMAGE_SIZE)[:, None] * 2 + np.zeros((1, IMAGE_SIZE), int)
    g = np.zeros((IMAGE_SIZE, 1), int) + np.arange(IMAGE_SIZE)[None, :] * 2 + 40
    x = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i in range(n):
        x[i, 0] = (r + 11 * i) % 256
        x[i, 1] = (g + 5 * i) % 256
        x[i, 2] = (r * 3 + g + 30 * i) % 256
    return x


def _cfg(root, split="train", n_images=None, download=False, name="stl10"):
    return DatasetConfig(
        kind=DatasetKind.stl10,
        name=name,
        root=str(root),
        split=Split(split),
        download=download,
        n_images=n_images,
    )


def _luma(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]) / 255.0


@pytest.fixture
def stl(tmp_path):
    x = _rgb()
    write_stl10_binary(tmp_path, "train", x, LABELS)
    return tmp_path, x


def test_stl10_gray_values_orientation_and_labels(stl):
    root, x = stl
    ds = load_dataset(_cfg(root))
    assert (
        isinstance(ds, GrayImages) and ds.name == "stl10" and ds.split == "train" and len(ds) == N
    )
    b = ds.batch(np.arange(N))
    assert b.dtype == torch.float32 and b.shape == (N, 1, IMAGE_SIZE, IMAGE_SIZE)
    np.testing.assert_allclose(b[:, 0].numpy(), _luma(x), atol=1 / 255)
    # orientation: the patterns are not symmetric, so the transposed image is far from what was read
    assert np.abs(b[:, 0].numpy() - _luma(x).transpose(0, 2, 1)).mean() > 0.05
    assert ds[0].shape == (1, IMAGE_SIZE, IMAGE_SIZE)
    torch.testing.assert_close(ds[3], b[3])
    torch.testing.assert_close(ds.batch(torch.tensor([4, 2])), b[[4, 2]])
    assert ds.labels == [STL10_CLASSES[v - 1] for v in LABELS]
    assert ds.image_ids.dtype == np.int64 and ds.image_ids.tolist() == list(range(N))
    assert ds.example_positions == [1, 0, 6, 4, 3]  # first airplane, cat, deer, horse, truck
    u8 = ds.all_uint8()
    assert u8.dtype == torch.uint8 and u8.shape == (N, IMAGE_SIZE, IMAGE_SIZE)
    torch.testing.assert_close(u8.float() / 255, b[:, 0], rtol=0, atol=0)


def test_stl10_reads_lazily_and_pickles_small(stl):
    root, _ = stl
    ds = load_dataset(_cfg(root))
    assert isinstance(ds._x.planes, np.memmap)
    clone = pickle.loads(pickle.dumps(ds))
    assert (
        isinstance(clone._x.planes, np.memmap)
        and len(pickle.dumps(ds)) < 3 * IMAGE_SIZE * IMAGE_SIZE
    )
    torch.testing.assert_close(clone.batch([0, 5]), ds.batch([0, 5]))


def test_stl10_n_images_and_class_names_file(stl):
    root, x = stl
    (root / "stl10_binary" / "class_names.txt").write_text(
        "\n".join(f"c{i}" for i in range(1, 11)) + "\n"
    )
    ds = load_dataset(_cfg(root, n_images=3))
    assert len(ds) == 3 and ds.labels == ["c3", "c1", "c3"] and ds.example_positions == [1, 0]
    assert ds.all_uint8().shape[0] == 3 and ds.image_ids.tolist() == [0, 1, 2]
    with pytest.raises(IndexError):
        ds.batch([3])
    (root / "stl10_binary" / "class_names.txt").unlink()
    assert load_dataset(_cfg(root)).labels[3] == "truck"  # falls back to STL10_CLASSES


def test_stl10_unlabeled(tmp_path):
    write_stl10_binary(tmp_path, "unlabeled", _rgb(12), None)
    ds = load_dataset(_cfg(tmp_path, split="unlabeled"))
    assert (
        len(ds) == 12
        and set(ds.labels) == {"unlabeled"}
        and ds.example_positions == list(range(10))
    )


def test_stl10_truncated_file_is_a_run_error(stl):
    root, _ = stl
    path = root / "stl10_binary" / "train_X.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(RunError, match=r"train_X\.bin has 193436 bytes.*27648"):
        load_dataset(_cfg(root))


def test_stl10_label_count_mismatch_is_a_run_error(stl):
    root, _ = stl
    np.asarray(LABELS[:-1], np.uint8).tofile(root / "stl10_binary" / "train_y.bin")
    with pytest.raises(RunError, match=r"train_y\.bin has 6 bytes: expected 7"):
        load_dataset(_cfg(root))


def test_stl10_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_dataset(_cfg(tmp_path / "nowhere"))
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "stl10_binary") in msg and "dataset=samples" in msg
    assert "dataset.download=true" in msg and "\n" not in msg


def test_stl10_download_failure_is_a_run_error(tmp_path, monkeypatch):

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(stl10, "torchvision_stl10", lambda: offline)
    with pytest.raises(RunError, match="stl10_binary.*network is unreachable.*dataset=samples"):
        load_dataset(_cfg(tmp_path, download=True))


def test_stl10_download_then_memmap_read(tmp_path, monkeypatch):

    calls = []

    def fake_stl10(root, split, download):
        calls.append((root, split, download))
        write_stl10_binary(root, "test", _rgb(3), [2, 2, 9])

    monkeypatch.setattr(stl10, "torchvision_stl10", lambda: fake_stl10)
    ds = load_dataset(_cfg(tmp_path, split="test", download=True))
    assert calls == [(str(tmp_path), "train", True)] and isinstance(ds._x.planes, np.memmap)
    assert ds.labels == ["bird", "bird", "ship"] and ds.example_positions == [0, 2]
    load_dataset(_cfg(tmp_path, split="test", download=True))
    assert len(calls) == 1  # present files are not downloaded again


def test_n_images_too_large(stl):
    root, _ = stl
    with pytest.raises(ConfigError, match=r"dataset\.n_images=8 .*\(7 images\)"):
        load_dataset(_cfg(root, n_images=8))
