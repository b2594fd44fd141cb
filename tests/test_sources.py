"""sources.load_datasets with train.holdout: the measured images are never trained on (train=learn measures
held-out images)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, compose_cfg, infomax
from PIL import Image

from infomax_cli.errors import ConfigError
from infomax_cli.sources import load_dataset, load_datasets
from infomax_cli.sources.stl10 import write_stl10_binary

HELD = ["chelsea", "horse", "camera", "coffee", "coins", "grass"]


def test_samples_hold_out_whole_photographs():
    cfg = compose_cfg(["dataset=samples", "dataset.n_images=60"]).dataset
    trained, measured = load_datasets(cfg, holdout=True)
    assert set(measured.labels) == set(HELD) and not set(trained.labels) & set(HELD)
    assert len(trained) + len(measured) == 60 and len(measured) == 3 * len(HELD)
    whole = load_dataset(cfg)
    # image ids, groups and pixels stay those of the whole set
    assert sorted([*trained.image_ids, *measured.image_ids]) == list(range(60))
    assert measured.groups == [whole.groups[i] for i in measured.image_ids]
    assert np.array_equal(
        measured.all_uint8().numpy(), whole.all_uint8().numpy()[measured.image_ids]
    )
    # the study's example images, the cat and the horse, are measured
    assert [int(measured.image_ids[p]) for p in measured.study_positions] == [0, 1]
    same_a, same_b = load_datasets(cfg, holdout=False)
    assert same_a is same_b


def test_a_folder_holds_out_its_heldout_labels(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs", "owls"):
        (tmp_path / label).mkdir()
        for k in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 50), dtype=np.uint8)).save(
                tmp_path / label / f"{k}.png"
            )
    cfg = compose_cfg(
        ["dataset=folder", f"dataset.root={tmp_path}", "dataset.size=32", "dataset.heldout=[owls]"]
    ).dataset
    trained, measured = load_datasets(cfg, holdout=True)
    assert measured.labels == ["owls"] * 3 and set(trained.labels) == {"cats", "dogs"}
    whole = load_dataset(cfg)
    assert list(measured.image_ids) == [6, 7, 8] and measured.files == whole.files[6:]
    # read per batch through the subset: the same pixels as the whole set's
    assert np.array_equal(measured.batch([2, 0]).numpy(), whole.batch([8, 6]).numpy())
    with pytest.raises(ConfigError, match="labels"):
        load_datasets(
            compose_cfg(
                ["dataset=folder", f"dataset.root={tmp_path}", "dataset.heldout=[bats]"]
            ).dataset,
            holdout=True,
        )


def test_stl10_measures_its_test_split(tmp_path):
    rng = np.random.default_rng(0)
    write_stl10_binary(
        tmp_path, "train", rng.integers(0, 256, (6, 3, 96, 96), dtype=np.uint8), [1, 2, 3, 4, 5, 6]
    )
    write_stl10_binary(
        tmp_path, "test", rng.integers(0, 256, (4, 3, 96, 96), dtype=np.uint8), [4, 7, 1, 2]
    )
    cfg = compose_cfg(["dataset=stl10", f"dataset.root={tmp_path}"]).dataset
    trained, measured = load_datasets(cfg, holdout=True)
    assert (trained.split, len(trained)) == ("train", 6) and (measured.split, len(measured)) == (
        "test",
        4,
    )
    assert [measured.labels[p] for p in measured.study_positions] == ["cat", "horse"]


def test_samples_without_heldout_photographs_say_so():
    with pytest.raises(ConfigError, match="dataset.heldout"):
        load_datasets(compose_cfg(["dataset=samples", "dataset.heldout=[]"]).dataset, holdout=True)
    with pytest.raises(ConfigError, match="unknown: moon2"):
        load_datasets(
            compose_cfg(["dataset=samples", "dataset.heldout=[moon2]"]).dataset, holdout=True
        )


@pytest.mark.slow
def test_the_learn_preset_measures_held_out_photographs(tmp_path):
    out = tmp_path / "run"
    tiny = [
        o
        for o in TINY
        if not o.startswith(("dataset.n_images", "dataset.per_photo", "train.steps"))
    ]
    r = infomax(
        "run",
        "case=d",
        "train=learn",
        *tiny,
        "dataset.n_images=40",
        "train.steps=3",
        f"hydra.run.dir={out}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    assert (
        s["holdout"] is True
        and s["n_train_images"] == 28
        and s["n_images"] == 12
        and s["lr"] == 3e-3
    )
    per_image = pd.read_csv(out / "mi_per_image.csv")
    assert set(per_image.label) == set(HELD) and s["study_examples"] == [0, 1]
    loss = pd.read_csv(out / "loss.csv")
    assert len(loss) == 3 and {"local_mi", "global_mi"} <= set(loss.columns)


@pytest.mark.parametrize("dataset", ["stl10", "CIFAR10", "MNIST"])
@pytest.mark.slow
def test_a_failed_download_is_the_same_error_for_every_dataset(dataset, tmp_path, monkeypatch):
    """Offline with dataset.download=true: STL-10 and any torchvision class stop with the same kind of
    error (a runtime failure, exit 1) and the same line: the folder, the reason, the way to run offline."""
    import torchvision.datasets as tvd

    from infomax_cli.errors import RunError, exit_status
    from infomax_cli.sources import stl10

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    class Offline(tvd.VisionDataset):  # a torchvision class's signature, without the network
        def __init__(self, root, train=True, transform=None, download=False):
            offline()

    if dataset == "stl10":
        monkeypatch.setattr(stl10, "torchvision_stl10", lambda: offline)
        args = ["dataset=stl10"]
        where = tmp_path / "stl10_binary"
    else:
        monkeypatch.setattr(tvd, dataset, type(dataset, (Offline,), {}))
        args = ["dataset=torchvision", f"dataset.name={dataset}"]
        where = tmp_path
    cfg = compose_cfg([*args, f"dataset.root={tmp_path}", "dataset.download=true"]).dataset
    with pytest.raises(RunError) as e:
        load_dataset(cfg)
    assert exit_status(e.value) == 1
    assert str(e.value).startswith(
        f"could not download {'STL-10' if dataset == 'stl10' else 'torchvision ' + dataset} to {where} ("
    )
    assert str(e.value).endswith(
        "Name or service not known>): check the network, or put the files there yourself; dataset=samples runs offline."
    )
