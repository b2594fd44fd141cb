"""Like with like (measure.region): cases that cover different image pixels are measured, by default, on
the pixels all of them cover (the intersection of their regions on one grid), each case its own with
measure.region=own; claims.csv and the report say which pixels were compared."""

from __future__ import annotations

import functools
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, compose_cfg, infomax
from test_probe import probed

from infomax_cli import region, rundir
from infomax_cli.analysis import pixels
from infomax_cli.analysis.sweep import Sweep
from infomax_cli.errors import ConfigError
from infomax_cli.model import cases
from infomax_cli.model.align import align_pair
from infomax_cli.model.encoders import Encoder, build_encoder
from infomax_cli.model.geometry import Window, common_window
from infomax_cli.store import Job


@functools.cache
def built(case: str, *extra: str):
    """A case's config and its geometry, probed on the untrained module (once per test session)."""
    cfg = compose_cfg([f"case={case}", *extra])
    enc = build_encoder(cfg.case, cfg.encoder)
    size = cfg.dataset.size
    return cfg, enc.geometry(size) if isinstance(enc, Encoder) else probed(enc, size)


# ------------------------------------------------------------------------------ the common window
@pytest.mark.slow
def test_the_common_window_of_the_built_ins_is_their_intersection_on_one_grid():
    """c covers 4..91, strided every second pixel of 7..88, dilated 15..80, residual 5..90: the pixels
    all cover are the even ones of 15..80 (33 x 33); without strided, 15..80 (66 x 66); grids that
    never meet (even and odd pixels) share none."""
    own = {k: built(k)[1].own_window() for k in ("c", "strided", "dilated", "residual")}
    assert own["c"] == Window(4, 92) and own["strided"] == Window(7, 89, 2, 0)
    everyone = common_window(list(own.values()))
    assert list(everyone.pixels) == list(range(16, 81, 2)) and everyone.side == 33
    assert everyone.text() == "image pixels 16, 18, …, 80 (33 × 33)"
    unstrided = common_window([own["c"], own["dilated"], own["residual"]])
    assert unstrided == Window(15, 81) and unstrided.text() == "image pixels 15..80 (66 × 66)"
    assert common_window([Window(0, 20, 2, 0), Window(0, 20, 2, 1)]) is None


def test_a_geometry_on_the_common_window_pairs_each_map_pixel_with_its_centre():
    """Strided's stem on the pixels c, strided and dilated share: an impulse at image pixel (40, 40)
    is map pixel 20; on the common grid 16, 18, ..., 80 both sit at position 12, and c's maps (stride
    1, offset 0) are taken at the same image pixels."""
    g = probed(cases.Strided())
    common = Window(15, 81, 2, 0)
    stem = cases.Strided()[0][0].double()
    with torch.no_grad():
        stem.weight.fill_(1.0 / 9)
        stem.bias.zero_()
    spike = torch.zeros(1, 1, 96, 96, dtype=torch.float64)
    spike[0, 0, 40, 40] = 1.0
    img, maps = align_pair(spike, stem(spike), "geometry", g.on(common), layer=0)
    assert img.shape == (1, 33, 33) and img[0, 12, 12] == 1 and img.sum() == 1
    assert np.unravel_index(int(maps[0].sum(0).argmax()), (33, 33)) == (12, 12)
    c = built("c")[1].on(common)
    assert c.image_window() == slice(16, 81, 2) and (c.map_window(), c.map_step()) == ((16, 81), 2)
    with pytest.raises(ValueError, match="not on the maps' grid"):
        g.on(Window(15, 81, 1, 0))  # odd pixels: strided has no map pixel there


# ------------------------------------------------------------------------- the sweep's windows
def jobs(cases_: str, *extra: str):
    """(overrides, config, geometry) of a sweep's jobs, as the multirun's start has them."""
    return [
        ([f"case={case}", *extra, "seed=0"], *built(case, *extra)) for case in cases_.split(",")
    ]


@pytest.mark.slow
def test_a_sweep_writes_common_pixels_only_where_its_cases_differ():
    """The study's four cover the same pixels: nothing is written, every job measures its own region
    exactly as before. c with dilated and strided: their setting gets the common window and its cases.
    measure.region=own: nothing. Cases sharing fewer than 8 pixels a side stop the sweep in one line
    naming measure.region=own."""
    assert region.sweep_windows(jobs("a,b,c,d")) == {}
    found = region.sweep_windows(jobs("c,dilated,strided"))
    assert found == {
        "": {
            "window": {"lo": 15, "hi": 81, "step": 2, "phase": 0},
            "cases": ["c", "dilated", "strided"],
        }
    }
    assert region.sweep_windows(jobs("c,dilated", "measure.region=own")) == {}
    small = jobs("c,dilated", "dataset=folder", "dataset.size=38")  # dilated: 15..22, 8 pixels
    assert region.sweep_windows(small)["dataset=folder,dataset.size=38"]["window"] == {
        "lo": 15,
        "hi": 23,
        "step": 1,
        "phase": 0,
    }
    with pytest.raises(ConfigError, match="measure.region=own"):
        region.sweep_windows(jobs("c,dilated,strided", "dataset=folder", "dataset.size=40"))


