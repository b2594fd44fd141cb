"""One job end to end (experiment.run_job): nothing lost: checkpoints, resume after SIGKILL / Ctrl-C /
SIGTERM, numerical faults, determinism."""

import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, THREADS, TINY, infomax, warm_infomax

from infomax_cli import rundir

# one worker runs this module (make test: --dist loadgroup), so its module fixture (uninterrupted) is
# made once, not once per worker
pytestmark = pytest.mark.xdist_group("test_experiment")

# long enough that a signal sent at the first checkpoint (step 3, a forked process's first second) lands
# mid-training; checkpoints every 3 steps, the information plane every 5 (steps 0, 5 and 10)
STEPS = 12
RESUMABLE = [
    *[o for o in TINY if not o.startswith("train.steps")],
    f"train.steps={STEPS}",
    "train.checkpoint_every=3",
    "train.batch_size=8",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    r = infomax("run", "case=c", *RESUMABLE, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    return out


def start(out):
    """The job as a process of its own (forked from the warm interpreter, which passes the test's
    signals on to it, and takes it along when killed)."""
    return subprocess.Popen(
        [*warm_infomax(), "run", "case=c", *RESUMABLE, f"hydra.run.dir={out}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(THREADS)},
    )


def wait_until_gone(out, timeout=60):
    """Until the process that held the run's lock has ended (a killed client's job goes a moment
    after it)."""
    holder = int((out / rundir.LOCK).read_text().split()[0])
    t0 = time.time()
    while True:
        try:
            os.kill(holder, 0)
        except ProcessLookupError:
            return
        assert time.time() - t0 < timeout, f"the killed job (PID {holder}) is still running"
        time.sleep(0.02)


def wait_for_checkpoint(proc, out, timeout=300):
    t0 = time.time()
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.02)


SUMMARY_TIMES = ("train_seconds", "measure_seconds", "measure_init_seconds", "phase_seconds")


def assert_same_results(out, ref):
    """Every table the run writes equals the uninterrupted run's: loss.csv, mi_per_map.csv,
    mi_per_image.csv, infoplane.csv (every row from step 0, none lost to the resume) and the numbers of
    summary.json (timings aside)."""
    a, b = pd.read_csv(out / "loss.csv"), pd.read_csv(ref / "loss.csv")
    assert a["step"].tolist() == b["step"].tolist() == list(range(1, STEPS + 1))
    np.testing.assert_allclose(
        a.drop(columns="step").to_numpy(), b.drop(columns="step").to_numpy(), atol=1e-5, rtol=0
    )
    for name in ("mi_per_map.csv", "mi_per_image.csv"):
        ma, mb = pd.read_csv(out / name), pd.read_csv(ref / name)
        assert list(ma.columns) == list(mb.columns) and len(ma) == len(mb), name
        assert (
            (ma.select_dtypes(exclude="number") == mb.select_dtypes(exclude="number")).all().all()
        )
        np.testing.assert_allclose(
            ma.select_dtypes("number").to_numpy(),
            mb.select_dtypes("number").to_numpy(),
            atol=1e-5,
            rtol=0,
            err_msg=name,
        )
    pa, pb = pd.read_csv(out / "infoplane.csv"), pd.read_csv(ref / "infoplane.csv")
    assert pa[["step", "layer"]].values.tolist() == pb[["step", "layer"]].values.tolist()
    assert sorted(pa["step"].unique()) == [0, 5, 10]  # every 5 steps from step 0
    np.testing.assert_allclose(pa["mi"], pb["mi"], atol=1e-5, rtol=0)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (out, ref))
    assert sa.keys() == sb.keys()
    for key in sa.keys() - set(SUMMARY_TIMES):
        if isinstance(sa[key], float):
            assert sa[key] == pytest.approx(sb[key], abs=1e-5), key
        else:
            assert sa[key] == sb[key], key


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_rerun_equals_an_uninterrupted_run(
    tmp_path, uninterrupted, no_pictures
):
    out = tmp_path / "run"
    proc = start(out)
    wait_for_checkpoint(proc, out)
    proc.kill()
    proc.wait()
    wait_until_gone(out)
    assert not (out / "summary.json").exists(), "the run finished before it could be killed"
    r = infomax("run", "case=c", *RESUMABLE, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout
    assert_same_results(out, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_exits_resumable(
    tmp_path, uninterrupted, sig, code, no_pictures
):
    out = tmp_path / "run"
    proc = start(out)
    wait_for_checkpoint(proc, out)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr + stdout
    assert f"hydra.run.dir={out}" in stderr  # how to resume
    assert (out / "checkpoint.pt").exists() and not (out / "summary.json").exists()
    if sig == signal.SIGINT:
        # resumed with another config: refused, naming the keys, before it writes anything (it used to
        # continue the seed-0 checkpoint at the new lr, and summary.json said seed 2)
        files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        r = infomax("run", "case=c", *RESUMABLE, "seed=2", "train.lr=0.01", f"hydra.run.dir={out}")
        assert r.returncode == 2, r.stderr
        assert "holds a resumable run made with another config (seed 0 -> 2, train.lr" in r.stderr
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    r = infomax("run", "case=c", *RESUMABLE, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    assert_same_results(out, uninterrupted)


@pytest.mark.slow
def test_same_seed_same_tables_and_summary_records_provenance(tmp_path, uninterrupted, no_pictures):
    out = tmp_path / "again"
    r = infomax("run", "case=c", *RESUMABLE, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    for name in ("loss.csv", "mi_per_map.csv", "mi_per_image.csv"):
        assert (out / name).read_text() == (uninterrupted / name).read_text(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 0 and summary["versions"]["torch"].startswith("2.14.1")
    assert summary["git_commit"] is None or len(summary["git_commit"]) == 40


@pytest.mark.slow
def test_overwrite_redoes_a_finished_job(tmp_path, uninterrupted, no_pictures):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted, out)
    before = (out / "summary.json").stat().st_mtime_ns
    r = infomax("run", "case=c", *RESUMABLE, f"hydra.run.dir={out}")
    assert (
        r.returncode == 0
        and "skipped" in r.stdout
        and (out / "summary.json").stat().st_mtime_ns == before
    )
    r = infomax("run", "case=c", *RESUMABLE, f"hydra.run.dir={out}", "overwrite=true")
    assert r.returncode == 0 and (out / "summary.json").stat().st_mtime_ns != before


def test_a_diverging_loss_stops_with_the_step_and_term(tmp_path):
    out = tmp_path / "run"
    r = infomax(
        "run",
        "case=c",
        *RESUMABLE,
        "train.lr=1e30",
        "train.checkpoint_every=1",
        f"hydra.run.dir={out}",
    )
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert (
        "diverged at step" in r.stderr
        and "term of the loss is" in r.stderr
        and "Traceback" not in r.stderr
    )
    # the last good one
    assert not (out / "summary.json").exists() and (out / "checkpoint.pt").exists()


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = infomax("run", "dataset=samples", f"hydra.run.dir={blocker / 'run'}")
    assert r.returncode == 2 and str(blocker) in r.stderr and "Traceback" not in r.stderr


def test_truncated_stl10_file_is_named(tmp_path):
    from infomax_cli.sources.stl10 import write_stl10_binary

    folder = write_stl10_binary(
        tmp_path, "train", np.zeros((4, 3, 96, 96), np.uint8), np.array([1, 2, 3, 4])
    )
    with open(folder / "train_X.bin", "r+b") as f:
        f.truncate(3 * 96 * 96 * 4 - 100)
    r = infomax(
        "run", "dataset=stl10", f"dataset.root={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert r.returncode == 1 and "train_X.bin" in r.stderr and "Traceback" not in r.stderr
