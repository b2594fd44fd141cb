"""Measurement: maps and image brought to one size, MI per image and map, the shuffled null."""

from types import SimpleNamespace as NS

import numpy as np
import pytest
import torch

from infomax_cli.encoders import Encoder
from infomax_cli.measure import align, layer_mi, measure
from infomax_cli.mi import histogram_mi

MCFG = NS(estimator="histogram", bins=20, binning="width", miller_madow=False, ksg_k=3, ksg_samples=1024, align="resize", batch_size=3)


@pytest.mark.parametrize("size", [88, 96, 104])
def test_resize_brings_maps_to_the_image(size):
    img, maps = align(torch.rand(2, 1, 96, 96), torch.rand(2, 5, size, size), "resize")
    assert img.shape == (2, 96, 96) and maps.shape == (2, 5, 96, 96)


def test_crop_centre_crops_the_larger():
    image = torch.arange(96 * 96, dtype=torch.float32).reshape(1, 1, 96, 96)
    img, maps = align(image, torch.rand(1, 3, 88, 88), "crop")  # case a: the image is cropped to 88
    assert img.shape == (1, 88, 88) and torch.equal(img[0], image[0, 0, 4:92, 4:92])
    big = torch.arange(104 * 104, dtype=torch.float32).reshape(1, 1, 104, 104).expand(1, 2, 104, 104)
    img, maps = align(image, big, "crop")  # case b: the maps are cropped to 96
    assert maps.shape == (1, 2, 96, 96) and torch.equal(maps[0, 0], big[0, 0, 4:100, 4:100])


class Identity(torch.nn.Module):
    """An 'encoder' whose maps are the image and transforms of it: MI known to be high, or zero."""

    def forward(self, x):
        return torch.cat([x, x.pow(2), torch.zeros_like(x)], dim=1)


def test_measure_matches_histogram_mi_and_the_null_is_the_floor():
    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(7, 1, 96, 96), 5, 1, 2)
    m = measure(Identity(), lambda idx: x[idx], 7, MCFG, seed=0, example_ids=[0, 5])
    assert m.mi.shape == m.mi_null.shape == (7, 3)
    np.testing.assert_allclose(m.mi, histogram_mi(x[:, 0], Identity()(x)).numpy(), atol=1e-6)
    assert (m.mi[:, 2] == 0).all()  # a constant map carries no information
    assert (m.mi[:, 0] > 2.0).all()  # the image itself: its binned entropy, ~ln 20 at most
    assert (m.mi_null[:, :2] < 0.05).all()  # shuffled: only the estimator's bias, ~ (B-1)^2 / 2N = 0.02
    assert sorted(m.examples) == [0, 5] and m.examples[5][1].shape == (3, 96, 96)


def test_layer_mi_gives_one_value_per_layer():
    enc = Encoder(["conv"] * 4, [4, 4, 4], maps=8, padding=0)
    values = layer_mi(enc, torch.rand(3, 1, 96, 96), MCFG, seed=0)
    assert len(values) == 4 and all(v >= 0 for v in values)
