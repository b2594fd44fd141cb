"""Any encoder: its geometry measured on the module itself (probe.py), equal to the closed form for the
study's cases and to hand-computed values for the built-ins beyond it; modules that cannot be measured
stop at start in one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, TINY, check_config, compose_cfg, infomax
from torch import nn

from infomax_cli import config
from infomax_cli.errors import ConfigError
from infomax_cli.model import cases
from infomax_cli.model.align import align_pair
from infomax_cli.model.encoders import build_encoder
from infomax_cli.model.geometry import geometry
from infomax_cli.model.probe import OUTPUT, Recorder, instantiate_module, probe_geometry

STUDY = {"a": (["conv"] * 4, 0), "b": (["deconv"] * 4, 0), "c": (["conv"] * 4, 1)}
STUDY["d"] = (["deconv", "deconv", "conv", "conv"], 0)


def probed(module: nn.Module, size: int = 96, names=None):
    return probe_geometry(module, size, Recorder.of(module, names))


@pytest.mark.parametrize("case", "abcd")
@pytest.mark.slow
def test_the_probe_equals_the_closed_form_for_the_study_cases(case):
    """Measured, not declared: the gradient supports give exactly the analytic offsets (a +4, b -4,
    c 0, d 0), stride 1 and radius 4 at the last layer, and every layer's on the way; the probe
    touches neither the weights nor the global random state (the job's numbers stay the same)."""
    cfg = compose_cfg([f"case={case}"])
    torch.manual_seed(1)
    enc = build_encoder(cfg.case, cfg.encoder)
    weights = {k: v.clone() for k, v in enc.state_dict().items()}
    rng = torch.get_rng_state()
    layers, padding = STUDY[case]
    for size in (96, 21):
        g = probed(enc, size)
        assert g == geometry(layers, 3, padding, size)
        assert g.problem is None and g.channels == (8, 16, 16, 32)
    assert g.offsets[-1] == {"a": 4, "b": -4, "c": 0, "d": 0}[case]
    assert torch.equal(rng, torch.get_rng_state()) and enc.training
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in weights.items())


def test_a_stride_two_encoder_on_hand_computed_values():
    """Strided: a 3x3 stride-2 conv (padding 1) centres map pixel i on image pixel 2i; each further
    3x3 conv on the 48-grid adds 2 image pixels of radius: radii 1, 3, 5, 7. The common region is
    [7, 89); map pixels 4..44 are centred on image pixels 8, 10, ..., 88."""
    g = probed(cases.Strided())
    assert g.map_sizes == (48,) * 4 and g.strides == (2,) * 4 and g.offsets == (0,) * 4
    assert g.radii == (1, 3, 5, 7) and g.region == (7, 89) and g.problem is None
    assert g.map_window() == (4, 45) and g.image_window() == slice(8, 89, 2)
    # the image is taken on the map's grid: an impulse at image pixel (40, 40) is map pixel 20, the
    # 16th of the window; the aligned image holds it there, and the linearised stem peaks there
    stem = cases.Strided()[0][0].double()
    with torch.no_grad():
        stem.weight.fill_(1.0 / 9)
        stem.bias.zero_()
    spike = torch.zeros(1, 1, 96, 96, dtype=torch.float64)
    spike[0, 0, 40, 40] = 1.0
    img, maps = align_pair(spike, stem(spike), "geometry", g, layer=0)
    assert img.shape == (1, 41, 41) and img[0, 16, 16] == 1 and img.sum() == 1
    response = maps[0].sum(0)
    assert np.unravel_index(int(response.argmax()), response.shape) == (16, 16)


def test_a_dilated_encoder_on_hand_computed_values():
    """Dilated 1, 2, 4, 8 (padding = dilation): the size and offset stay, the radius grows by the
    dilation at each layer: 1, 3, 7, 15; the common region is [15, 81)."""
    g = probed(cases.Dilated())
    assert g.map_sizes == (96,) * 4 and g.strides == (1,) * 4 and g.offsets == (0,) * 4
    assert g.radii == (1, 3, 7, 15) and g.region == (15, 81)
    assert g.map_window() == (15, 81) and g.image_window() == slice(15, 81, 1)
    r = probed(cases.Residual())
    assert r.radii == (1, 3, 5, 5) and r.region == (5, 91) and r.names == ("0", "1", "2", "3")


class Pooled(nn.Module):
    """Each map pixel sees the whole image (a global mean added back): no grid."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return torch.sigmoid(y + y.mean((2, 3), keepdim=True))


class EvenKernel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 4, padding=1)

    def forward(self, x):
        return self.conv(x)


class Heads(nn.Module):
    """Children recorded in order, then the output (a sigmoid after the last child)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3)
        self.head = nn.Conv2d(4, 6, 3)

    def forward(self, x):
        return torch.sigmoid(self.head(torch.relu(self.stem(x))))


def test_maps_without_a_grid_say_so_and_name_resize():
    pooled = probed(Pooled())
    assert "regular grid" in pooled.problem and "measure.align=resize" in pooled.problem
    even = probed(EvenKernel())
    assert "between image pixels" in even.problem and "\n" not in even.problem
    with pytest.raises(ConfigError, match="measure.align=resize"):
        align_pair(torch.rand(1, 1, 96, 96), torch.rand(1, 8, 96, 96), "geometry", pooled)


