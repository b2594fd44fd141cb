"""Measurement: maps and image brought to one size, MI per image and map, the shuffled null."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from infomax_cli.config import MeasureConfig
from infomax_cli.measure import (
    Plan,
    Protocol,
    layer_mi,
    measure,
    null_partners,
)
from infomax_cli.mi import histogram_mi
from infomax_cli.model.encoders import Encoder
from infomax_cli.model.probe import Recorder

MCFG = MeasureConfig(align="resize", batch_size=3)


class FloatImages:
    """Float test images with what measure() reads of an image bundle (GrayImages): `batch` by
    position, `image_ids`, `groups` (None: every image its own unit) and a length."""

    def __init__(self, x: torch.Tensor, ids=None, groups=None):
        self.x, self.groups = x, groups
        self.image_ids = np.arange(len(x)) if ids is None else np.asarray(ids)

    def __len__(self) -> int:
        return len(self.image_ids)

    def batch(self, positions: torch.Tensor) -> torch.Tensor:
        return self.x[positions]


def images_of(x: torch.Tensor, ids=None, groups=None) -> FloatImages:
    return FloatImages(x, ids, groups)


class Identity(torch.nn.Module):
    """An 'encoder' whose maps are the image and transforms of it: MI known to be high, or zero."""

    def forward(self, x):
        return torch.cat([x, x.pow(2), torch.zeros_like(x)], dim=1)


def test_measure_matches_histogram_mi_and_the_null_is_the_floor():
    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(7, 1, 96, 96), 5, 1, 2)
    plan = Plan.for_job(MCFG, 0, trained=True, examples=[0, 5])
    m = measure(Identity(), None, images_of(x), plan)
    assert m.mi.shape == m.mi_null.shape == m.mi_shuffled.shape == (7, 3)
    np.testing.assert_allclose(m.mi, histogram_mi(x[:, 0], Identity()(x)).numpy(), atol=1e-6)
    assert (m.mi[:, 2] == 0).all()  # a constant map carries no information
    assert (m.mi[:, 0] > 2.0).all()  # the image itself: its binned entropy, ~ln 20 at most
    # shuffled: only the estimator's bias, ~ (B-1)^2 / 2N = 0.02
    assert (m.mi_shuffled[:, :2] < 0.05).all()
    # the null: each image's maps against each of its 4 partner images' pixels, exactly; the mean
    # reported, the spread (standard deviation over partners) kept
    partners = null_partners(np.arange(7), np.arange(7), seed=0, k=4)
    each = np.stack([histogram_mi(x[p, 0], Identity()(x)).numpy() for p in partners.T])
    np.testing.assert_allclose(m.mi_null, each.mean(0), atol=1e-6)
    np.testing.assert_allclose(m.mi_null_sd, each.std(0, ddof=1), atol=1e-6)
    assert (m.mi_null_sd[:, :2] > 0).all()  # another partner, another null
    assert sorted(m.examples) == [0, 5] and m.examples[5][1].shape == (3, 96, 96)
    one = measure(Identity(), None, images_of(x), replace(plan, null_partners=1))
    np.testing.assert_allclose(one.mi_null, each[0], atol=1e-6)  # partner 0: the single draw
    assert np.isnan(one.mi_null_sd).all()  # one partner: no spread to tell


def test_layer_mi_gives_one_value_per_layer():
    enc = Encoder(["conv"] * 4, [4, 4, 4], maps=8, padding=0)
    values = layer_mi(enc, Recorder.of(enc), torch.rand(3, 1, 96, 96), MCFG, seed=0)
    assert len(values) == 4 and all(v >= 0 for v in values)


def test_null_partners_come_from_another_group_and_depend_on_seed_and_id_only():
    groups = np.repeat(np.array(["p0", "p1", "p2", "p3"]), 5)
    ids = np.arange(100, 120)
    partners = null_partners(groups, ids, seed=4)[:, 0]
    assert (partners >= 0).all() and (groups[partners] != groups).all()
    assert (partners == null_partners(groups, ids, seed=4)[:, 0]).all()
    assert (partners != null_partners(groups, ids, seed=5)[:, 0]).any()
    # one group: no partner
    assert (null_partners(np.zeros(6), np.arange(6), seed=0, k=3) == -1).all()
    lopsided = np.array(["big"] * 199 + ["small"])  # nearly one group: still another group's image
    p = null_partners(lopsided, np.arange(200), seed=0)[:, 0]
    assert (p[:199] == 199).all() and p[199] < 199


def test_several_null_partners_are_other_photographs_drawn_per_image():
    """k partners per image from k different other groups (photographs), partner j drawn from
    (seed, image id, j) (not from the batch): the first is the single partner's draw."""
    groups = np.repeat(np.array([f"p{g}" for g in range(6)]), 4)
    ids = np.arange(50, 74)
    partners = null_partners(groups, ids, seed=1, k=4)
    assert partners.shape == (24, 4)
    for i, row in enumerate(partners):
        drawn = groups[row]
        assert groups[i] not in drawn and len(set(drawn)) == 4  # 4 other photographs
    np.testing.assert_array_equal(partners[:, 0], null_partners(groups, ids, seed=1)[:, 0])
    # the first 12 images alone (photographs p0..p2): two other photographs each
    few = null_partners(groups[:12], ids[:12], seed=1, k=2)
    assert (few[:, 0] == null_partners(groups[:12], ids[:12], seed=1)[:, 0]).all()
    assert all(len({groups[i], *groups[row]}) == 3 for i, row in enumerate(few))
    # more partners than other photographs: other images once each, then any other image
    two_groups = null_partners(np.repeat(["x", "y"], 3), np.arange(6), seed=0, k=5)
    for i, row in enumerate(two_groups):
        other = {j for j in range(6) if (j < 3) != (i < 3)}
        assert set(row[:3]) == other and set(row[3:]) <= other


