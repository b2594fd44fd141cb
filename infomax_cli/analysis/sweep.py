"""A run or sweep directory loaded once: its finished jobs, each job's tables read once, and the long
frames the statistics and claims are computed from. Nothing here computes a statistic or draws."""

from __future__ import annotations

import logging
import shlex
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # Hydra's own expansion
from hydra.core.override_parser.overrides_parser import OverridesParser

from .. import rundir
from ..errors import ConfigError, RunError, first_line
from ..rundir import SETTING

log = logging.getLogger("infomax")

EXAMPLE_PHOTOS = ("chelsea", "horse")  # the embedded set's stand-ins for the study's cat and horse
NOT_NUMERIC = (
    "image_id",
    "label",
    "group",
    "best_map",
)  # mi_per_image columns that are not statistics


# the columns compare and report need (the contract's, less those older runs lack: group)
PER_IMAGE_NEEDS = ("image_id", "label", "mi_mean", "mi_max")
PER_MAP_NEEDS = ("image_id", "map", "mi")
LOSS_NEEDS = ("step", "loss", "local", "global", "prior")


@dataclass(eq=False)
class Job:
    """One job directory. Its tables are read on first use, once (or handed in by the job that has
    just written them: `Job.written`). `problem`: what is wrong with its files, when something is."""

    path: Path
    overrides: list[str]
    summary: dict | None
    problem: str | None = None

    @classmethod
    def written(
        cls,
        path: Path,
        summary: dict,
        per_image: pd.DataFrame,
        per_map: pd.DataFrame,
        loss: pd.DataFrame,
    ) -> Job:
        job = cls(Path(path), [], summary)
        # the cached properties
        job.__dict__.update(per_image=per_image, per_map=per_map, loss=loss)
        return job

    @property
    def case(self) -> str:
        return str(self.summary["case"])

    @property
    def seed(self) -> int:
        return int(self.summary.get("seed", 0))

    @property
    def setting(self) -> str:
        """The job's overrides other than case and seed: jobs of one setting are compared together."""
        keep = (o for o in self.overrides if o.split("=")[0].lstrip("+~") not in ("case", "seed"))
        return ",".join(keep)

    @cached_property
    def per_image(self) -> pd.DataFrame:
        t = rundir.read_table(self.path / rundir.MI_PER_IMAGE)
        if "group" not in t.columns:  # written before `group` existed: the photograph, or the image
            photo = self.summary.get("dataset") == "samples" and "label" in t.columns
            t.insert(2, "group", t["label"] if photo else t["image_id"])
        return t.assign(group=t["group"].astype(str))

    @cached_property
    def per_map(self) -> pd.DataFrame:
        return rundir.read_table(self.path / rundir.MI_PER_MAP)

    @cached_property
    def loss(self) -> pd.DataFrame:
        return rundir.read_table(self.path / rundir.LOSS_CSV)

    def damage(self) -> str | None:
        """What is wrong with a finished job's tables against the contract, naming the file (None when
        nothing is): unreadable, a column missing, a row count other than summary.json's, a NaN."""
        n = self.summary.get("n_images")
        n = n if isinstance(n, int) and not isinstance(n, bool) else None
        try:
            checks = [
                (rundir.MI_PER_IMAGE, self.per_image, PER_IMAGE_NEEDS, n, ("label", "group")),
                (rundir.MI_PER_MAP, self.per_map, PER_MAP_NEEDS, None, ("label",)),
                (rundir.LOSS_CSV, self.loss, LOSS_NEEDS, None, ()),
            ]
        except rundir.Damaged as e:
            return str(e)
        for name, table, needs, rows, text in checks:
            if missing := [c for c in needs if c not in table.columns]:
                return f"{self.path / name} lacks the column(s) {', '.join(missing)}"
            if problem := _table_problem(table, rows, text):
                return f"{self.path / name} {problem}"
        if n is not None and len(self.per_map) % n:
            rows = len(self.per_map)
            return (
                f"{self.path / rundir.MI_PER_MAP} has {rows} rows, not n_images={n} times the maps"
            )
        if self.per_image["image_id"].duplicated().any():
            return f"{self.path / rundir.MI_PER_IMAGE} lists an image twice"
        return None

    @cached_property
    def examples(self) -> dict:
        """name -> (image, maps, mi) of the example images (features/examples.npz); {} (with a warning)
        when the file cannot be read."""
        try:
            return rundir.load_example_maps(self.path)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as e:
            log.warning(
                f"{self.path / rundir.FEATURES / rundir.EXAMPLES_NPZ} is damaged ({e}): its maps are not shown."
            )
            return {}

    @cached_property
    def pictures(self) -> dict[str, Path]:
        """name -> features/NAME.png, the example pictures the job drew."""
        return {p.stem: p for p in sorted((self.path / rundir.FEATURES).glob("*.png"))}

    @property
    def loss_png(self) -> Path | None:
        """The loss picture the job drew (loss.png), or None."""
        path = self.path / rundir.LOSS_PNG
        return path if path.is_file() else None

    @property
    def config_text(self) -> str | None:
        path = self.path / rundir.HYDRA_CONFIG
        return path.read_text(errors="replace") if path.is_file() else None

    def study_examples(self) -> list[int]:
        """The image ids of the study's example images (a cat and a horse)."""
        ids = self.summary.get("study_examples")
        if ids is not None:
            return [int(i) for i in ids]
        t = self.per_image  # runs written before study_examples: the embedded set's first crops
        if self.summary.get("dataset") == "samples" and "label" in t.columns:
            first = t.groupby(t["label"].astype(str))["image_id"].min()
            return [int(first[p]) for p in EXAMPLE_PHOTOS if p in first.index]
        return []


