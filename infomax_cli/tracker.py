"""Run trackers (the `logger` config group, `logger=none|tensorboard`): what a run reports besides its own
files and the terminal (named trackers so as not to be taken for the stdlib `logging` loggers).

`make_tracker(cfg.logger, run_dir)` gives an object with three calls, made by `experiment.run_job`:
`step(step, row)` after every training step (the row loss.csv gets: every numeric value is logged),
`finish(summary, examples)` once at the end (the final MI summaries and the example images' best maps),
and `close()`. `logger=tensorboard` writes TensorBoard event files into the run directory itself, so
`tensorboard --logdir outputs/` shows every run, and a sweep's jobs side by side, named by their folders.
"""

from __future__ import annotations

import atexit
import math
from pathlib import Path
from typing import Any

import numpy as np

from .choices import LoggerKind
from .config import LoggerConfig
from .errors import ConfigError
from .rundir import PRIOR_DISC, TERMS

INSTALL_HINT = 'pip install "infomax[tensorboard]" (in a checkout: make install, or pip install -e ".[tensorboard]")'
LOSS_TERMS = ("loss", *TERMS, PRIOR_DISC)
BEST_MAPS = 8  # maps shown beside each example image, best MI first


class NullTracker:
    """`logger=none`: nothing beyond the run directory's files."""

    def step(self, step: int, row: dict) -> None:
        pass

    def finish(self, summary: dict, examples: dict) -> None:
        pass

    def close(self) -> None:
        pass


def make_tracker(cfg: LoggerConfig, run_dir: Path) -> NullTracker:
    """The tracker `cfg.kind` names (the `logger` config group); ConfigError (exit 2) when its
    package is not installed."""
    kind = cfg.kind
    if kind == LoggerKind.none:
        return NullTracker()
    if kind == LoggerKind.tensorboard:
        require_tensorboard()
        return TensorBoardTracker(Path(run_dir))
    raise ConfigError(f"logger={kind} is unknown: use logger=none or logger=tensorboard.")


def require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"logger=tensorboard needs the tensorboard package: {INSTALL_HINT}; or use logger=none."
        ) from None


def scalar_tag(key: str) -> str:
    """loss.csv's columns grouped in TensorBoard: the loss terms under loss/, the objective's own MI
    estimates (columns ending in _mi) under objective_mi/, anything else under train/."""
    if key in LOSS_TERMS:
        return f"loss/{key}"
    if key.endswith("_mi"):
        return f"objective_mi/{key}"
    return f"train/{key}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _unit(a: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] by its own min and max (a constant map: 0)."""
    a = np.asarray(a, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


class TensorBoardTracker(NullTracker):
    """Event files in the run directory. The writer opens at the first value, with `purge_step` at that step:
    a resumed run (or one redone with overwrite=true) hides the values an earlier process logged from that
    step on, so every step appears once."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._writer = None

    def _open(self, purge_step: int | None):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                log_dir=str(self.run_dir), purge_step=purge_step, flush_secs=10
            )
            # a run that stops (error, signal) still flushes what it logged
            atexit.register(self.close)
        return self._writer

    def step(self, step: int, row: dict) -> None:
        writer = self._open(step)
        for key, value in row.items():
            if key != "step" and (v := _number(value)) is not None:
                writer.add_scalar(scalar_tag(key), v, step)

    def finish(self, summary: dict, examples: dict) -> None:
        """The summary's MI values (mi_*) as scalars at the last step, and for each example image a strip:
        the image, then its best maps by MI (each scaled to its own range), with their MI as text."""
        import torch
        from torchvision.utils import make_grid

        step = int(summary.get("steps", 0))
        writer = self._open(None)
        for key, value in summary.items():
            if key.startswith("mi_") and (v := _number(value)) is not None:
                writer.add_scalar(f"measure/{key}", v, step)
        for name, (image, maps, mi) in sorted(examples.items()):
            mi = np.asarray(mi, dtype=np.float64)
            best = np.argsort(-mi, kind="stable")[:BEST_MAPS]
            tiles = torch.from_numpy(np.stack([_unit(image), *(_unit(maps[c]) for c in best)]))[
                :, None
            ]
            grid = make_grid(tiles, nrow=len(tiles), padding=2, pad_value=1.0)
            writer.add_image(f"features/{name}", grid, step)
            listing = ", ".join(f"map {int(c)}: {mi[c]:.3f}" for c in best)
            writer.add_text(
                f"features/{name}", f"the image, then its best maps by MI (nats): {listing}", step
            )
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
