"""The launcher presets (conf/hydra/launcher/): they compose with the settings they promise, keep the job
directories' names, and a sweep run through them gives the same comparison as Hydra's basic launcher.

Same seed, same numbers, whatever the launcher, at the same number of threads per job: joblib's workers get
cpu_count / n_jobs threads unless told otherwise, and another thread count sums gradients in another order
(weights off by an ulp after a step), which can move a pixel across a histogram bin edge. The sweeps below
therefore fix it with device.threads=1, as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import CONF, ROOT, TINY, infomax
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from test_readme import check_outputs, output_tables

from infomax_cli import jobstart

# one worker runs this module (make test: --dist loadgroup), so its sweeps (launched) are made once,
# not once per worker
pytestmark = pytest.mark.xdist_group("test_cli_launchers")

PRESETS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    "slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
}
ONE_THREAD = ["device.threads=1"]


def launcher_cfg(name: str, overrides: list[str] = ()):
    """The composed config (with its hydra node) when `hydra/launcher=name` is given."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"hydra/launcher={name}", *overrides],
            return_hydra_config=True,
        )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_composes_to_its_plugin(name):
    cfg = launcher_cfg(name, ["case=a", "device=cpu", "seed=1"])
    assert cfg.hydra.launcher._target_ == PRESETS[name]
    # job directories are named as before: by the job's overrides, not by the launcher (nor device)
    assert cfg.hydra.job.override_dirname == "case=a,seed=1"
    assert cfg.hydra.sweep.subdir == "case=a,seed=1"
    assert cfg.case.name == "a" and cfg.train.steps == 50  # the job's own config is untouched


def test_slurm_preset_one_gpu_a_time_limit_and_a_setup_hook():
    launcher = launcher_cfg("slurm").hydra.launcher
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1
    assert launcher.timeout_min > 0 and launcher.cpus_per_task >= 1 and launcher.mem_gb >= 1
    assert launcher.partition is None  # the user's cluster's: left to set
    assert any(".venv/bin/activate" in line for line in launcher.setup)
    assert launcher.submitit_folder.endswith("/.submitit/%j")  # from submitit_slurm's own defaults
    assert launcher.max_num_timeout == 0 and launcher.signal_delay_s == 120


def test_slurm_preset_keys_override_and_resolve(tmp_path):
    cfg = launcher_cfg(
        "slurm",
        [
            "hydra.launcher.partition=gpu",
            "hydra.launcher.cpus_per_task=4",
            f"hydra.sweep.dir={tmp_path}",
        ],
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["partition"] == "gpu"
    assert "export OMP_NUM_THREADS=4" in launcher["setup"]
    assert f"source {Path.cwd()}/.venv/bin/activate" in launcher["setup"]
    assert launcher["submitit_folder"] == f"{tmp_path}/.submitit/%j"


def test_joblib_and_submitit_local_defaults():
    joblib = launcher_cfg("joblib").hydra.launcher
    assert joblib.n_jobs == 2 and joblib.prefer == "processes"
    local = launcher_cfg("submitit_local").hydra.launcher
    assert local.gpus_per_node == 0 and local.timeout_min >= 60


@pytest.mark.parametrize("name", ["joblib", "submitit_local"])
def test_same_named_presets_stay_typed(name):
    """joblib.yaml and submitit_local.yaml are merged onto the plugins' schemas: a wrong type fails."""
    key = "n_jobs" if name == "joblib" else "timeout_min"
    with pytest.raises(Exception, match=key):
        launcher_cfg(name, [f"hydra.launcher.{key}=lots"])


def test_a_local_jobs_result_is_not_waited_for_as_on_a_network_filesystem(monkeypatch):
    """submitit waits 15 s for a finished job's result file (a cluster's filesystem may show it late):
    a submitit_local sweep waits LOCAL_RESULT_WAIT_S, a SLURM sweep keeps submitit's wait."""
    from submitit.local.local import LocalJob
    from submitit.slurm.slurm import SlurmJob

    monkeypatch.setattr(LocalJob, "_results_timeout_s", 15)
    jobstart._local_jobs_report_at_once(launcher_cfg("slurm"))
    jobstart._local_jobs_report_at_once(launcher_cfg("joblib"))
    assert LocalJob._results_timeout_s == SlurmJob._results_timeout_s == 15
    jobstart._local_jobs_report_at_once(launcher_cfg("submitit_local"))
    assert LocalJob._results_timeout_s == jobstart.LOCAL_RESULT_WAIT_S < 15
    assert SlurmJob._results_timeout_s == 15


# --- whole sweeps through each launcher: the same results, a failed job reported, the README's files ---

# One sweep per launcher, shared by the tests below: cases a and c at a learning rate that trains and at
# one that diverges (two of the four jobs fail).
LAUNCHED = ["case=a,c", *TINY, *ONE_THREAD, "train.lr=1e30,1e-4"]
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib"],
    "submitit_local": ["hydra/launcher=submitit_local"],
}
_swept: dict[str, tuple[Path, subprocess.CompletedProcess]] = {}


