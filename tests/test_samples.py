"""The embedded offline set (dataset=samples): 320 deterministic crops of 20 photographs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infomax_cli.config import DatasetConfig, DatasetKind
from infomax_cli.errors import ConfigError
from infomax_cli.sources import load_dataset
from infomax_cli.sources.gray import IMAGE_SIZE


def test_samples_shape_determinism_and_examples():
    ds = load_dataset(DatasetConfig(kind=DatasetKind.samples, name="samples", per_photo=4))
    n_photos = len(set(ds.labels))
    assert (
        n_photos >= 18 and len(ds) == n_photos * 4 and ds.split == "train" and ds.name == "samples"
    )
    b = ds.batch(np.arange(len(ds)))
    assert b.dtype == torch.float32 and b.shape == (len(ds), 1, IMAGE_SIZE, IMAGE_SIZE)
    assert b.min() >= 0 and b.max() <= 1 and b.std() > 0.1
    assert [ds.labels[i] for i in ds.example_positions] == ["chelsea", "horse"]
    assert all(ds.labels.count(name) == 4 for name in set(ds.labels))
    # all distinct
    assert len({tuple(ds.batch([i]).flatten().tolist()) for i in range(len(ds))}) == len(ds)
    from infomax_cli.sources import samples as data

    data._samples.cache_clear()
    again = load_dataset(DatasetConfig(kind=DatasetKind.samples, name="samples", per_photo=4))
    torch.testing.assert_close(again.all_uint8(), ds.all_uint8(), rtol=0, atol=0)
    assert again.labels == ds.labels and again.example_positions == ds.example_positions


def test_samples_n_images_keeps_examples_and_default_count():
    small = load_dataset(DatasetConfig(kind=DatasetKind.samples, name="samples", n_images=5))
    assert len(small) == 5 and [small.labels[i] for i in small.example_positions] == [
        "chelsea",
        "horse",
    ]
    full = load_dataset(DatasetConfig(kind=DatasetKind.samples, name="samples"))
    assert len(full) == 16 * len(set(full.labels))
    with pytest.raises(ConfigError, match=r"dataset\.n_images=100000"):
        load_dataset(DatasetConfig(kind=DatasetKind.samples, name="samples", n_images=100000))
