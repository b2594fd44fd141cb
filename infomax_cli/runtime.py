"""Where and how a job runs: the device, CPU threads, the stop signals, the progress display and the
provenance a summary records, the clock of a job's phases. Nothing here knows what a job computes."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numba
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .choices import DeviceKind
from .config import DeviceConfig
from .errors import ConfigError

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGUSR2")  # SIGUSR2: the slurm preset's time-limit warning
PROVENANCE_PACKAGES = ("infomax", "torch", "torchvision", "numpy", "hydra-core")


def pick_device(kind: DeviceKind) -> torch.device:
    if kind == DeviceKind.cpu:
        return torch.device("cpu")
    if kind == DeviceKind.cuda and not torch.cuda.is_available():
        raise ConfigError(
            "device=cuda but no CUDA device is visible: use device=cpu or device=auto."
        )
    if not torch.cuda.is_available():
        return torch.device("cpu")
    # the jobs of a multirun launched side by side (joblib) take the GPUs in turn
    return torch.device("cuda", _job_number() % torch.cuda.device_count())


def _job_number() -> int:
    if not HydraConfig.initialized():
        return 0
    num = OmegaConf.select(HydraConfig.get(), "job.num", default=None, throw_on_missing=False)
    return int(num) if isinstance(num, int) else 0  # a single run has no job number


_DEFAULT_THREADS: list[int] = []  # torch's thread count before any job set it


def set_threads(n: int | None) -> int:
    """Give torch (and numba's kernels) n CPU threads, or torch's default for None; return the count."""
    if not _DEFAULT_THREADS:
        _DEFAULT_THREADS.append(torch.get_num_threads())
    n = n or _DEFAULT_THREADS[0]
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return n


class StopFlag:
    """SIGINT/SIGTERM (and SIGUSR2, the time-limit warning the slurm preset asks for) set a flag that
    training and measurement poll between steps (then checkpoint)."""

    def __init__(self) -> None:
        self.name: str | None = None

    def __call__(self) -> str | None:
        return self.name

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        def handler(signum, frame):
            if self.name is not None:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.name = signal.Signals(signum).name

        signals = (getattr(signal, n) for n in STOP_SIGNALS if hasattr(signal, n))
        old = {s: signal.signal(s, handler) for s in signals}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def progress(enabled: bool) -> Progress:
    """A rich progress display, quiet when stderr is not a terminal."""
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(
        *columns,
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )


def versions() -> dict[str, str]:
    out = {}
    for pkg in PROVENANCE_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict:
    """What a summary records about the software that produced it."""
    return {"versions": versions(), "git_commit": git_commit()}


@dataclass
class Runtime:
    """A running job's device, thread count, stop flag (polled between steps) and progress bar."""

    device: torch.device
    threads: int
    stop: StopFlag
    bar: Progress

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator[int]:
        """A progress bar row for the phase inside the block (removed after it)."""
        task = self.bar.add_task(description, total=total, info="")
        try:
            yield task
        finally:
            self.bar.remove_task(task)


@dataclass
class PhaseClock:
    """Wall seconds of each phase of a job, in order: summary.json's `phase_seconds`. `lap(name)` ends
    a phase (the seconds since the last lap, or since the clock was made) and `split` moves a part
    timed inside one phase into a phase of its own, so the phases never overlap and add up to the
    job's time from `run_job`'s start to the summary's write."""

    seconds: dict[str, float] = field(default_factory=dict)
    last: float = field(default_factory=lambda: time.perf_counter())  # the last lap

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now

    def split(self, whole: str, part: str, seconds: float) -> None:
        """`seconds` of phase `whole` were spent on `part`: count them there instead."""
        self.seconds[whole] -= seconds
        self.seconds[part] = self.seconds.get(part, 0.0) + seconds

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


@contextlib.contextmanager
def session(cfg: DeviceConfig, show_progress: bool = True) -> Iterator[Runtime]:
    """The job's runtime: the device and threads chosen, the stop signals caught, a progress display."""
    device = pick_device(cfg.kind)
    threads = set_threads(cfg.threads)
    stop = StopFlag()
    with stop.installed(), progress(show_progress) as bar:
        yield Runtime(device, threads, stop, bar)
