"""The information plane of a job: every `measure.infoplane_every` steps the mean MI between a fixed
probe batch and each recorded layer's maps (measure.layer_mi), kept in infoplane.csv."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from . import rundir, store
from .config import Config
from .errors import Damaged, RunError
from .measure import NotFinite, layer_mi, not_finite

if TYPE_CHECKING:
    from .experiment import Parts


class InfoPlane:
    """Every `measure.infoplane_every` steps, the mean MI between a fixed probe batch and each layer's
    maps, appended to infoplane.csv (rewritten atomically). A run from step 0 starts the file again
    with the untrained encoder's row; a resumed run keeps the rows up to its checkpoint and measures
    those past it again."""

    def __init__(self, run_dir: Path, cfg: Config, parts: Parts, resuming: bool):
        self.path, self.cfg, self.parts = run_dir / rundir.INFOPLANE, cfg, parts
        self.seconds = 0.0  # spent measuring and writing the rows
        self.probe = parts.images(torch.arange(min(cfg.measure.probe_images, len(parts.images))))
        self.rows = []
        if resuming and os.path.lexists(self.path):
            try:
                table = store.files.read_csv(run_dir, self.path)
                if missing := [c for c in rundir.INFOPLANE_COLUMNS if c not in table.columns]:
                    raise Damaged(f"{self.path} lacks the column(s) {', '.join(missing)}")
            except Damaged as e:
                raise RunError(
                    f"{e}: delete it to resume without the information plane's earlier rows."
                ) from None
            self.rows = table.to_dict("records")
        self.resumed_at = None if resuming else 0
        if not resuming:
            self.record(0)

    def record(self, step: int) -> None:
        if self.resumed_at is None:  # the first step after the checkpoint's: rows past that go
            self.resumed_at = step - 1
            self.rows = [r for r in self.rows if r["step"] <= self.resumed_at]
        every = self.cfg.measure.infoplane_every
        if not every or step % every:
            return
        t0 = time.perf_counter()
        self.rows = [r for r in self.rows if r["step"] < step]
        p = self.parts
        try:
            mi = layer_mi(
                p.encoder, p.recorder, self.probe, self.cfg.measure, self.cfg.seed, p.geom
            )
        except NotFinite as e:
            where = f"step {step}, the information plane's probe batch (measure.probe_images)"
            raise not_finite(self.cfg, e, where) from None
        self.rows += [{"step": step, "layer": k, "mi": v} for k, v in enumerate(mi, start=1)]
        rundir.write_csv(self.path, pd.DataFrame(self.rows, columns=rundir.INFOPLANE_COLUMNS))
        self.seconds += time.perf_counter() - t0
