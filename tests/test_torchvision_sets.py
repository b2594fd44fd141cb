"""Any torchvision dataset (dataset=torchvision), offline: FakeData and stand-in classes."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import infomax

from infomax_cli import config
from infomax_cli.config import DatasetConfig, DatasetKind
from infomax_cli.errors import ConfigError
from infomax_cli.sources import load_dataset
from infomax_cli.sources.gray import gray_square

# ------------------------------------------------------------------------------- dataset=torchvision


def fake_cfg(n=10, image_size=(3, 40, 30), size=32, **kw) -> DatasetConfig:
    options = {"size": n, "image_size": list(image_size), "num_classes": 3}
    return DatasetConfig(
        name="FakeData", kind=DatasetKind.torchvision, size=size, options=options, **kw
    )


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
    assert ds.example_positions == [ds.labels.index(label) for label in sorted(set(ds.labels))]
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
        load_dataset(
            DatasetConfig(name="fakedata", kind=DatasetKind.torchvision, options={"size": 3})
        ).name
        == "FakeData"
    )


def test_torchvision_unknown_name_suggests_valid_ones():
    with pytest.raises(ConfigError) as e:
        load_dataset(DatasetConfig(name="CIFAR-10", kind=DatasetKind.torchvision))
    msg = str(e.value)
    assert (
        "dataset.name=CIFAR-10" in msg
        and "did you mean CIFAR10?" in msg
        and "MNIST" in msg
        and "\n" not in msg
    )
    with pytest.raises(ConfigError, match="not a torchvision dataset: .*CIFAR10, CIFAR100, MNIST"):
        load_dataset(DatasetConfig(name="Zebra", kind=DatasetKind.torchvision))
    with pytest.raises(ConfigError):
        load_dataset(DatasetConfig(name="VisionDataset", kind=DatasetKind.torchvision))


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
            name="Flagged",
            kind=DatasetKind.torchvision,
            root=str(tmp_path),
            split=config.Split.test,
            size=16,
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
            DatasetConfig(
                name="Flagged", kind=DatasetKind.torchvision, split=config.Split.unlabeled
            )
        )
    ds = load_dataset(
        DatasetConfig(
            name="Splitted",
            kind=DatasetKind.torchvision,
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
        load_dataset(
            DatasetConfig(name="Splitted", kind=DatasetKind.torchvision, options={"bogus": 1})
        )


def test_torchvision_missing_data_says_download(standins, tmp_path):
    with pytest.raises(ConfigError) as e:
        load_dataset(
            DatasetConfig(
                name="Flagged", kind=DatasetKind.torchvision, root=str(tmp_path / "missing")
            )
        )
    assert "dataset.download=true" in str(e.value) and str(tmp_path / "missing") in str(e.value)


# ---------------------------------------------------------------------------------- end to end (CLI)

TINY_OWN = [
    "train.steps=2",
    "train.batch_size=4",
    "measure.batch_size=8",
    "device=cpu",
    "measure.examples=3",
]


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
