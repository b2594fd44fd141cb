"""The one door for everything infomax reads back from a run or sweep directory.

`files` opens a file only when it is a regular file inside the directory, within its size bound (YAML
with bounded aliases, PNG signatures checked); `layout` holds the format version (`FORMAT`), the one
migration of an older format and the contract's checks of a job's summary and tables. Here: a job
directory as a typed `Job` (its summary checked and migrated, each table checked once, on first use),
the job directories of a sweep, and the small records a directory holds (the config a run remembers,
why a job stopped, a sweep's own record). Nothing read here is instantiated or executed: configs come
out as plain data.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from .. import rundir
from ..errors import ConfigError, Damaged, printable
from . import files, layout
from .files import inside, load_torch, read_json, read_yaml
from .layout import FORMAT, FormatRefused

__all__ = ["FORMAT", "Damaged", "FormatRefused", "Job", "load_torch", "read_json", "read_yaml"]

log = logging.getLogger("infomax")


@dataclass(eq=False)
class Job:
    """One job directory, read through the door. `summary`: its summary.json checked and brought to
    FORMAT (None: the job has not finished); `problem`: why it cannot be used (damaged, refused, too
    old), naming the file; `root`: the directory the user named, which no file read may leave. The
    tables are read and checked on first use, once (or handed in by the job that has just written them:
    `Job.written`)."""

    path: Path
    overrides: list[str]
    summary: dict | None
    problem: str | None = None
    root: Path | None = None
    written_format: int = FORMAT

    @classmethod
    def read(cls, path: Path, root: Path | None = None) -> Job:
        """The job in `path` (inside `root`, default itself): its overrides and summary; a summary that
        cannot be read makes `problem`, not an exception."""
        path = Path(path)
        job = cls(path, job_overrides(path, root or path), None, root=root or path)
        try:
            read = read_summary(path, job.root)
        except Damaged as e:
            job.problem = str(e)
            return job
        if read is not None:
            job.summary, job.written_format = read
        return job

    @classmethod
    def written(
        cls, path: Path, summary: dict, per_image: pd.DataFrame, per_map: pd.DataFrame, loss
    ) -> Job:
        job = cls(Path(path), [], summary, root=Path(path))
        job.__dict__.update(per_image=per_image, per_map=per_map, loss=loss)  # the cached tables
        return job

    @property
    def case(self) -> str:
        """The case's name, as a terminal, a page or a picture may show it (`printable`)."""
        return printable(self.summary["case"])

    @property
    def seed(self) -> int:
        return int(self.summary["seed"])

    @property
    def setting(self) -> str:
        """The job's overrides other than case and seed: jobs of one setting are compared together."""
        keep = (o for o in self.overrides if override_key(o) not in ("case", "seed"))
        return ",".join(keep)

    @property
    def name(self) -> str:
        """The directory's name as a terminal may show it."""
        return printable(self.path.name)

    def _table(self, name: str) -> pd.DataFrame:
        path = self.path / name
        return layout.table(
            name, files.read_csv(self.root, path), self.summary, self.written_format, path
        )

    @cached_property
    def per_image(self) -> pd.DataFrame:
        return self._table(rundir.MI_PER_IMAGE)

    @cached_property
    def per_map(self) -> pd.DataFrame:
        return self._table(rundir.MI_PER_MAP)

    @cached_property
    def loss(self) -> pd.DataFrame:
        return self._table(rundir.LOSS_CSV)

    def damage(self) -> str | None:
        """What is wrong with a finished job's tables against the contract, naming the file (None when
        nothing is); the tables are then read, checked and kept."""
        try:
            n = len(self.per_image)
            if self.per_image["image_id"].isin(self.per_map["image_id"]).sum() != n:
                return f"{self.path / rundir.MI_PER_MAP} lacks images of {rundir.MI_PER_IMAGE}"
            if len(self.loss) == 0:  # read and checked like the others
                return f"{self.path / rundir.LOSS_CSV} has no rows"
        except Damaged as e:
            return str(e)
        return None

    @cached_property
    def examples(self) -> dict:
        """name -> (image, maps, mi) of the example images (features/examples.npz), as float32; {}
        (with a warning) when there is none or it cannot be read."""
        path = self.path / rundir.FEATURES / rundir.EXAMPLES_NPZ
        if not os.path.lexists(path):
            return {}
        try:
            z = files.read_npz(self.root, path)
            names = sorted({k.rsplit(".", 1)[0] for k in z})
            return {
                n: (
                    z[f"{n}.image"].astype("float32"),
                    z[f"{n}.maps"].astype("float32"),
                    z[f"{n}.mi"],
                )
                for n in names
            }
        except (Damaged, KeyError) as e:
            log.warning(f"{printable(path)} is damaged ({printable(e)}): its maps are not shown.")
            return {}

    @cached_property
    def pictures(self) -> dict[str, bytes]:
        """name -> PNG bytes of the example pictures the job drew (features/NAME.png); a file that is not
        a PNG picture inside the directory is left out, with a warning."""
        folder = self.path / rundir.FEATURES
        if not folder.is_dir() or folder.is_symlink():
            return {}
        out = {}
        for p in sorted(folder.glob("*.png")):
            if (data := self._png(p)) is not None:
                out[printable(p.stem)] = data
        return out

    @property
    def loss_png(self) -> bytes | None:
        """The loss picture the job drew (loss.png), or None."""
        path = self.path / rundir.LOSS_PNG
        return self._png(path) if os.path.lexists(path) else None

    def _png(self, path: Path) -> bytes | None:
        try:
            return files.read_png(self.root, path)
        except Damaged as e:
            log.warning(f"{printable(e)}.")
            return None

    @property
    def config_text(self) -> str | None:
        """The job's .hydra/config.yaml as text (for the report's page), None when it has none or it
        cannot be read."""
        path = self.path / rundir.HYDRA_CONFIG
        if not os.path.lexists(path):
            return None
        try:
            return files.read_text(self.root, path, "yaml")
        except Damaged as e:
            log.warning(f"{printable(e)}.")
            return None

    def study_examples(self) -> list[int]:
        """The image ids of the study's example images (a cat and a horse)."""
        return [int(i) for i in self.summary["study_examples"]]