@dataclass
class Sweep:
    """A run (kind 'run', one job) or a sweep (kind 'sweep'): its finished jobs sorted by case, seed
    and directory; the unfinished ones and those never started, which are left out."""

    path: Path
    kind: str
    jobs: list[Job]
    unfinished: list[Job] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # the overrides of jobs never started
    damaged: list[Job] = field(default_factory=list)  # finished, but a file breaks the contract

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(j.case for j in self.jobs))

    @property
    def several(self) -> bool:
        """More than one job per case (seeds or settings)."""
        return len(self.jobs) > len(self.cases)

    def label(self, job: Job) -> str:
        return job.case + (f" {job.path.name}" if self.several else "")

    @property
    def align(self) -> str | None:
        aligns = {str(j.summary["align"]) for j in self.jobs if j.summary.get("align")}
        return aligns.pop() if len(aligns) == 1 else None

    @cached_property
    def margins(self) -> dict[str, float]:
        """compare.margin as the jobs' configuration has it (the first job whose .hydra/config.yaml
        holds it); {} for jobs written before it existed (the schema's defaults apply)."""
        for job in self.jobs:
            text = job.config_text
            node = (yaml.safe_load(text) or {}).get("compare") if text else None
            if isinstance(node, dict) and isinstance(node.get("margin"), dict):
                return {str(k): float(v) for k, v in node["margin"].items()}
        return {}

    def adding_seeds(self, seeds: list[int]) -> str:
        """The `infomax run -m` line that adds `seeds` to this sweep, in this directory: the sweep's own
        overrides (multirun.yaml; without it, its jobs' cases and overrides) with seed=... replaced.
        Finished jobs are kept; the comparison at its end covers every finished job."""
        task, hydra_args = self._overrides()
        keep = [o for o in task if o.split("=")[0].lstrip("+~") != "seed"]
        extra = [
            o
            for o in hydra_args
            if o.split("=")[0] not in ("hydra.sweep.dir", "hydra.run.dir", "hydra.mode")
        ]
        args = [*keep, seed_override(seeds), *extra]
        args.append(f"hydra.sweep.dir={self.path.resolve()}")
        return "infomax run -m " + " ".join(shlex.quote(a) for a in args)

    def _overrides(self) -> tuple[list[str], list[str]]:
        """(task overrides, hydra overrides) the sweep was started with."""
        path = self.path / rundir.MULTIRUN
        if path.is_file():
            over = (yaml.safe_load(path.read_text()) or {}).get("hydra", {}).get("overrides", {})
            return [str(o) for o in over.get("task") or []], [
                str(o) for o in over.get("hydra") or []
            ]
        first = self.jobs[0].overrides
        others = [o for o in first if o.split("=")[0].lstrip("+~") not in ("case", "seed")]
        return [f"case={','.join(self.cases)}", *others], []

    @property
    def alt_aligns(self) -> dict[str, list[str] | None]:
        """Per setting, the other alignments its jobs measured, as their summaries list them
        (`alt_aligns`: those every job of the setting lists); None for a setting with a job whose
        summary does not list them (written before it did: the claims read them off the columns)."""
        out: dict[str, list[str] | None] = {}
        for job in self.jobs:
            listed = job.summary.get("alt_aligns")
            if job.setting in out and out[job.setting] is None:
                continue
            if listed is None:
                out[job.setting] = None
                continue
            names = [str(a) for a in listed]
            before = out.get(job.setting, names)
            out[job.setting] = [a for a in before if a in names]
        return out

    @cached_property
    def per_image(self) -> pd.DataFrame:
        """Every finished job's mi_per_image rows: setting, case, seed, image_id, label, group,
        example (a study example image) and the numeric columns (NaN where a job lacks one)."""
        frames = []
        for job in self.jobs:
            t = job.per_image
            keep = ["image_id", "label", "group", *(c for c in t.columns if c not in NOT_NUMERIC)]
            t = t[[c for c in keep if c in t.columns]].copy()
            t.insert(0, "seed", job.seed)
            t.insert(0, "case", job.case)
            t.insert(0, SETTING, job.setting)
            t.insert(6, "example", t["image_id"].isin(set(job.study_examples())))
            frames.append(t)
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def loss_mi(self) -> tuple[pd.DataFrame, str]:
        """(setting, case, seed, step, mi per training step; how `mi` was obtained): the objective's
        own MI estimate, or for runs without one the negated loss terms (the same case differences)."""
        has_mi = all({"local_mi", "global_mi"} <= set(j.loss.columns) for j in self.jobs)
        rows = []
        for job in self.jobs:
            loss = job.loss
            mi = (
                loss["local_mi"] + loss["global_mi"]
                if has_mi
                else -(loss["local"] + loss["global"])
            )
            ids = {SETTING: job.setting, "case": job.case, "seed": job.seed}
            rows.append(pd.DataFrame({**ids, "step": loss["step"], "mi": mi}))
        source = (
            "local_mi + global_mi (nats)"
            if has_mi
            else "-(local + global), the negated loss terms (these runs have no local_mi/global_mi; "
            "the case differences equal the MI estimates')"
        )
        return pd.concat(rows, ignore_index=True), source