def test_pixels_json_keeps_other_settings_and_is_read_as_data(tmp_path):
    region.write(tmp_path, {"x=1": {"window": Window(4, 92).as_dict(), "cases": ["a", "c"]}})
    region.write(tmp_path, {"x=2": {"window": Window(15, 81).as_dict(), "cases": ["c", "dilated"]}})
    assert set(region.read(tmp_path)) == {"x=1", "x=2"}
    (tmp_path / rundir.PIXELS).write_text(
        json.dumps({"format": 1, "settings": {"x": {"window": 3}}})
    )
    with pytest.raises(Exception, match="damaged"):
        region.read(tmp_path)
    region.write(tmp_path, {"x=3": {"window": Window(4, 92).as_dict(), "cases": ["a"]}})
    assert set(region.read(tmp_path)) == {"x=3"}  # a damaged file is written again, said once


def test_a_job_outside_a_sweep_measures_its_own_region():
    cfg, geom = built("dilated")
    measured, record = region.for_job(cfg, geom)
    assert measured == geom and record == {
        **Window(15, 81).as_dict(),
        "region": "common",
        "side": 66,
        "cases": ["dilated"],
    }
    cfg = compose_cfg(["case=dilated", "measure.align=resize"])
    assert region.for_job(cfg, geom) == (geom, None)


# ------------------------------------------------------------------------- what compare says
def summary(case, window: Window | None, region_="common", cases_=("c", "dilated")):
    s = {"case": case, "seed": 0, "align": "geometry", "region": [4, 92]}
    s["geometry"] = [{"layer": "1", "map_size": 96, "stride": 1, "offset": 0, "radius": 4}]
    if window is not None:
        s["pixels"] = {"region": region_, **window.as_dict(), "side": window.side}
        s["pixels"]["cases"] = list(cases_)
    return s


def sweep_of(*summaries):
    return Sweep(
        None,
        "sweep",
        [Job(None, [f"case={s['case']}"], s) for s in summaries],
    )


def test_compare_says_which_pixels_and_warns_where_they_differ(caplog):
    common = Window(15, 81)
    same = sweep_of(summary("c", common), summary("dilated", common))
    assert pixels.compared(same) == {"": "the same for every case: image pixels 15..80 (66 × 66)"}
    own = sweep_of(summary("c", Window(4, 92), "own"), summary("dilated", common, "own"))
    with caplog.at_level(logging.WARNING, logger="infomax"):
        words = pixels.compared(own)[""]
    assert words.startswith("not the same: c image pixels 4..91") and not caplog.records
    old = sweep_of(summary("c", None), summary("dilated", common))  # a job from before the key
    assert pixels.measured_window(old.jobs[0].summary) == Window(4, 92)
    with caplog.at_level(logging.WARNING, logger="infomax"):
        pixels.compared(old)
    assert "not compared like with like" in caplog.text


@pytest.mark.slow
@pytest.mark.long
def test_a_sweep_of_cases_that_cover_different_pixels_compares_them_on_the_common_ones(tmp_path):
    """End to end, tiny jobs: c and strided measured on common pixels (the default) and each on its
    own (measure.region=own) in one sweep: pixels.json holds the common setting only; both common
    jobs measured strided's pixels (8, 10, ..., 88); claims.csv and the terminal say which pixels each
    setting compared; strided's own numbers are the same either way (its own pixels are the common
    ones), c's are not."""
    sweep = tmp_path / "s"
    r = infomax(
        "run", "-m", "case=c,strided", *TINY, "measure.region=common,own", f"hydra.sweep.dir={sweep}"
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    settings = region.read(sweep)
    assert list(settings.values()) == [
        {"window": {"lo": 7, "hi": 89, "step": 2, "phase": 0}, "cases": ["c", "strided"]}
    ]
    jobs = {d.name: json.loads((d / rundir.SUMMARY).read_text()) for d in sweep.glob("case=*")}
    common = {s["case"]: s for n, s in jobs.items() if "region=own" not in n}
    own = {s["case"]: s for n, s in jobs.items() if "region=own" in n}
    assert common["c"]["pixels"]["side"] == common["strided"]["pixels"]["side"] == 41
    assert own["c"]["pixels"]["side"] == 88 and own["c"]["pixels"]["cases"] == ["c"]
    assert common["strided"]["mi_mean"] == own["strided"]["mi_mean"]
    assert common["c"]["mi_mean"] != own["c"]["mi_mean"]
    claims = pd.read_csv(sweep / rundir.CLAIMS).drop_duplicates("setting").set_index("setting")
    assert claims.pixels.str.startswith("the same for every case: image pixels 8, 10").sum() == 1
    assert claims.pixels.str.startswith("not the same: c image pixels 4..91").sum() == 1
    assert "pixels compared (" in r.stdout
