"""One round of `infomax settle`: an `infomax run -m` in a process group of its own, the signals passed
on to it, its output in the sweep's settle.log, its progress."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .. import rundir, store
from ..errors import RunError, printable

POLL_SECONDS = 1.0
_SEED_IN_NAME = re.compile(r"(?:^|,)seed=(\d+)(?:,|$)")


# ------------------------------------------------------------------------------------ the signals
class Relay:
    """SIGINT and SIGTERM while settle runs: remembered (the first names the exit status), and passed
    to the round's process group once per signal received (its jobs checkpoint and stop; a second
    Ctrl-C stops them at once, as it does a job run by hand)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.child: subprocess.Popen | None = None
        self.passed = 0
        self.received = 0
        self._old: dict = {}

    def __enter__(self) -> Relay:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum: int, frame) -> None:
        self.name = self.name or signal.Signals(signum).name
        self.received += 1
        self.pass_on(signum)

    def pass_on(self, signum: int | None = None) -> None:
        """Send the signals received and not yet passed to the round's process group."""
        child = self.child
        while child is not None and child.poll() is None and self.passed < self.received:
            try:
                os.killpg(child.pid, signum or signal.Signals[self.name].value)
            except ProcessLookupError:
                return
            self.passed += 1

    @property
    def code(self) -> int:
        return 128 + signal.Signals[self.name].value if self.name else 0


# ------------------------------------------------------------------------------------- one round
@dataclass
class Round:
    """One round: its number, its `infomax run -m` arguments and seeds, and how it ended."""

    number: int
    args: list[str]
    seeds: list[int]
    rc: int = 0
    budget_stopped: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def open_log(sweep_dir: Path) -> int:
    """DIR/settle.log opened for appending (and reading back a round's lines), never through a link."""
    path = sweep_dir / rundir.SETTLE_LOG
    try:
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise RunError(f"cannot write {path}: {(e.strerror or str(e)).lower()}.") from None


def finished_at(sweep_dir: Path, seeds: set[int]) -> int:
    """How many job directories at these seeds (by their names) hold a finished job: the progress."""
    n = 0
    for d in sweep_dir.iterdir() if sweep_dir.is_dir() else ():
        m = _SEED_IN_NAME.search(d.name)
        if m and int(m[1]) in seeds and rundir.is_finished(d):
            n += 1
    return n


def run_round(
    r: Round, sweep_dir: Path, log_fd: int, relay: Relay, deadline: float | None, show
) -> Round:
    """`infomax run -m ARGS` in a process group of its own, its output appended to settle.log; at the
    deadline it is stopped as Ctrl-C stops it. `show(done)` hears the finished jobs every second."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    line = f"\n=== infomax settle, round {r.number}, {stamp}: infomax run -m {shlex.join(r.args)}\n"
    os.write(log_fd, line.encode())
    start = os.lseek(log_fd, 0, os.SEEK_END)
    t0 = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "infomax_cli.cli", "run", "-m", *r.args]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT, env=env,
        process_group=0,
    )  # fmt: skip
    relay.child = proc
    try:
        while True:
            relay.pass_on()
            try:
                r.rc = proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            show(finished_at(sweep_dir, set(r.seeds)))
            late = deadline is not None and time.monotonic() >= deadline
            if late and not r.budget_stopped and relay.name is None:
                os.killpg(proc.pid, signal.SIGINT)  # the budget is spent: checkpoint and stop
                r.budget_stopped = True
    finally:
        relay.child = None
    r.seconds = time.monotonic() - t0
    r.errors = _error_lines(log_fd, start)
    return r


def _error_lines(log_fd: int, start: int, most: int = 5, limit: int = 1 << 20) -> list[str]:
    """The round's one-line failures (`infomax: ...`) from its part of settle.log."""
    end = os.lseek(log_fd, 0, os.SEEK_END)
    text = os.pread(log_fd, min(end - start, limit), max(start, end - limit)).decode(
        errors="replace"
    )
    lines = [printable(x.strip()) for x in text.splitlines() if x.startswith("infomax:")]
    return list(dict.fromkeys(lines))[-most:]


def any_finished(sweep_dir: Path) -> bool:
    return sweep_dir.is_dir() and any(rundir.is_finished(d) for d in sweep_dir.iterdir())


def any_jobs(sweep_dir: Path) -> bool:
    return sweep_dir.is_dir() and any(rundir.is_job_dir(d) for d in sweep_dir.iterdir())


def seeds_of(overrides: list[str]) -> list[int]:
    """The seeds a `seed=` override lists (Hydra's grammar: a list, a range); [] when none does."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found = [o for o in overrides if store.override_key(o) == "seed"]
    if not found:
        return []
    try:
        parsed = OverridesParser.create().parse_override(found[-1])
        values = (
            list(parsed.sweep_string_iterator()) if parsed.is_sweep_override() else [parsed.value()]
        )
        return [int(v) for v in values]
    except Exception:  # noqa: BLE001 - Hydra's grammar on text from a file: no seeds, then
        return []


def job_count(args: list[str]) -> int | None:
    """How many jobs `infomax run -m ARGS` launches (Hydra's basic sweep of its non-hydra overrides);
    None when they do not parse (Hydra then says why)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        task = [a for a in args if not a.startswith(("hydra.", "hydra/"))]
        parsed = OverridesParser.create().parse_overrides(task)
        return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))
    except Exception:  # noqa: BLE001 - Hydra's grammar: the bar then has no total
        return None


class Live:
    """While a round runs, on a terminal (stderr): the budget spent and the round's jobs finished."""

    def __init__(self, r: Round, hours: float | None, t0: float):
        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), console=console, transient=True,
            disable=not console.is_terminal,
        )  # fmt: skip
        self.budget = round(3600 * hours) if hours else None
        self.t0 = t0
        self.clock = self.progress.add_task(
            "budget (s)", total=self.budget, info="", visible=self.budget is not None
        )
        total = job_count(r.args)
        self.jobs = self.progress.add_task(f"round {r.number}: jobs finished", total=total, info="")

    def show(self, done: int) -> None:
        elapsed = time.monotonic() - self.t0
        self.progress.update(self.clock, completed=min(elapsed, self.budget or 0))
        self.progress.update(self.jobs, completed=done, info=f"{elapsed / 3600:.2f} h in all")

    def __enter__(self) -> Live:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()
