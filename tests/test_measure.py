"""Measurement: maps and image brought to one size, MI per image and map, the shuffled null."""

from types import SimpleNamespace as NS

import numpy as np
import pytest
import torch

from infomax_cli.measure import layer_mi, measure, null_partners
from infomax_cli.mi import histogram_mi
from infomax_cli.model.encoders import Encoder

MCFG = NS(
    estimator="histogram",
    bins=20,
    binning="width",
    miller_madow=False,
    ksg_k=3,
    ksg_samples=1024,
    align="resize",
    batch_size=3,
)


class Identity(torch.nn.Module):
    """An 'encoder' whose maps are the image and transforms of it: MI known to be high, or zero."""

    def forward(self, x):
        return torch.cat([x, x.pow(2), torch.zeros_like(x)], dim=1)


def test_measure_matches_histogram_mi_and_the_null_is_the_floor():
    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(7, 1, 96, 96), 5, 1, 2)
    m = measure(Identity(), lambda idx: x[idx], np.arange(7), MCFG, seed=0, example_ids=[0, 5])
    assert m.mi.shape == m.mi_null.shape == m.mi_shuffled.shape == (7, 3)
    np.testing.assert_allclose(m.mi, histogram_mi(x[:, 0], Identity()(x)).numpy(), atol=1e-6)
    assert (m.mi[:, 2] == 0).all()  # a constant map carries no information
    assert (m.mi[:, 0] > 2.0).all()  # the image itself: its binned entropy, ~ln 20 at most
    # shuffled: only the estimator's bias, ~ (B-1)^2 / 2N = 0.02
    assert (m.mi_shuffled[:, :2] < 0.05).all()
    # the null: each image's maps against its partner image's pixels, exactly
    partners = null_partners(np.arange(7), np.arange(7), seed=0)
    np.testing.assert_allclose(
        m.mi_null, histogram_mi(x[partners, 0], Identity()(x)).numpy(), atol=1e-6
    )
    assert sorted(m.examples) == [0, 5] and m.examples[5][1].shape == (3, 96, 96)


def test_layer_mi_gives_one_value_per_layer():
    enc = Encoder(["conv"] * 4, [4, 4, 4], maps=8, padding=0)
    values = layer_mi(enc, torch.rand(3, 1, 96, 96), MCFG, seed=0)
    assert len(values) == 4 and all(v >= 0 for v in values)


def test_null_partners_come_from_another_group_and_depend_on_seed_and_id_only():
    groups = np.repeat(np.array(["p0", "p1", "p2", "p3"]), 5)
    ids = np.arange(100, 120)
    partners = null_partners(groups, ids, seed=4)
    assert (partners >= 0).all() and (groups[partners] != groups).all()
    assert (partners == null_partners(groups, ids, seed=4)).all()
    assert (partners != null_partners(groups, ids, seed=5)).any()
    assert (null_partners(np.zeros(6), np.arange(6), seed=0) == -1).all()  # one group: no partner
    lopsided = np.array(["big"] * 199 + ["small"])  # nearly one group: still another group's image
    p = null_partners(lopsided, np.arange(200), seed=0)
    assert (p[:199] == 199).all() and p[199] < 199


def _samples_batch(n: int = 24):
    from conftest import compose_cfg

    from infomax_cli.sources import load_dataset

    data = load_dataset(compose_cfg(["dataset=samples", f"dataset.n_images={n}"]).dataset)
    return data, data.batch(np.arange(n))


@pytest.mark.parametrize("estimator", ["histogram", "ksg"])
def test_every_number_is_the_same_whatever_the_batch_size(estimator):
    """Null partners, shuffles and KSG pixels follow (seed, global image id): batches of 3 and of 64 give
    identical tables."""
    from dataclasses import replace

    from infomax_cli.experiment import tables

    data, x = _samples_batch(24)
    torch.manual_seed(0)
    enc = Encoder(["conv"] * 4, [4, 4, 4], maps=6, padding=0)
    geom = enc.geometry(96)
    frames = []
    for batch in (3, 64):
        cfg = NS(
            **{
                **vars(MCFG),
                "align": "geometry",
                "estimator": estimator,
                "ksg_samples": 200,
                "batch_size": batch,
            }
        )
        m = measure(
            enc,
            lambda idx: x[idx],
            data.image_ids,
            cfg,
            7,
            geom,
            data.groups,
            alt_aligns=["resize"],
        )
        init = replace(m, mi_null=None, mi_shuffled=None, alt={})
        frames.append([f.to_csv(index=False) for f in tables(data, m, init)])
    assert frames[0] == frames[1]


def test_the_null_is_an_image_floor_above_the_estimators_bias():
    """Against another photograph's pixels the maps share more than with shuffled pixels (natural images
    share spatial structure), and less than with their own image."""
    data, x = _samples_batch(40)
    torch.manual_seed(0)
    enc = Encoder(["conv"] * 4, [8, 16, 16], maps=32, padding=1)
    cfg = NS(**{**vars(MCFG), "align": "geometry", "batch_size": 16})
    m = measure(enc, lambda idx: x[idx], data.image_ids, cfg, 0, enc.geometry(96), data.groups)
    assert m.mi_shuffled.mean() < 0.03  # ~ (B - 1)^2 / 2N = 0.023 at 88 x 88 pixels
    assert m.mi_null.mean() > m.mi_shuffled.mean() + 0.02
    assert m.mi.mean() > m.mi_null.mean() + 0.1
