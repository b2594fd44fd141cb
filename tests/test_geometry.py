"""Measurement geometry: map pixels compared with the image pixels their receptive fields are centred on,
every case scored on the same image pixels, and the four cases starting at the same scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import check_config, compose_cfg

from infomax_cli import config
from infomax_cli.errors import ConfigError
from infomax_cli.measure import Plan, Protocol, layer_mi, measure
from infomax_cli.model.align import align_pair, critic_view
from infomax_cli.model.encoders import Encoder, build_encoder, fan_in
from infomax_cli.model.geometry import geometry
from infomax_cli.model.probe import Recorder
from infomax_cli.sources import load_dataset

CASES = "abcd"
# the measurement: an impulse at image pixel (30, 30) peaks at these map pixels
IMPULSE_PEAK = {"a": 26, "b": 34, "c": 30, "d": 30}
OFFSETS = {"a": 4, "b": -4, "c": 0, "d": 0}


def encoder(case: str, seed: int = 0) -> Encoder:
    cfg = compose_cfg([f"case={case}"])
    torch.manual_seed(seed)
    return build_encoder(cfg.case, cfg.encoder)


def linear_encoder(case: str) -> Encoder:
    """The case with uniform positive weights and biases that keep every ReLU open, in float64: a linear
    map whose response to an impulse is a symmetric bump centred on the receptive field's centre."""
    enc = encoder(case).double()
    with torch.no_grad():
        for i, block in enumerate(enc.blocks):
            block.weight.fill_(
                1.0 / (block.weight.shape[0] * 9)
                if isinstance(block, torch.nn.ConvTranspose2d)
                else 1.0 / (block.weight.shape[1] * 9)
            )
            block.bias.fill_(2.0 if i == 0 else 0.0)
    return enc


def centre(response: torch.Tensor) -> tuple[float, float]:
    """The centre of mass (row, column) of a non-negative 2-D response."""
    r = response.double().clamp_min(0)
    rows, cols = (
        torch.arange(r.shape[0], dtype=torch.float64),
        torch.arange(r.shape[1], dtype=torch.float64),
    )
    return float((r.sum(1) * rows).sum() / r.sum()), float((r.sum(0) * cols).sum() / r.sum())


@pytest.mark.parametrize("case", CASES)
def test_an_impulse_peaks_where_the_geometry_says(case):
    enc = linear_encoder(case)
    flat = torch.zeros(1, 1, 96, 96, dtype=torch.float64)
    spike = flat.clone()
    spike[0, 0, 30, 30] = 1.0
    with torch.no_grad():
        layers = [a - b for a, b in zip(enc(spike, all_layers=True), enc(flat, all_layers=True))]
    response = layers[-1][0].sum(0)
    peak = np.unravel_index(int(response.argmax()), tuple(response.shape))
    assert peak == (IMPULSE_PEAK[case], IMPULSE_PEAK[case])
    geom = enc.geometry(96)
    assert geom.offsets[-1] == OFFSETS[case] and geom.region == (4, 92)
    # aligned, every layer's response is centred on the impulse's own image pixel
    lo = geom.region[0]
    for k, out in enumerate(layers):
        img, aligned = align_pair(spike.float(), out.float(), "geometry", geom, layer=k)
        assert img[0, 30 - lo, 30 - lo] == 1.0 and img.sum() == 1.0
        assert centre(aligned[0].sum(0)) == pytest.approx((30 - lo, 30 - lo), abs=1e-6)