def test_recorded_layers_children_then_the_output_or_a_list():
    g = probed(Heads())
    assert g.names == ("stem", "head", OUTPUT) and g.offsets == (1, 2, 2) and g.radii == (1, 2, 2)
    assert g.channels == (4, 6, 6)
    assert probed(Heads(), names=["stem"]).names == ("stem", OUTPUT)
    with pytest.raises(ConfigError, match="not a submodule"):
        Recorder.of(Heads(), ["tail"])


def custom(target: str, *more: str) -> list[str]:
    return ["case=custom", f"case.encoder._target_={target}", "dataset=samples", *more]


def conv(c_in: int, c_out: int, kernel: int) -> list[str]:
    """A Conv2d's arguments as overrides that add them to case.encoder."""
    names = ("in_channels", "out_channels", "kernel_size")
    return [f"+case.encoder.{k}={v}" for k, v in zip(names, (c_in, c_out, kernel))]


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["case=custom", "dataset=samples"], "case.encoder._target_=mynet.Net"),
        (custom("no_such_module.Net"), "does not import .*ModuleNotFoundError"),
        (custom("torch.nn.NoSuchLayer"), "does not import"),
        (custom("torch.nn.Conv2d"), "building torch.nn.Conv2d failed .*arguments"),
        (custom("collections.OrderedDict"), "not a torch nn.Module"),
        (custom("torch.nn.Flatten"), r"shape \(4, 9216\), not maps"),
        (
            custom("torch.nn.Conv2d", *conv(3, 8, 3)),
            "forward failed .*3 channels",
        ),
        (
            custom("torch.nn.Conv2d", *conv(1, 8, 3), "+case.encoder.stride=8"),
            "12x12 maps .* at least 16x16",
        ),
        (custom("test_probe.Pooled"), "regular grid.*measure.align=resize"),
    ],
)
@pytest.mark.slow
def test_modules_that_cannot_be_measured_stop_at_start_in_one_line(overrides, words):
    with pytest.raises(ConfigError, match=words) as e:
        check_config(compose_cfg(overrides))
    assert "\n" not in str(e.value)


def test_a_module_without_a_grid_is_measured_with_resize():
    check_config(
        compose_cfg(
            custom("test_probe.Pooled", "measure.align=resize", "measure.alt_aligns=[crop]")
        )
    )


def test_built_in_cases_beyond_the_study_are_target_configs():
    for case, cls in [("strided", cases.Strided), ("dilated", cases.Dilated)]:
        cfg = compose_cfg([f"case={case}", "dataset=samples", "encoder.widths=[4,4,4]"])
        check_config(cfg)
        module = build_encoder(config.typed(cfg).case, config.typed(cfg).encoder)
        assert type(module) is cls and module[1][0].in_channels == 4  # encoder.widths reach it
    assert isinstance(
        instantiate_module({"_target_": "infomax_cli.model.cases.Residual"}), nn.Module
    )


def readme_example() -> tuple[str, str]:
    """The module and the YAML of the README's "Your own encoder", as a user copies them."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own encoder") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    return code, yaml_text


@pytest.mark.slow
@pytest.mark.long
def test_a_module_of_your_own_runs_end_to_end(tmp_path):
    """The README's module in a file of the user's: one run named on the command line, then a sweep
    of its YAML (found through hydra.searchpath) with the study's case c, compared and reported."""
    code, yaml_text = readme_example()
    (tmp_path / "mynet.py").write_text(code)
    (tmp_path / "myconf" / "case").mkdir(parents=True)
    (tmp_path / "myconf" / "case" / "mine.yaml").write_text(yaml_text)
    path = [tmp_path]  # as PYTHONPATH=. (README's own commands are run in fresh processes)
    run = tmp_path / "run"
    target = ["case=custom", "case.encoder._target_=mynet.Net", "+case.encoder.width=4"]
    r = infomax("run", *target, *TINY, f"hydra.run.dir={run}", cwd=tmp_path, path=path)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["case"] == "custom" and s["layer_sizes"] == [96, 48, 48, 48]
    # stride 2, offset 0; radius 2 after the 5x5 stem, + 2 per 3x3 layer on the 48-grid
    grid = [(g["layer"], g["stride"], g["offset"], g["radius"]) for g in s["geometry"]]
    assert grid == [("stem", 2, 0, 2), ("body", 2, 0, 4), ("head", 2, 0, 6)]
    assert s["region"] == [6, 90] and s["n_images"] == 12
    assert sorted(pd.read_csv(run / "infoplane.csv").layer.unique()) == [1, 2, 3]
    assert "2 / +0 / 6" in (run / "report.html").read_text()

    sweep = tmp_path / "sweep"
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'myconf'}]"
    r = infomax(
        "run", "-m", searchpath, "case=mine,c", *TINY, f"hydra.sweep.dir={sweep}", path=path
    )
    assert r.returncode == 0, r.stderr[-2000:]
    comparison = pd.read_csv(sweep / "comparison.csv")
    assert {"mi_max_mine", "mi_max_c"} <= set(comparison.columns) and len(comparison) == 12
    claims = pd.read_csv(sweep / "claims.csv")
    assert set(claims.study_case) == {"c"} and len(claims) == 5
    for command in ("compare", "report"):
        r = infomax(command, str(sweep), path=path)
        assert r.returncode == 0, r.stderr[-2000:]
    assert "case mine" in (sweep / "report.html").read_text()
