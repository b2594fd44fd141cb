"""The four cases have exactly the study's sizes (from conf/case/*.yaml, as a user runs them)."""

import pytest
import torch
from conftest import compose_cfg

from infomax_cli.model.encoders import build_encoder, layer_sizes

STUDY_SIZES = {
    "a": [96, 94, 92, 90, 88],
    "b": [96, 98, 100, 102, 104],
    "c": [96, 96, 96, 96, 96],
    "d": [96, 98, 100, 98, 96],
}


@pytest.mark.parametrize("case", "abcd")
def test_case_sizes_and_maps(case):
    cfg = compose_cfg([f"case={case}"])
    enc = build_encoder(cfg.case, cfg.encoder)
    assert layer_sizes(enc) == STUDY_SIZES[case]
    assert [96, *enc.geometry(96).map_sizes] == STUDY_SIZES[
        case
    ]  # what a run reports, from the geometry
    out = enc(torch.rand(2, 1, 96, 96))
    assert out.shape == (2, 32, STUDY_SIZES[case][-1], STUDY_SIZES[case][-1])
    assert 0 <= out.min() and out.max() <= 1  # sigmoid latent, like the uniform prior
    convs = [m for m in enc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(convs) == 4 and all(m.kernel_size == (3, 3) and m.stride == (1, 1) for m in convs)


def test_case_d_is_a_reversed_autoencoder():
    cfg = compose_cfg(["case=d"])
    kinds = [type(m).__name__ for m in build_encoder(cfg.case, cfg.encoder).blocks]
    assert kinds == ["ConvTranspose2d", "ConvTranspose2d", "Conv2d", "Conv2d"]


def test_widths_are_configurable():
    cfg = compose_cfg(["case=a", "encoder.widths=[4,5,6]", "encoder.maps=7"])
    enc = build_encoder(cfg.case, cfg.encoder)
    assert [b.out_channels for b in enc.blocks] == [4, 5, 6, 7]
    assert enc(torch.rand(1, 1, 96, 96)).shape == (1, 7, 88, 88)


def test_all_layers_returns_each_layer():
    cfg = compose_cfg(["case=b"])
    outs = build_encoder(cfg.case, cfg.encoder)(torch.rand(1, 1, 96, 96), all_layers=True)
    assert [o.shape[-1] for o in outs] == STUDY_SIZES["b"][1:]