@pytest.mark.slow
def test_untrained_a_and_c_compute_the_same_function_and_get_the_same_mi():
    """Padding has no parameters: case a and case c from one seed hold the same weights, and on the common
    88 x 88 pixels they are the same function, so they must measure the same MI (geometry); resize did not."""
    a, c = encoder("a", seed=3), encoder("c", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    data = load_dataset(compose_cfg(["dataset=samples", "dataset.n_images=24"]).dataset)
    cfg = config.typed(compose_cfg(["measure.batch_size=10", "measure.alt_aligns=[resize]"]))
    plan = Plan.for_job(cfg.measure, 0, trained=True)
    ma = measure(a, a.geometry(96), data, plan)
    mc = measure(c, c.geometry(96), data, plan)
    np.testing.assert_allclose(ma.mi, mc.mi, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ma.mi_null, mc.mi_null, atol=1e-6, rtol=0)
    # the old misalignment
    resize = Protocol.of(cfg.measure, "resize")
    assert (
        np.abs(ma.by_protocol[resize].max(1).mean() - mc.by_protocol[resize].max(1).mean()) > 0.05
    )


@pytest.mark.parametrize(
    "layers, padding, sizes, offsets",
    [
        (["conv", "deconv", "conv", "deconv"], 0, (94, 96, 94, 96), (1, 0, 1, 0)),
        (
            ["conv", "conv"],
            2,
            (98, 100),
            (-1, -2),
        ),  # a padded conv grows the map and shifts it the other way
        (
            ["deconv", "deconv", "deconv"],
            1,
            (96, 96, 96),
            (0, 0, 0),
        ),  # transposed convs with padding 1 keep the size
    ],
)
def test_user_defined_stacks_get_their_geometry(layers, padding, sizes, offsets):
    g = geometry(layers, 3, padding, 96)
    assert g.map_sizes == sizes and g.offsets == offsets and g.radius == len(layers)
    enc = Encoder(layers, [4] * (len(layers) - 1), 5, padding)
    assert [o.shape[-1] for o in enc(torch.rand(1, 1, 96, 96), all_layers=True)] == list(sizes)
    img, maps = align_pair(torch.rand(2, 1, 96, 96), enc(torch.rand(2, 1, 96, 96)), "geometry", g)
    assert (
        img.shape == (2, 96 - 2 * len(layers), 96 - 2 * len(layers))
        and maps.shape[-2:] == img.shape[-2:]
    )


def test_kernel_five_has_a_wider_common_region():
    g = geometry(["conv"] * 4, 5, 0, 96)
    assert g.radius == 8 and g.region == (8, 88) and g.map_sizes[-1] == 80 and g.offsets[-1] == 8


@pytest.mark.parametrize(
    "layers, kernel, padding, size, words",
    [
        (["conv"] * 4, 4, 0, 96, "even"),
        (["conv"] * 4, 3, 0, 9, "too small"),
        (["conv"] * 4, 3, 0, 8, "too small"),
        (
            ["deconv"] * 4,
            3,
            3,
            96,
            "do not cover",
        ),  # padding 3 crops more than a 3x3 transposed conv adds
    ],
)
def test_stacks_that_cannot_be_aligned_say_so_in_one_line(layers, kernel, padding, size, words):
    with pytest.raises(ConfigError, match=words) as e:
        geometry(layers, kernel, padding, size)
    assert "\n" not in str(e.value)


def test_a_case_that_cannot_be_aligned_fails_at_start():

    cfg = compose_cfg(["case=b", "case.padding=3"])
    with pytest.raises(ConfigError, match="do not cover"):
        check_config(cfg)
    # resize needs no geometry
    check_config(compose_cfg(["case=b", "case.padding=3", "measure.align=resize"]))


def test_critics_see_the_same_pixels_as_the_measurement():
    g = geometry(["conv"] * 4, 3, 0, 96)
    image = torch.arange(96 * 96, dtype=torch.float32).reshape(1, 1, 96, 96)
    latent = torch.rand(1, 5, 88, 88)
    img, lat = critic_view(image, latent, "geometry", g)
    assert torch.equal(img[0, 0], image[0, 0, 4:92, 4:92]) and torch.equal(lat, latent)
    # the study's choice: the image resized to the latent
    img, lat = critic_view(image, latent, "resize", g)
    assert img.shape == (1, 1, 88, 88) and torch.equal(lat, latent)
    gb = geometry(["deconv"] * 4, 3, 0, 96)
    latent = torch.rand(1, 5, 104, 104)
    img, lat = critic_view(image, latent, "geometry", gb)
    assert torch.equal(img[0, 0], image[0, 0, 4:92, 4:92]) and torch.equal(
        lat, latent[:, :, 8:96, 8:96]
    )


def test_the_information_plane_scores_every_layer_on_the_common_pixels():
    enc = encoder("b")
    cfg = compose_cfg([]).measure
    x = torch.rand(3, 1, 96, 96)
    values = layer_mi(enc, Recorder.of(enc), x, cfg, 0, enc.geometry(96))
    assert len(values) == 4 and all(v >= 0 for v in values)


@pytest.mark.slow
def test_transposed_convolutions_start_at_the_scale_of_convolutions():
    """He init from the true fan-in (in_channels * k * k for both kinds): over seeds, the four cases'
    latents start with standard deviations within 1.5x of each other on the same images and pixels (with
    torch's kaiming_normal_, which reads out_channels as the fan of a transposed conv: b and d 7-9x
    narrower). One seed's networks are too narrow for one draw to say it: the scale is averaged over 8."""
    # four images: the spread is the seeds' (the weights'), each draw's scale is over 4 x 32 maps' pixels
    data = load_dataset(compose_cfg(["dataset=samples", "dataset.n_images=4"]).dataset)
    x = data.batch(np.arange(4))
    stds = {}
    for case in CASES:
        values = []
        for seed in range(8):
            enc = encoder(case, seed=seed)
            for block in enc.blocks:
                assert fan_in(block) == block.in_channels * 9
            with torch.no_grad():
                values.append(align_pair(x, enc(x), "geometry", enc.geometry(96))[1].std().item())
        stds[case] = float(np.mean(values))
    assert max(stds.values()) / min(stds.values()) < 1.5, stds
    weights = torch.cat(
        [
            b.weight.flatten() * fan_in(b) ** 0.5
            for case in CASES
            for b in encoder(case, seed=0).blocks
        ]
    )
    # N(0, 2 / fan_in) in every layer
    assert weights.std().item() == pytest.approx(2**0.5, rel=0.05)
