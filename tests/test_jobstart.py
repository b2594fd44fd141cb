"""How a job starts: config errors before anything is written, the config a run directory remembers,
and sweep job directories named by every override that changes results (dataset.root included)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import CONF, TINY, TINY_SWEEP, infomax
from hydra import compose, initialize_config_dir

from infomax_cli import config, rundir

# one worker runs this module (make test: --dist loadgroup), so its module fixture (finished) is
# made once, not once per worker
pytestmark = pytest.mark.xdist_group("test_jobstart")


def snapshot(folder: Path) -> dict:
    """Every file and folder under `folder` with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def subdir(*overrides: str) -> str:
    """The job directory name a sweep job with these overrides gets."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    return cfg.hydra.sweep.subdir


def test_dataset_root_names_its_job_directory():
    """Two folder roots are two jobs: before, dataset.root was left out of the name and the second job
    was taken for the first, finished. A root is shown as typed when short and plain, else its last part
    and a hash (no '/': one folder, not a tree); names without a root are Hydra's, as before."""
    base = ["dataset=folder", "case=a"]
    assert subdir(*base) == "case=a,dataset=folder"
    assert subdir(*base, "dataset.root=photos") == "case=a,dataset.root=photos,dataset=folder"
    one = subdir(*base, "dataset.root=/data/cats/photos")
    two = subdir(*base, "dataset.root=/data/dogs/photos")
    assert one != two and "/" not in one + two
    assert one.startswith("case=a,dataset.root=photos-") and one.endswith(",dataset=folder")
    assert subdir(*base, "dataset.root=/data/dogs/photos") == two  # the same root, the same job
    assert subdir(*base, "seed=1", "device=cpu", "resume=force") == "case=a,dataset=folder,seed=1"


def test_differing_keys_are_those_that_change_results():
    stored = {
        "seed": 1,
        "train": {"lr": 1e-4, "steps": 50},
        "device": {"kind": "cpu", "threads": 1},
    }
    current = {"seed": 7, "train": {"lr": 0.5, "steps": 50.0}, "device": {"kind": "cuda"}}
    diff = config.differing_keys(stored, current)
    assert diff == {
        "seed": (1, 7),
        "train.lr": (1e-4, 0.5),
    }  # where it runs is not what it computes
    assert config.describe(diff) == "seed 1 -> 7, train.lr 0.0001 -> 0.5"
    # a key written by another version, or only one side has, counts as its default
    assert config.differing_keys({"measure": {}}, {"measure": {"bins": 20}}) == {}
    assert config.differing_keys({}, {"measure": {"bins": 32}}) == {"measure.bins": (20, 32)}
    assert config.differing_keys({}, {"dataset": {"options": {"size": 10}}}) != {}
    assert config.differing_keys({"train": {"bf16": False}}, {"train": {"bf16": 0}}) != {}