def _samples_batch(n: int = 24):
    from conftest import compose_cfg

    from infomax_cli.sources import load_dataset

    data = load_dataset(compose_cfg(["dataset=samples", f"dataset.n_images={n}"]).dataset)
    return data, data.batch(np.arange(n))


@pytest.mark.parametrize("estimator", ["histogram", "ksg"])
@pytest.mark.slow
def test_every_number_is_the_same_whatever_the_batch_size(estimator):
    """Null partners, shuffles and KSG pixels follow (seed, global image id): batches of 3 and of 64 give
    identical tables."""
    from infomax_cli.experiment import tables

    data, x = _samples_batch(24)
    torch.manual_seed(0)
    enc = Encoder(["conv"] * 4, [4, 4, 4], maps=6, padding=0)
    geom = enc.geometry(96)
    frames = []
    for batch in (3, 64):
        cfg = replace(
            MCFG,
            align="geometry",
            alt_aligns=["resize"],
            estimator=estimator,
            ksg_samples=200,
            batch_size=batch,
        )
        images = images_of(x, data.image_ids, data.groups)
        m = measure(enc, geom, images, Plan.for_job(cfg, 7, trained=True))
        init = measure(enc, geom, images, Plan.for_job(cfg, 7, trained=False))
        frames.append([f.to_csv(index=False) for f in tables(data, m, init)])
    assert frames[0] == frames[1]


@pytest.mark.slow
def test_the_null_is_an_image_floor_above_the_estimators_bias():
    """Against another photograph's pixels the maps share more than with shuffled pixels (natural images
    share spatial structure), and less than with their own image."""
    data, x = _samples_batch(40)
    torch.manual_seed(0)
    enc = Encoder(["conv"] * 4, [8, 16, 16], maps=32, padding=1)
    cfg = replace(MCFG, align="geometry", batch_size=16)
    images = images_of(x, data.image_ids, data.groups)
    m = measure(enc, enc.geometry(96), images, Plan.for_job(cfg, 0, trained=True))
    assert m.mi_shuffled.mean() < 0.03  # ~ (B - 1)^2 / 2N = 0.023 at 88 x 88 pixels
    assert m.mi_null.mean() > m.mi_shuffled.mean() + 0.02
    assert m.mi.mean() > m.mi_null.mean() + 0.1


class Counting(torch.nn.Module):
    """An encoder that counts its forward passes."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def test_a_list_of_protocols_is_measured_on_one_forward_pass():
    """Each batch goes through the encoder once, whatever the protocols; each protocol's numbers equal a
    measurement of that protocol alone, and the histogram's are those of `histogram_mi` at its bins."""
    data, x = _samples_batch(10)
    torch.manual_seed(0)
    enc = Counting(Encoder(["conv"] * 4, [4, 4, 4], maps=6, padding=0))  # case a: 88 x 88 maps
    geom = enc.inner.geometry(96)
    protocols = (
        Protocol("geometry"),
        Protocol("resize", "gcmi", None),
        Protocol("crop", "histogram", 10),
        Protocol("resize", "histogram", 10),
    )
    images, cfg = images_of(x, data.image_ids, data.groups), replace(MCFG, batch_size=4)
    m = measure(enc, geom, images, Plan(cfg, 3, protocols))
    assert enc.calls == 3  # batches of 4, 4 and 2 images
    assert m.mi_null is None and m.mi_shuffled is None  # no null partners asked for
    for p in protocols:
        alone = measure(enc, geom, images, Plan(cfg, 3, (p,)))
        np.testing.assert_array_equal(m.by_protocol[p], alone.mi)
    with torch.no_grad():
        maps = torch.nn.functional.interpolate(enc.inner(x), size=(96, 96), mode="bilinear")
    expected = histogram_mi(x[:, 0], maps, bins=10).numpy()
    np.testing.assert_allclose(m.by_protocol[protocols[3]], expected, atol=1e-6)
    assert np.abs(m.by_protocol[protocols[2]] - m.by_protocol[protocols[3]]).max() > 0.01


def test_resize_and_crop_of_maps_of_the_image_size_are_one_estimate():
    data, x = _samples_batch(6)
    torch.manual_seed(0)
    enc = Encoder(["conv"] * 4, [4, 4, 4], maps=6, padding=1)  # case c: 96 x 96 maps
    protocols = (Protocol("resize"), Protocol("crop"), Protocol("geometry"))
    m = measure(enc, enc.geometry(96), images_of(x), Plan(MCFG, 0, protocols))
    np.testing.assert_array_equal(m.by_protocol[protocols[0]], m.by_protocol[protocols[1]])
    assert m.seconds[protocols[1]] == 0 < m.seconds[protocols[0]]
    assert not np.allclose(m.by_protocol[protocols[0]], m.by_protocol[protocols[2]])


def test_a_jobs_plan_its_other_alignments_and_the_untrained_control():
    cfg = replace(MCFG, align="geometry", alt_aligns=["resize", "geometry", "crop", "resize"])
    trained = Plan.for_job(cfg, 5, trained=True, examples=[2])
    assert [p.align for p in trained.protocols] == ["geometry", "resize", "crop"]
    assert {(p.estimator, p.bins) for p in trained.protocols} == {("histogram", 20)}
    assert trained.null_partners >= 1 and trained.examples == (2,) and trained.seed == 5
    untrained = Plan.for_job(cfg, 5, trained=False, examples=[2])
    assert untrained.protocols == (Protocol("geometry"),)
    assert untrained.null_partners == 0 and untrained.examples == ()
    assert Plan.for_job(replace(cfg, estimator="ksg"), 5, True).protocols[0].bins is None
