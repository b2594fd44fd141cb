"""The run directory's lock (rundir.LOCK, `.infomax.lock`): one run at a time in a directory. An flock
on the file, which the kernel releases however its process ends, with the holder's PID and host in it
for the message a second run prints (DirectoryBusy: one line, nothing touched)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import Refused, RunError
from .rundir import LOCK

log = logging.getLogger("infomax")

# How long a run that finds the lock held waits for its holder to write its PID (for the message).
LOCK_WRITE_SECONDS = 2.0


class DirectoryBusy(Refused):
    """Another live run holds the directory: this run stops before touching any of its files."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _holder(path: Path) -> tuple[int, str] | None:
    try:
        pid, _, host = path.read_text().strip().partition(" ")
        return int(pid), host
    except (OSError, ValueError):
        return None


def _flock(fd: int) -> bool:
    """An exclusive flock on fd without waiting: False when another open file holds it. Where the file
    system has no flock, True (the PID in the file is then the only guard)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        log.debug(f"flock is not available here ({e.strerror}): the lock relies on its PID")
    return True


def _is_file_of(fd: int, path: Path) -> bool:
    """Whether `path` is still the file fd has open (not removed or replaced by its holder's end)."""
    try:
        st, here = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def _busy(run_dir: Path, path: Path, holder: tuple[int, str] | None) -> DirectoryBusy:
    host = socket.gethostname()
    who = "PID unknown" if holder is None else f"PID {holder[0]}"
    where = "" if holder is None or holder[1] == host else f" on {holder[1]}"
    return DirectoryBusy(
        f"{run_dir} is in use by another infomax run ({who}{where}): wait for it to end, or give "
        "this run another directory (hydra.run.dir=... or hydra.sweep.dir=...); if that run is gone, "
        f"delete {path}."
    )


def _held_by(path: Path) -> tuple[int, str] | None:
    """The PID and host a held lock names, once its holder has written them (a moment after taking it)."""
    deadline = time.monotonic() + LOCK_WRITE_SECONDS
    while True:
        holder = _holder(path)
        live = holder is not None and (holder[1] != socket.gethostname() or _alive(holder[0]))
        if live or time.monotonic() > deadline:
            return holder
        time.sleep(0.05)


def _take(run_dir: Path, path: Path) -> int:
    """Open and flock DIR/.infomax.lock, write this run's PID and host in it; the open fd."""
    me, host = os.getpid(), socket.gethostname()
    while True:
        # never through a link, never a FIFO or device: the lock's truncate and write stay in the folder
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunError(f"{path} is not a regular file: delete it, then run again.")
            if not _flock(fd):
                raise _busy(run_dir, path, _held_by(path))
            if not _is_file_of(fd, path):  # its holder ended and removed it meanwhile: again
                os.close(fd)
                continue
            holder = _holder(path)
            if holder is not None and holder != (me, host):
                pid, other = holder
                # another host's run cannot be checked from here; a live PID without the flock is a
                # run of an older infomax (or a file system without flock)
                if other != host or _alive(pid):
                    raise _busy(run_dir, path, holder)
                log.warning(f"{run_dir}: the run that locked it (PID {pid}) has died: taken over.")
            os.ftruncate(fd, 0)
            os.write(fd, f"{me} {host}\n".encode())
            return fd
        except BaseException:
            os.close(fd)
            raise


@contextlib.contextmanager
def lock(run_dir: Path) -> Iterator[None]:
    """Hold DIR/.infomax.lock while a job runs in DIR. Atomic: the lock is an flock on the file, which
    the kernel releases when its process ends however it ends, so of runs started together exactly
    one takes it (a stale lock included). A lock held by another run, or naming a live process or
    another host: DirectoryBusy, one line naming the directory and the other run's PID. The file is
    removed when the job ends, however it ends."""
    path = Path(run_dir) / LOCK
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        fd = _take(Path(run_dir), path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RunError(
                f"{path} is a link: infomax writes no file through a link; delete it."
            ) from None
        raise RunError(
            f"cannot write the run directory {run_dir}: {(e.strerror or str(e)).lower()}; set "
            "hydra.run.dir (hydra.sweep.dir with -m) to a writable folder."
        ) from None
    try:
        yield
    finally:
        if _is_file_of(fd, path):  # removed while still held: the next run finds no stale file
            path.unlink(missing_ok=True)
        os.close(fd)