def override_key(override: str) -> str:
    """The key of an override as typed (`+case.encoder.width=8` -> `case.encoder.width`)."""
    return override.split("=")[0].lstrip("+~")


def read_summary(run_dir: Path, root: Path | None = None) -> tuple[dict, int] | None:
    """The job's summary checked and brought to FORMAT, with the format it was written in; None when
    the job has not finished (no summary.json); Damaged (one line naming it) when it cannot be read."""
    path = Path(run_dir) / rundir.SUMMARY
    if not os.path.lexists(path):
        return None
    return layout.summary(read_json(root or run_dir, path), path)


def job_overrides(job_dir: Path, root: Path) -> list[str]:
    """The job's overrides (.hydra/overrides.yaml, a list of strings; its directory name when that is
    missing or unreadable)."""
    path = job_dir / rundir.HYDRA_OVERRIDES
    try:
        overrides = read_yaml(root, path) if os.path.lexists(path) else None
    except Damaged:
        overrides = None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        return job_dir.name.split(",")
    return list(overrides)


def job_dirs(sweep_dir: Path) -> list[Job]:
    """Every job directory of a sweep, finished or not, each read as a Job; an entry that is a link
    leaving the sweep directory is a Job whose problem says so (it is not read)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(
            f"{sweep_dir} is not a directory: give the sweep directory of an `infomax run -m` multirun."
        )
    jobs = []
    for d in sorted(sweep_dir.iterdir()):
        try:
            real = inside(sweep_dir, d)
        except Damaged as e:
            if d.is_dir():
                jobs.append(Job(d, d.name.split(","), None, str(e), sweep_dir))
            continue
        if real.is_dir() and rundir.is_job_dir(d):
            jobs.append(Job.read(d, sweep_dir))
    return jobs


def remembered_config(run_dir: Path, root: Path | None = None) -> dict[str, Any] | None:
    """The config that made the run in `run_dir` (.hydra/config.yaml, inside `root`: default the run
    directory) as plain data; None when the directory has none; Damaged when it cannot be read or is
    not a mapping."""
    path = Path(run_dir) / rundir.HYDRA_CONFIG
    if not os.path.lexists(path):
        return None
    tree = read_yaml(root or run_dir, path)
    if not isinstance(tree, dict):
        raise Damaged(f"{path} is damaged (not a config: a {type(tree).__name__})")
    return tree


def read_failure(run_dir: Path) -> dict[str, Any] | None:
    """Why a job stopped (failed.json: `exit_code`, `message`), or None when it has none or it cannot be
    read as that."""
    path = Path(run_dir) / rundir.FAILED
    try:
        data = read_json(run_dir, path) if os.path.lexists(path) else None
    except Damaged:
        return None
    if isinstance(data, dict) and isinstance(data.get("exit_code"), int):
        return {"exit_code": int(data["exit_code"]), "message": str(data.get("message", ""))}
    return None


@dataclass
class SweepRecord:
    """What a sweep directory says of itself: the overrides it was started with (multirun.yaml's
    `hydra.overrides.task` and `.hydra`, strings; None when it has none or cannot be read, with
    `problem`)."""

    task: list[str] | None = None
    hydra: list[str] = field(default_factory=list)
    problem: str | None = None


def sweep_record(sweep_dir: Path) -> SweepRecord:
    """The sweep's multirun.yaml (Hydra's record) read as data, and its sweep.json's format checked (a
    newer format is Damaged: one line)."""
    sweep_dir = Path(sweep_dir)
    own = sweep_dir / rundir.SWEEP_JSON
    if os.path.lexists(own):
        data = read_json(sweep_dir, own)
        if isinstance(data, dict):
            layout.version(data, own)
    path = sweep_dir / rundir.MULTIRUN
    if not os.path.lexists(path):
        return SweepRecord()
    try:
        data = read_yaml(sweep_dir, path)
    except Damaged as e:
        return SweepRecord(problem=str(e))
    if not isinstance(data, dict):
        return SweepRecord(problem=f"{path} is damaged (not a mapping)")
    node = data.get("hydra")
    overrides = node.get("overrides") if isinstance(node, dict) else None
    if not isinstance(overrides, dict):  # it says nothing of the sweep's overrides
        return SweepRecord()
    task, hydra = overrides.get("task"), overrides.get("hydra") or []
    if not all(
        isinstance(x, list) and all(isinstance(o, str) for o in x) for x in (task or [], hydra)
    ):
        return SweepRecord(problem=f"{path} is damaged (its overrides are not lists of strings)")
    return SweepRecord(None if task is None else list(task), list(hydra))
