"""tests/zygote.py's promise, on which the README's, the launchers', settle's and the signal tests rely:
`infomax` forked from the warm interpreter is `infomax` in a new one (the same exit status, tables,
messages), and what it does not fork runs as Python would. Its exit status and one-line errors are
checked in the tests that use it (test_runtime's, the README's); the signals it passes on in
test_experiment's (SIGINT, SIGTERM, and a killed client taking its job along) and test_settle's."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from conftest import LEAN, ROOT, infomax, warm_python

TABLES = ("loss.csv", "mi_per_map.csv", "mi_per_image.csv")


@pytest.mark.slow
@pytest.mark.long
def test_a_forked_infomax_does_what_a_new_interpreter_does(tmp_path):
    done = {}
    for how in ("warm", "new"):
        r = infomax("run", *LEAN, f"hydra.run.dir={tmp_path / how}", process=True, interpreter=how)
        assert r.returncode == 0, r.stderr[-3000:]
        done[how] = r
    for name in TABLES:
        assert (tmp_path / "warm" / name).read_bytes() == (tmp_path / "new" / name).read_bytes()
    assert done["warm"].stdout.count("\n") == done["new"].stdout.count("\n") > 0
    assert done["warm"].stderr == done["new"].stderr


def test_what_it_does_not_fork_runs_in_a_new_interpreter():
    """The warm `python` forks only the commands it serves (`-m infomax_cli.cli`, submitit's jobs,
    benchmarks/' scripts); anything else (`-c`, a tool's worker) is the interpreter itself, with the
    same arguments, descriptors and exit status."""
    code = "import sys; print(sys.argv[1:], sys.flags.no_site); sys.exit(3)"
    r = subprocess.run([warm_python(), "-c", code, "x"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (3, "['x'] 0\n"), r.stderr


@pytest.mark.slow
def test_a_forked_process_killed_by_a_signal_is_seen_killed_by_it(tmp_path):
    """A forked job that dies of SIGKILL (tests/stop_at_step.py, at its first training step): its
    caller sees the process killed by SIGKILL, as it would a new interpreter, not an exit status."""
    stop = {"STOP_AT_STEP": "1", "STOP_SIGNAL": "SIGKILL", "STOP_MARKER": str(tmp_path / "stopped")}
    env = {**stop, "PYTHONPATH": str(ROOT / "tests")}
    args = ["case=custom", "case.encoder._target_=stop_at_step.StopAtStep"]
    r = infomax("run", *LEAN, *args, f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-3000:])
    assert (tmp_path / "stopped").exists() and not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.slow
def test_joblibs_workers_are_forked_and_get_the_pipes_loky_passes_them():
    """loky starts a worker as `python -m ...popen_loky_posix --pipe N` with pipes of its own under
    chosen numbers: the warm `python` forks it with those descriptors under the same numbers (the task
    and its result travel through them), and a pipe's reader sees its end when the worker ends."""
    code = (
        "import os, sys; sys.executable = sys.argv[1]\n"
        "from joblib import Parallel, delayed\n"
        "got = Parallel(n_jobs=2, backend='loky')(delayed(lambda k: (k * k, 'torch' in sys.modules,"
        " os.getpid()))(k) for k in range(4))\n"
        "print([g[0] for g in got], all(g[1] for g in got), os.getpid() not in {g[2] for g in got})\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(warm_python())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (r.returncode, r.stdout) == (0, "[0, 1, 4, 9] True True\n"), r.stderr[-3000:]