# seed 1, and a batch larger than the 12 images
FINISHED = [*(o for o in TINY if not o.startswith("train.batch_size")), "train.batch_size=100"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    done = infomax("run", *FINISHED, "seed=1", f"hydra.run.dir={out}")
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow
def test_a_batch_larger_than_the_data_is_recorded_as_used(finished):
    """train.batch_size=100 with 12 images trained with 12 but summary.json said 100."""
    import json

    assert json.loads((finished / rundir.SUMMARY).read_text())["batch_size"] == 12
    log = (finished / rundir.LOG).read_text()
    assert "train.batch_size=100 is more than the 12 training images: each step uses all 12" in log


@pytest.mark.slow
def test_a_rerun_with_another_config_stops_and_changes_nothing(finished, tmp_path):
    """A finished directory rerun with another config used to say "skipped" (exit 0) while Hydra
    rewrote .hydra/ to the new config over tables made by the old one."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = snapshot(run)
    done = infomax(
        "run", *FINISHED, "seed=7", "train.lr=0.5", "device.threads=1", f"hydra.run.dir={run}"
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"{run} holds a finished run made with another config" in line
    assert "seed 1 -> 7, train.lr 0.0001 -> 0.5)" in line and "resume=force" in line
    assert snapshot(run) == before  # no file written, not even .hydra/ or the log
    forced = infomax("run", *FINISHED, "seed=7", "resume=force", f"hydra.run.dir={run}")
    assert forced.returncode == 0 and "skipped" in forced.stdout, forced.stderr
    assert (run / rundir.SUMMARY).read_bytes() == before[rundir.SUMMARY][0]


@pytest.mark.slow
def test_a_sweep_config_error_writes_nothing(tmp_path):
    """A range error used to leave a run directory holding failed.json and infomax.log; a sweep's, one
    per job. Now a whole sweep stops before any folder is made (a single run: test_cli's bad inputs)."""
    sweep = infomax(
        "run", "-m", "case=a,c", *TINY, "measure.bins=1000,20", f"hydra.sweep.dir={tmp_path / 's'}"
    )
    assert sweep.returncode == 2, sweep.stderr
    (line,) = sweep.stderr.strip().splitlines()
    assert "job case=a" in line and "measure.bins=1000 is more bins" in line and "256" in line
    assert list(tmp_path.iterdir()) == []


HOLD = """
import sys, time
from infomax_cli import dirlock

with dirlock.lock(sys.argv[1]):
    print("got", flush=True)
    time.sleep(120)
"""


@pytest.mark.slow
def test_a_run_refused_by_the_lock_leaves_the_busy_directory_byte_identical(finished, tmp_path):
    """Hydra used to write the second run's .hydra/config.yaml and overrides.yaml (seed 1 -> 7, lr ->
    0.5) into the busy directory before the lock refused it."""
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / rundir.SUMMARY).unlink()  # a run in progress
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().startswith("got")
        before = snapshot(run)
        done = infomax("run", *FINISHED, "seed=7", "train.lr=0.5", f"hydra.run.dir={run}")
        assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"{run} is in use by another infomax run (PID {holder.pid})" in line


def test_a_sweep_composes_each_jobs_config_once(tiny_sweep, tmp_path, monkeypatch, no_pictures):
    """Hydra composes a basic sweep's job config in three places before the job runs (the checks, the
    sweeper's validation, the launcher): each job's is composed once (the shared tiny sweep run again,
    its finished jobs skipped), and every caller gets its own copy."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    compose = ConfigLoaderImpl.load_sweep_config

    def counted(self, master_config, sweep_overrides):
        composed.append(tuple(sweep_overrides))
        return compose(self, master_config, sweep_overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counted)
    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_sweep[0], sweep)
    again = infomax("run", "-m", *TINY_SWEEP, f"hydra.sweep.dir={sweep}")
    assert again.returncode == 0 and again.stdout.count("skipped") == 4, again.stderr[-3000:]
    assert len(composed) == len(set(composed)) == 4, composed


@pytest.mark.parametrize(
    "args,modes",
    [
        ([], ["RUN"]),
        (["hydra.mode=RUN"], ["MULTIRUN", "RUN"]),  # Hydra.get_mode's composition reads it
        (["++hydra.searchpath=[]"], ["MULTIRUN", "RUN"]),  # a config of the user's could set it
        (["-m"], ["MULTIRUN"]),
    ],
)
def test_a_run_composes_its_config_once_unless_an_argument_can_set_hydra_mode(
    tmp_path, monkeypatch, args, modes
):
    """Hydra composed the config once more before every run only to read hydra.mode, which conf/
    never sets (below): now only when an argument could set it. The run here stops at its config
    check (exit 2), after Hydra's composition."""
    from hydra._internal.hydra import Hydra

    composed = []
    compose_config = Hydra.compose_config

    def counted(self, *a, **kw):
        composed.append(kw.get("run_mode", a[2] if len(a) > 2 else None).name)
        return compose_config(self, *a, **kw)

    monkeypatch.setattr(Hydra, "compose_config", counted)
    where = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
    r = infomax("run", *args, "train.steps=0", f"{where}={tmp_path / 'out'}")
    assert r.returncode == 2 and "train.steps=0 is not allowed" in r.stderr, r.stderr[-2000:]
    assert composed == modes


def test_the_config_never_sets_hydra_mode():
    """What lets `infomax run` skip Hydra's composition for the mode: the mode is the command line's."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for case in ("a", "custom"):
            cfg = compose(
                config_name="config", overrides=[f"case={case}"], return_hydra_config=True
            )
            assert cfg.hydra.mode is None


def test_a_sweeps_jobs_share_its_one_timestamped_directory(tmp_path):
    """The default sweep directory is named by the time (`${now:...}`), resolved once for the sweep:
    every job's directory is in it, even when a job fails (here STL-10's files are missing)."""
    r = infomax("run", "-m", "case=a,c", "dataset=stl10", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").glob("*/*")
    assert sorted(p.name for p in sweep.glob("case=*")) == [
        "case=a,dataset=stl10",
        "case=c,dataset=stl10",
    ]


def test_the_composed_job_config_is_handed_out_as_copies():
    from omegaconf import OmegaConf

    from infomax_cli.jobstart import _compose_each_job_once

    class Loader:
        calls: list = []

        def load_sweep_config(self, master_config, sweep_overrides):
            self.calls.append(list(sweep_overrides))
            return OmegaConf.create({"job": {"num": 0, "overrides": list(sweep_overrides)}})

    loader = Loader()
    _compose_each_job_once(loader)
    _compose_each_job_once(loader)  # once: not a memo of the memo
    master = OmegaConf.create({"hydra": {"overrides": {"hydra": ["hydra.verbose=false"]}}})
    first = loader.load_sweep_config(master, ["case=a"])
    first.job.num = 3  # what the launcher does to its copy
    # the sweep's resolved values as they are now (the sweep directory's ${now:...}, resolved by
    # the sweeper after the first composition), as Hydra copies them into each job's config
    OmegaConf.set_cache(master, {"now": {"'%H-%M-%S'": "08-48-58"}})
    again = loader.load_sweep_config(master, ["case=a"])
    assert again.job.num == 0 and OmegaConf.get_cache(again) == OmegaConf.get_cache(master)
    assert loader.load_sweep_config(master, ["case=c"]).job.overrides == ["case=c"]
    assert loader.calls == [["case=a"], ["case=c"]]
