"""The run directory's rules: one run per directory (the lock), a damaged checkpoint named in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from conftest import LEAN, TINY, infomax

from infomax_cli import dirlock, rundir, store
from infomax_cli.errors import RunError


@pytest.fixture
def live_pid():
    """The PID of a live process that is not this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hold(run_dir, pid: int, host: str | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / rundir.LOCK).write_text(f"{pid} {host or socket.gethostname()}\n")


def test_the_lock_is_held_while_inside_and_removed_after(tmp_path):
    with dirlock.lock(tmp_path):
        assert (tmp_path / rundir.LOCK).read_text().split()[0] == str(os.getpid())
    assert not (tmp_path / rundir.LOCK).exists()
    with pytest.raises(ValueError), dirlock.lock(tmp_path):  # removed however the block ends
        raise ValueError
    assert not (tmp_path / rundir.LOCK).exists()


def test_a_live_lock_stops_a_second_run_and_a_dead_ones_is_taken_over(tmp_path, live_pid):
    hold(tmp_path, live_pid)
    with pytest.raises(
        dirlock.DirectoryBusy,
        match=f"{tmp_path} is in use by another infomax run \\(PID {live_pid}\\)",
    ):
        with dirlock.lock(tmp_path):
            pass
    assert (tmp_path / rundir.LOCK).read_text().split()[0] == str(live_pid)  # left as it was
    hold(tmp_path, dead_pid())
    with dirlock.lock(tmp_path):
        assert (tmp_path / rundir.LOCK).read_text().split()[0] == str(os.getpid())
    hold(tmp_path, 1, "another-host")  # cannot be checked from here: kept, and the way out named
    with pytest.raises(dirlock.DirectoryBusy, match="on another-host.*delete"):
        with dirlock.lock(tmp_path):
            pass