def _table_problem(table: pd.DataFrame, rows: int | None, text: tuple[str, ...]) -> str | None:
    """What is wrong with a job's table: no rows, another row count than expected, NaN in a number."""
    if len(table) == 0:
        return "has no rows"
    if rows is not None and len(table) != rows:
        return f"has {len(table)} rows but summary.json says n_images={rows} (truncated?)"
    numbers = table.drop(columns=[c for c in text if c in table.columns])
    for c in numbers.columns:
        wrong = pd.to_numeric(numbers[c], errors="coerce").isna()
        if (
            c in rundir.MAY_BE_EMPTY
        ):  # empty by the contract is no damage; text where a number goes is
            wrong &= numbers[c].notna()
        if wrong.any():
            return f"has {int(wrong.sum())} NaN or non-numeric value(s) in {c}"
    return None


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every job directory of a sweep, finished or not."""
    if not Path(sweep_dir).is_dir():
        raise ConfigError(
            f"{sweep_dir} is not a directory: give the sweep directory of an `infomax run -m` multirun."
        )
    jobs = []
    for d in sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir() and rundir.is_job_dir(p)):
        try:
            job = Job(d, _overrides(d), rundir.read_summary(d))
        except rundir.Damaged as e:  # summary.json: the job finished, but its record is unreadable
            job = Job(d, _overrides(d), None, str(e))
        jobs.append(job)
    return jobs


def _overrides(job_dir: Path) -> list[str]:
    """The job's overrides (.hydra/overrides.yaml; its directory name when that is missing or
    unreadable)."""
    path = job_dir / rundir.HYDRA_OVERRIDES
    try:
        overrides = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        overrides = None
    if not isinstance(overrides, list):
        return job_dir.name.split(",")
    return [str(o) for o in overrides]


def missing_jobs(sweep_dir: Path, jobs: list[Job]) -> list[str]:
    """The jobs the sweep's multirun.yaml asked for that have no directory (as their overrides)."""
    path = Path(sweep_dir) / rundir.MULTIRUN
    if not path.is_file():
        return []
    try:
        task = (yaml.safe_load(path.read_text()).get("hydra", {}).get("overrides", {}) or {}).get(
            "task", []
        )
        batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(task), None)
    except Exception as e:  # noqa: BLE001 - damaged: YAML, encoding, shape or Hydra's grammar
        log.warning(f"{path} is damaged ({first_line(e)[:80]}): jobs never started are not listed.")
        return []
    present = {frozenset(j.overrides) for j in jobs}
    return [" ".join(o) for batch in batches for o in batch if frozenset(o) not in present]


