"""Device selection (runtime.pick_device) with and without CUDA: torch.cuda is monkeypatched, so these run
on any machine; with several GPUs, job k of a multirun takes cuda:(k % GPUs)."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, TINY, compose_cfg, infomax
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from infomax_cli import runtime
from infomax_cli.errors import ConfigError
from infomax_cli.runtime import PhaseClock, pick_device


@pytest.fixture
def gpus(monkeypatch):
    """gpus(n): pretend n CUDA devices are visible (0: none)."""

    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return set_count


@pytest.fixture
def job_number():
    """job_number(k): run as job k of a multirun (None: a single run, where hydra.job.num is unset)."""
    instance = HydraConfig.instance()
    saved = instance.cfg

    def set_num(k):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=["device=auto"], return_hydra_config=True)
        if k is not None:
            with open_dict(cfg.hydra.job):
                cfg.hydra.job.num = k
        instance.set_config(cfg)

    yield set_num
    instance.cfg = saved


def test_auto_takes_the_cpu_without_cuda(gpus):
    gpus(0)
    assert pick_device("auto") == torch.device("cpu")


def test_auto_takes_the_gpu_with_cuda(gpus):
    gpus(1)
    device = pick_device("auto")
    assert device.type == "cuda" and device.index in (None, 0)


def test_cpu_stays_on_the_cpu_with_cuda(gpus):
    gpus(2)
    assert pick_device("cpu") == torch.device("cpu")


def test_cuda_with_cuda(gpus):
    gpus(1)
    assert pick_device("cuda").type == "cuda"


def test_cuda_without_cuda_is_a_config_error_naming_the_fix(gpus):
    gpus(0)
    with pytest.raises(ConfigError, match="device=cpu"):
        pick_device("cuda")


@pytest.mark.parametrize("kind", ["auto", "cpu", "cuda"])
def test_the_device_group_gives_pick_device_its_kind(gpus, kind):
    gpus(1)
    assert pick_device(compose_cfg([f"device={kind}"]).device.kind.value).type == (
        "cpu" if kind == "cpu" else "cuda"
    )


def test_a_single_run_takes_the_first_gpu(gpus, job_number):
    gpus(4)
    job_number(None)
    assert pick_device("auto").index in (None, 0)


@pytest.mark.parametrize("num, expected", [(0, 0), (1, 1), (2, 0), (5, 1)])
def test_multirun_jobs_spread_over_the_gpus(gpus, job_number, num, expected):
    gpus(2)
    job_number(num)
    assert pick_device("auto") == torch.device("cuda", expected)
    assert pick_device("cuda") == torch.device("cuda", expected)


@pytest.mark.slow
def test_cli_device_cuda_without_a_gpu_is_one_line_exit_2(tmp_path):
    """CUDA_VISIBLE_DEVICES='' hides every GPU, so this runs the same on a GPU machine."""
    args = [o for o in TINY if not o.startswith("device=")]
    r = infomax(
        "run",
        "device=cuda",
        *args,
        f"hydra.run.dir={tmp_path / 'run'}",
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "device=cpu" in lines[0] and "Traceback" not in r.stderr


def test_the_phase_clock_splits_a_job_into_phases_that_add_up(monkeypatch):
    """Laps take the seconds since the last lap; a part split off a phase moves there, so the phases
    add up to the clock's whole time, none counted twice (summary.json's phase_seconds)."""
    now = iter([10.0, 10.5, 13.0, 13.25, 20.0])
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(now))
    clock = PhaseClock()  # 10.0
    clock.lap("start")  # 0.5
    clock.lap("train")  # 2.5
    clock.split("train", "infoplane", 0.75)
    clock.lap("measure")  # 0.25
    clock.lap("train")  # a phase entered again adds up: 6.75 more
    assert clock.rounded() == {"start": 0.5, "train": 8.5, "infoplane": 0.75, "measure": 0.25}
    assert sum(clock.seconds.values()) == 10.0
