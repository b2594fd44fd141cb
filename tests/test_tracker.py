"""tracker.py, logger=tensorboard: event files in each run directory, readable by TensorBoard's own reader."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import TINY, compose_cfg, infomax

from infomax_cli import tracker as logger
from infomax_cli.errors import ConfigError


def accumulator(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(
        str(path), size_guidance={"scalars": 0, "images": 0, "tensors": 0}
    ).Reload()


def scalars(acc, tag):
    return [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)]


def test_scalar_tags_group_the_row():
    assert [logger.scalar_tag(k) for k in ("loss", "local", "global", "prior", "prior_disc")] == [
        "loss/loss",
        "loss/local",
        "loss/global",
        "loss/prior",
        "loss/prior_disc",
    ]
    assert (
        logger.scalar_tag("local_mi") == "objective_mi/local_mi"
        and logger.scalar_tag("global_mi") == "objective_mi/global_mi"
    )
    assert logger.scalar_tag("lr") == "train/lr"


def test_logger_none_writes_nothing(tmp_path):
    cfg = compose_cfg(["dataset=samples"])
    assert cfg.logger.kind.value == "none"
    log = logger.make_tracker(cfg.logger, tmp_path)
    log.step(1, {"step": 1, "loss": 1.0})
    log.finish({"steps": 1, "mi_max": 0.5}, {})
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_missing_is_a_config_error_saying_how_to_install(tmp_path, monkeypatch):
    # `import tensorboard` now raises ImportError
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError) as e:
        logger.make_tracker(compose_cfg(["logger=tensorboard"]).logger, tmp_path)
    msg = str(e.value)
    assert 'pip install "infomax[tensorboard]"' in msg and "logger=none" in msg and "\n" not in msg
    assert list(tmp_path.iterdir()) == []


def test_every_step_value_and_the_final_summary_are_logged(tmp_path):
    pytest.importorskip("tensorboard")
    tb = logger.make_tracker(compose_cfg(["logger=tensorboard"]).logger, tmp_path)
    rows = [
        {
            "step": s,
            "loss": 2.0 - s / 10,
            "local": 0.7,
            "global": 0.6,
            "prior": 0.69,
            "prior_disc": 1.38,
            "local_mi": s / 100,
            "global_mi": s / 50,
        }
        for s in (1, 2, 3)
    ]
    for row in rows:
        tb.step(row["step"], row)
    rng = np.random.default_rng(0)
    image, maps = rng.random((20, 20)), rng.random((32, 20, 20))
    mi = np.linspace(0.1, 0.9, 32)
    summary = {
        "steps": 3,
        "case": "c",
        "mi_mean": 0.25,
        "mi_max": 0.5,
        "mi_max_init": 0.4,
        "n_images": 12,
        "mi_note": "text",
    }
    tb.finish(summary, {"00000_chelsea": (image, maps, mi)})
    acc = accumulator(tmp_path)
    assert scalars(acc, "loss/loss") == [(1, 1.9), (2, 1.8), (3, 1.7)]
    assert scalars(acc, "loss/prior_disc") == [(s, 1.38) for s in (1, 2, 3)]
    assert scalars(acc, "objective_mi/local_mi") == [(1, 0.01), (2, 0.02), (3, 0.03)]
    assert scalars(acc, "objective_mi/global_mi") == [(1, 0.02), (2, 0.04), (3, 0.06)]
    assert scalars(acc, "measure/mi_max") == [(3, 0.5)] and scalars(acc, "measure/mi_max_init") == [
        (3, 0.4)
    ]
    assert (
        "measure/n_images" not in acc.Tags()["scalars"]
        and "measure/mi_note" not in acc.Tags()["scalars"]
    )
    (picture,) = acc.Images("features/00000_chelsea")
    tiles = 1 + logger.BEST_MAPS  # the image, then its 8 best maps
    assert (picture.step, picture.width, picture.height) == (3, tiles * 22 + 2, 24)
    (text,) = acc.Tensors("features/00000_chelsea/text_summary")
    # best MI first
    assert "map 31: 0.900, map 30: 0.874" in text.tensor_proto.string_val[0].decode()


def test_a_resumed_run_shows_each_step_once(tmp_path):
    """A first process logged steps 1-4 (checkpointed at 2, then stopped); the resumed one redoes 3-5."""
    pytest.importorskip("tensorboard")
    first = logger.TensorBoardTracker(tmp_path)
    for s in (1, 2, 3, 4):
        first.step(s, {"step": s, "loss": float(s)})
    first.close()
    resumed = logger.TensorBoardTracker(tmp_path)
    for s in (3, 4, 5):
        resumed.step(s, {"step": s, "loss": 10.0 + s})
    resumed.finish({"steps": 5, "mi_max": 0.5}, {})
    assert scalars(accumulator(tmp_path), "loss/loss") == [
        (1, 1.0),
        (2, 2.0),
        (3, 13.0),
        (4, 14.0),
        (5, 15.0),
    ]


@pytest.mark.slow
def test_a_sweep_logs_each_job_side_by_side(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    sweep = tmp_path / "sweep"
    r = infomax("run", "-m", "case=a,c", *TINY, "logger=tensorboard", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr
    jobs = {p.name: p for p in sweep.iterdir() if p.is_dir()}
    # where it logs is not part of the name
    assert all("logger" not in name for name in jobs) and len(jobs) == 2
    # what tensorboard --logdir lists
    runs = EventMultiplexer().AddRunsFromDirectory(str(sweep)).Reload().Runs()
    assert sorted(runs) == sorted(jobs)
    for job in jobs.values():
        acc = accumulator(job)
        assert [s for s, _ in scalars(acc, "loss/loss")] == [1, 2]
        assert {
            "loss/local",
            "loss/global",
            "loss/prior",
            "measure/mi_mean",
            "measure/mi_max",
        } <= set(acc.Tags()["scalars"])
        assert sorted(acc.Tags()["images"]) == ["features/00000_chelsea", "features/00001_horse"]


@pytest.mark.slow
def test_logger_tensorboard_without_the_package_exits_2(tmp_path, monkeypatch):
    """The command in this process, with tensorboard not importable (as where it is not installed)."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    r = infomax("run", *TINY, "logger=tensorboard", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'pip install "infomax[tensorboard]"' in lines[0], r.stderr