def launched(name: str, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The module's sweep through launcher `name` (run the first time a test asks), and what
    `infomax run -m` printed and returned."""
    if name not in _swept:
        out = tmp_path_factory.mktemp(name) / "sweep"
        r = infomax("run", "-m", *LAUNCHERS[name], *LAUNCHED, f"hydra.sweep.dir={out}")
        _swept[name] = out, r
    return _swept[name]


def job_dirs(sweep_dir: Path) -> list[str]:
    return sorted(p.name for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["joblib", "submitit_local"])
def test_sweep_through_a_launcher_equals_the_basic_launcher(tmp_path_factory, name):
    basic, _ = launched("basic", tmp_path_factory)
    out, _ = launched(name, tmp_path_factory)
    assert job_dirs(out) == job_dirs(basic)  # same names: the launcher is not part of them
    assert all(d.startswith("case=") and "launcher" not in d for d in job_dirs(out))
    assert (out / "comparison.csv").read_bytes() == (basic / "comparison.csv").read_bytes()
    assert (out / "winners.csv").read_bytes() == (basic / "winners.csv").read_bytes()
    if name == "submitit_local":
        assert any((out / ".submitit").iterdir())  # the jobs really went through submitit


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_a_failed_job_exits_1_and_the_others_still_finish(tmp_path_factory, name):
    """The diverging jobs: exit 1 (a runtime failure, not 2), their reason in failed.json, no
    traceback, and the other jobs of the sweep finish and are compared."""
    out, r = launched(name, tmp_path_factory)
    assert r.returncode == 1, (r.returncode, r.stderr[-3000:])
    said = r.stderr + r.stdout
    assert "Traceback" not in said
    assert "diverged at step" in said and "2 of 4 jobs did not finish" in said
    for case in "ac":
        failed, done = (
            out / next(d for d in job_dirs(out) if f"case={case}," in d and lr in d)
            for lr in ("1e+30", "0.0001")
        )
        record = json.loads((failed / "failed.json").read_text())
        assert record["exit_code"] == 1 and "train.lr" in record["message"]
        assert not (failed / "summary.json").exists() and (done / "summary.json").is_file()
        assert not (done / "failed.json").exists()
    comparison = pd.read_csv(out / "comparison.csv")
    assert len(comparison) == 12 and {"mi_max_a", "mi_max_c"} <= set(comparison.columns)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["joblib", "submitit_local"])
def test_a_launchers_sweep_holds_what_the_readme_lists(tmp_path_factory, name):
    """The README's launcher commands (`infomax run -m hydra/launcher=joblib|submitit_local ...`, its
    section "Sweeps spread through Hydra's own launchers") are these sweeps, shrunk: every file they
    write is a row of the README's tables and every unconditional row is there (test_readme.py's
    check, as for the blocks it runs)."""
    out, _ = launched(name, tmp_path_factory)
    assert check_outputs(out.parent, output_tables()) == []


# A job through submitit that signals its own worker at training step 3 of 8 (tests/stop_at_step.py),
# checkpointing every step: it stops at a step the test chose, never racing it.
STOPPING = [
    *TINY,
    *ONE_THREAD,
    "train.steps=8",
    "train.checkpoint_every=1",
    "hydra/launcher=submitit_local",
    "case=custom",
    "case.encoder._target_=stop_at_step.StopAtStep",
]


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGUSR2, 140), (signal.SIGKILL, 1)])
def test_a_stopped_cluster_job_is_reported_and_resumes(tmp_path, sig, code):
    """SIGUSR2 is the time-limit warning the slurm preset asks SLURM for (signal_delay_s before the limit):
    the job checkpoints and stops (exit 140). SIGKILL is a job killed outright (out of memory, the limit
    itself): the launcher's error becomes one line (exit 1). Either way the same command resumes it."""
    out = tmp_path / "sweep"
    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
        **{"STOP_AT_STEP": "3", "STOP_SIGNAL": sig.name, "STOP_MARKER": str(tmp_path / "stopped")},
    }
    r = infomax("run", "-m", *STOPPING, f"hydra.sweep.dir={out}", env=env, timeout=300)
    assert r.returncode == code, (r.returncode, r.stderr[-3000:])
    stdout, stderr = r.stdout, r.stderr
    assert "Traceback" not in stderr + stdout
    (job,) = [out / d for d in job_dirs(out)]
    if sig == signal.SIGUSR2:
        record = json.loads((job / "failed.json").read_text())
        assert (
            record["exit_code"] == 140
            and "SIGUSR2 at step" in record["message"]
            and "checkpoint saved" in record["message"]
        )
    else:
        assert "stopped without reporting back" in stderr
    step = torch.load(job / "checkpoint.pt", weights_only=True)["step"]
    # SIGUSR2: checkpointed at the step it came in; SIGKILL: the step before's checkpoint
    assert step == (3 if sig == signal.SIGUSR2 else 2)
    r = infomax("run", "-m", *STOPPING, f"hydra.sweep.dir={out}", env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (job / "summary.json").is_file() and not (job / "failed.json").exists()
    assert len(pd.read_csv(job / "loss.csv")) == 8  # resumed: every step once