def load(path: Path) -> Sweep:
    """The run or sweep in `path`; a ConfigError (one line) when it is neither or nothing finished."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(
            f"{path} is not a directory: give a run directory (infomax run) or a sweep directory "
            "(infomax run -m)."
        )
    summary = rundir.read_summary(path)  # damaged: one line naming it
    if summary is not None:
        job = Job(path, [], summary)
        if problem := job.damage():
            raise RunError(f"{problem}: rerun the job with overwrite=true to write it again.")
        return Sweep(path, "run", [job])
    if rundir.is_job_dir(path):
        raise ConfigError(
            f"{path} is a run directory whose job has not finished (no summary.json): rerun it, then report."
        )
    jobs = find_jobs(path)
    if not jobs:
        raise ConfigError(
            f"{path} is not a run or sweep directory: it holds no finished job (no summary.json) and "
            "no job directories."
        )
    for j in jobs:
        if j.summary is not None and j.problem is None:
            j.problem = j.damage()
    finished = sorted(
        (j for j in jobs if j.summary is not None and j.problem is None),
        key=lambda j: (j.case, j.seed, j.path.name),
    )
    damaged = [j for j in jobs if j.problem is not None]
    if not finished and damaged:
        raise RunError(
            f"{path}: every finished job is damaged, e.g. {damaged[0].problem}: rerun the sweep "
            "with overwrite=true."
        )
    if not finished:
        raise ConfigError(
            f"{path} is a sweep directory with no finished job (no */summary.json): nothing to compare."
        )
    unfinished = [j for j in jobs if j.summary is None and j.problem is None]
    return Sweep(path, "sweep", finished, unfinished, missing_jobs(path, jobs), damaged)


def warn_left_out(sweep: Sweep) -> None:
    """One warning per job the comparison leaves out, saying why and how to finish it."""
    for j in sweep.unfinished:
        failure = rundir.read_failure(j.path)
        if failure:
            log.warning(f"job {j.path.name} did not finish (left out): {failure['message']}")
        else:
            log.warning(
                f"job {j.path.name} has not finished (no summary.json): left out; rerun the sweep to finish it."
            )
    for j in sweep.damaged:
        log.warning(f"job {j.path.name} is damaged (left out): {j.problem}")
    for m in sweep.missing:
        log.warning(
            f"job {m} is missing (no directory): left out; rerun the sweep with hydra.sweep.dir={sweep.path}."
        )


def seed_override(seeds: list[int]) -> str:
    """`seed=...` for a multirun: Hydra's `range(a,b)` for a run of more than eight consecutive seeds
    (a command that adds 230 seeds stays one line), else the list."""
    if len(seeds) > 8 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seed=range({seeds[0]},{seeds[-1] + 1})"
    return f"seed={','.join(map(str, seeds))}"