@pytest.mark.slow
def test_a_stale_lock_is_taken_over_and_the_run_finishes(tmp_path, no_pictures):
    run_dir = tmp_path / "run"
    hold(run_dir, dead_pid())
    done = infomax("run", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (run_dir / rundir.SUMMARY).is_file() and not (run_dir / rundir.LOCK).exists()


def test_an_empty_lock_left_by_a_crash_is_taken_over(tmp_path):
    """A run killed between creating the lock and writing its PID leaves an empty file: once it is
    older than a write takes, the next run takes it over (it does not wait forever)."""
    lock = tmp_path / rundir.LOCK
    lock.write_text("")
    old = lock.stat().st_mtime - 10 * dirlock.LOCK_WRITE_SECONDS
    os.utime(lock, (old, old))
    with dirlock.lock(tmp_path):
        assert lock.read_text().split()[0] == str(os.getpid())
    assert not lock.exists()


def test_a_damaged_checkpoint_is_one_error_naming_the_file_and_the_way_out(tmp_path):
    path = tmp_path / rundir.CHECKPOINT
    rundir.save_torch(path, {"step": 3})
    path.write_bytes(path.read_bytes()[:40])  # truncated, as by a full disk
    with pytest.raises(RunError, match=f"{path} is damaged and cannot be read .*delete it"):
        store.load_torch(path)


@pytest.mark.slow
def test_a_run_resuming_from_a_crafted_checkpoint_exits_1_in_one_line_and_runs_no_code(tmp_path):
    import torch

    run_dir, marker = tmp_path / "run", tmp_path / "payload-ran"
    run_dir.mkdir()
    torch.save({"step": 1, "encoder": Payload(marker)}, run_dir / rundir.CHECKPOINT)
    done = infomax("run", *LEAN, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{run_dir / rundir.CHECKPOINT} is damaged" in lines[0], lines
    assert "delete it to start this job's training again from step 0" in lines[0]
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


class Payload:
    """What an attacker puts in a torch file: unpickling it runs code (here: writes a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.mark.parametrize("name", [rundir.CHECKPOINT, rundir.ENCODER])
def test_a_crafted_torch_file_is_refused_and_its_payload_never_runs(tmp_path, name):
    import torch

    marker, path = tmp_path / "payload-ran", tmp_path / name
    torch.save({"encoder": Payload(marker)}, path)
    with pytest.raises(RunError, match=f"{path} is damaged or unsafe .*could run code"):
        store.load_torch(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is real: loaded the unsafe way, it runs
    assert marker.read_text() == "ran"


def test_a_full_disk_is_one_line_naming_the_file_and_the_old_file_stays(tmp_path, monkeypatch):
    import errno

    path = rundir.write_text(tmp_path / "loss.csv", "step\n1\n")

    def full(tmp):
        tmp.write_text("step\n1\n2")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RunError, match=f"cannot write {path}: no space left on device; free some"):
        rundir.atomic_write(path, full)
    assert path.read_text() == "step\n1\n" and [p.name for p in tmp_path.iterdir()] == ["loss.csv"]
    # torch's own writer reports a full disk as "[enforce fail at inline_container.cc]": save_torch
    # serialises in memory, so the write itself fails, with the same line
    monkeypatch.setattr(
        rundir.Path, "write_bytes", lambda self, data: full(self) if self.suffix else None
    )
    with pytest.raises(RunError, match=f"cannot write {tmp_path / 'checkpoint.pt'}: no space left"):
        rundir.save_torch(tmp_path / rundir.CHECKPOINT, {"step": 1})


RACE = """
import sys, time
from infomax_cli import dirlock
run_dir, slow, together = sys.argv[1], sys.argv[2] == "slow", sys.argv[3] == "together"
if slow:  # a run that is slow between reading the stale lock and taking it over
    read = dirlock._holder
    dirlock._holder = lambda path: (read(path), time.sleep(1.0))[0]
if together:  # imported: say so, and start when told (both at once)
    print("ready", flush=True)
    sys.stdin.readline()
if not slow:
    time.sleep(0.3)  # the slow run has read the stale lock by now
try:
    with dirlock.lock(run_dir):
        print("got", flush=True)
        time.sleep(1.5)
except dirlock.DirectoryBusy as e:
    print("busy", e, flush=True)
"""


@pytest.mark.slow
def test_two_runs_taking_over_one_stale_lock_at_once_cannot_both_hold_it(tmp_path):
    """The read-then-unlink race: a run reads a stale lock (its PID dead) and, before it takes it over,
    a second run takes it over and writes its own; the first must not then remove the second's fresh
    lock. Exactly one of the two runs holds the directory, and the other names it."""
    hold(tmp_path, dead_pid())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path), speed, "together"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for speed in ("slow", "fast")
    ]
    assert [p.stdout.readline() for p in procs] == ["ready\n"] * 2
    for p in procs:  # both started at once
        p.stdin.write("go\n")
        p.stdin.flush()
    out = [p.communicate(timeout=60)[0] for p in procs]
    assert sorted(o.split()[0] for o in out) == ["busy", "got"], out
    busy = next(o for o in out if o.startswith("busy"))
    assert (
        f"(PID {procs[out.index(busy) ^ 1].pid})" in busy
    )  # the holder is named, not the dead run
    assert not (tmp_path / rundir.LOCK).exists()


def test_a_lock_whose_run_was_killed_is_taken_over(tmp_path):
    """SIGKILL leaves the lock file with the dead run's PID; the kernel has dropped its flock."""
    holder = subprocess.Popen(
        [sys.executable, "-c", RACE, str(tmp_path), "fast", "alone"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().startswith("got")
    with pytest.raises(dirlock.DirectoryBusy, match=f"PID {holder.pid}\\)"), dirlock.lock(tmp_path):
        pass
    holder.kill()
    holder.wait()
    assert (tmp_path / rundir.LOCK).read_text().split()[0] == str(holder.pid)
    with dirlock.lock(tmp_path):
        assert (tmp_path / rundir.LOCK).read_text().split()[0] == str(os.getpid())
