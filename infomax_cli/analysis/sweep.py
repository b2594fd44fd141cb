"""A run or sweep directory loaded once, through the store: its jobs, the seeds every table uses, and the
long frames the statistics and claims are computed from. Nothing here computes a statistic or draws.

Complete seeds only: within a setting (the overrides other than case and seed), a seed is used when
every case of the setting finished intact there; a seed where some case's job did not (unfinished,
damaged, never started) is left out of every table and picture, its finished jobs set aside, and the
terminal and the report say which seeds and why. So a winner table never gives a left-out job's images
to the other cases, and every table rests on the same seeds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # Hydra's own expansion
from hydra.core.override_parser.overrides_parser import OverridesParser

from .. import rundir, store
from ..errors import ConfigError, Damaged, RunError, first_line, printable
from ..rundir import LOSS_MI, MI_ESTIMATE_COLUMNS, SETTING
from ..store import Job, override_key

__all__ = ["Job", "LeftOut", "Sweep", "load", "seed_override", "warn_left_out"]

log = logging.getLogger("infomax")

NOT_NUMERIC = ("image_id", "label", "group", "best_map")  # mi_per_image columns, not statistics


@dataclass
class LeftOut:
    """A seed of a setting left out of every table: `why`, per case whose job is not intact there."""

    setting: str
    seed: int
    why: list[str]
    set_aside: list[Job] = field(default_factory=list)  # that seed's intact jobs, not used


@dataclass
class Sweep:
    """A run (kind 'run', one job) or a sweep (kind 'sweep'): the jobs its tables use (intact, at the
    complete seeds) sorted by case, seed and directory; the unfinished and damaged jobs and those never
    started; the seeds left out and why."""

    path: Path
    kind: str
    jobs: list[Job]
    unfinished: list[Job] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # the overrides of jobs never started
    damaged: list[Job] = field(default_factory=list)  # finished, but a file breaks the contract
    left_out: list[LeftOut] = field(default_factory=list)
    record: store.SweepRecord = field(default_factory=store.SweepRecord)

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(j.case for j in self.jobs))

    @property
    def several(self) -> bool:
        """More than one job per case (seeds or settings)."""
        return len(self.jobs) > len(self.cases)

    def label(self, job: Job) -> str:
        return job.case + (f" {job.name}" if self.several else "")

    @property
    def align(self) -> str | None:
        aligns = {str(j.summary["align"]) for j in self.jobs}
        return aligns.pop() if len(aligns) == 1 else None

    @property
    def seeds(self) -> list[int]:
        """The seeds every table uses (of any setting)."""
        return sorted({j.seed for j in self.jobs})

    @property
    def all_seeds(self) -> list[int]:
        """Every seed the sweep holds a job of, used or left out."""
        return sorted({*self.seeds, *(x.seed for x in self.left_out)})

    @property
    def pending_seeds(self) -> list[int]:
        """The seeds a command that finishes the sweep runs before new ones: those left out, and those
        of a case none of whose jobs is intact (its jobs never started, did not finish or are
        damaged), which left_out cannot see: a seed is left out only for the cases it has intact
        jobs of."""
        kept = [*self.jobs, *(j for x in self.left_out for j in x.set_aside)]
        intact = {_case_and_seed(j.overrides)[0] for j in kept}
        others = [j.overrides for j in (*self.unfinished, *self.damaged)]
        others += [m.split(" ") for m in self.missing]
        absent = [_case_and_seed(o) for o in others]
        return sorted(
            {*(x.seed for x in self.left_out), *(s for c, s in absent if c not in intact)}
        )

    @cached_property
    def configs(self) -> list[dict]:
        """The jobs' remembered configs (.hydra/config.yaml) read as data through the door, in job
        order; a job whose config is missing or cannot be read is skipped."""
        out = []
        for job in self.jobs:
            try:
                tree = store.remembered_config(job.path, job.root)
            except Damaged:
                continue
            if isinstance(tree, dict):
                out.append(tree)
        return out

    @cached_property
    def margins(self) -> dict[str, float]:
        """compare.margin as the jobs' configuration has it (the first job config that holds a valid
        one); {} when none does (the schema's defaults apply)."""
        for tree in self.configs:
            node = tree.get("compare")
            node = node.get("margin") if isinstance(node, dict) else None
            if isinstance(node, dict) and all(_positive(v) for v in node.values()):
                return {str(k): float(v) for k, v in node.items()}
        return {}

    @property
    def alt_aligns(self) -> dict[str, list[str]]:
        """Per setting, the other alignments every job of the setting measured (summary.json's
        `alt_aligns`)."""
        out: dict[str, list[str]] = {}
        for job in self.jobs:
            names = [str(a) for a in job.summary["alt_aligns"]]
            out[job.setting] = [a for a in out.get(job.setting, names) if a in names]
        return out

    @cached_property
    def per_image(self) -> pd.DataFrame:
        """The used jobs' mi_per_image rows: setting, case, seed, image_id, label, group, example (a
        study example image) and the numeric columns (NaN where a job lacks one)."""
        frames = []
        for job in self.jobs:
            t = job.per_image
            keep = ["image_id", "label", "group", *(c for c in t.columns if c not in NOT_NUMERIC)]
            t = t[keep].copy()
            t.insert(0, "seed", job.seed)
            t.insert(0, "case", job.case)
            t.insert(0, SETTING, job.setting)
            t.insert(6, "example", t["image_id"].isin(set(job.study_examples())))
            frames.append(t)
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def loss_mi(self) -> tuple[pd.DataFrame, str]:
        """(setting, case, seed, step, mi per training step: the objective's own MI estimate; in words)."""
        rows = []
        for job in self.jobs:
            loss = job.loss
            ids = {SETTING: job.setting, "case": job.case, "seed": job.seed}
            first, *rest = MI_ESTIMATE_COLUMNS
            mi = sum((loss[c] for c in rest), loss[first])
            rows.append(pd.DataFrame({**ids, "step": loss["step"], "mi": mi}))
        return pd.concat(rows, ignore_index=True), LOSS_MI


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _case_and_seed(overrides: list[str]) -> tuple[str | None, int]:
    """A job's case and seed as its overrides name them (the schema's seed 0 when none does)."""
    case, seed = None, 0
    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+~") == "case":
            case = value
        elif key.lstrip("+~") == "seed" and value.lstrip("-").isdigit():
            seed = int(value)
    return case, seed


def _setting(overrides: list[str]) -> str:
    return ",".join(o for o in overrides if override_key(o) not in ("case", "seed"))


def _reasons(broken: list[Job], missing: list[str]) -> dict[tuple[str, str | None, int], str]:
    """(setting, case, seed) -> why the job there is not intact, for the jobs that are not."""
    out = {}
    for j in broken:
        case, seed = _case_and_seed(j.overrides)
        if j.problem is not None:
            why = f"job {j.name} is damaged: {printable(j.problem)}"
        elif failure := store.read_failure(j.path):
            why = f"job {j.name} did not finish: {printable(failure['message'])}"
        else:
            why = f"job {j.name} has not finished"
        out[(_setting(j.overrides), case, seed)] = why
    for m in missing:
        overrides = m.split(" ")
        case, seed = _case_and_seed(overrides)
        out[(_setting(overrides), case, seed)] = f"job {printable(m)} never started"
    return out


def complete_seeds(
    intact: list[Job], broken: list[Job], missing: list[str]
) -> tuple[list[Job], list[LeftOut]]:
    """(the intact jobs at complete seeds, the seeds left out): per setting, a seed is complete when
    every case with an intact job in the setting has an intact job at that seed."""
    reasons = _reasons(broken, missing)
    used, left_out = [], []
    intact = _one_per_seed(intact)
    for setting in sorted({j.setting for j in intact}):
        jobs = [j for j in intact if j.setting == setting]
        cases = sorted({j.case for j in jobs})
        seeds = {j.seed for j in jobs} | {s for (st, _, s) in reasons if st == setting}
        for seed in sorted(seeds):
            here = [j for j in jobs if j.seed == seed]
            absent = [c for c in cases if c not in {j.case for j in here}]
            if not absent:
                used += here
                continue
            why = [
                f"case {printable(c)}: "
                + reasons.get((setting, c, seed), f"no job of case {printable(c)} at seed {seed}")
                for c in absent
            ]
            left_out.append(LeftOut(setting, seed, why, here))
    return used, left_out


def _one_per_seed(intact: list[Job]) -> list[Job]:
    """One job per (setting, case, seed): a second directory of the same job (its name made by another
    version's list of keys left out of names) is left out, with a warning, not counted twice."""
    kept: dict[tuple, Job] = {}
    for j in sorted(intact, key=lambda j: j.path.name):
        key = (j.setting, j.case, j.seed)
        if key in kept:
            log.warning(
                f"job {j.name} is the same job as {kept[key].name} (case {j.case}, seed {j.seed}, "
                "the same overrides): left out, so that no seed counts twice."
            )
            continue
        kept[key] = j
    return list(kept.values())


def missing_jobs(record: store.SweepRecord, sweep_dir: Path, jobs: list[Job]) -> list[str]:
    """The jobs the sweep's multirun.yaml asked for that have no directory (as their overrides)."""
    if record.problem:
        log.warning(f"{printable(record.problem)}: jobs never started are not listed.")
    if not record.task:
        return []
    try:
        parsed = OverridesParser.create().parse_overrides(record.task)
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception as e:  # noqa: BLE001 - Hydra's grammar, on text from a file
        path = printable(Path(sweep_dir) / rundir.MULTIRUN)
        log.warning(
            f"{path} is damaged ({printable(first_line(e))[:80]}): jobs never started are not listed."
        )
        return []
    present = {frozenset(j.overrides) for j in jobs}
    return [" ".join(o) for batch in batches for o in batch if frozenset(o) not in present]


def _run(path: Path) -> Sweep:
    job = Job.read(path)
    if job.problem is not None:
        raise RunError(job.problem)
    if problem := job.damage():
        raise RunError(f"{problem}: rerun the job with overwrite=true to write it again.")
    return Sweep(path, "run", [job])


def load(path: Path) -> Sweep:
    """The run or sweep in `path`; a ConfigError (one line) when it is neither or nothing finished,
    a RunError when every finished job is damaged or the directory is of a newer format."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(
            f"{path} is not a directory: give a run directory (infomax run) or a sweep directory "
            "(infomax run -m)."
        )
    if rundir.is_finished(path):
        return _run(path)
    if rundir.is_job_dir(path):
        raise ConfigError(
            f"{path} is a run directory whose job has not finished (no summary.json): rerun it, then report."
        )
    record = store.sweep_record(path)  # a newer format: one line
    jobs = store.job_dirs(path)
    if not jobs:
        raise ConfigError(
            f"{path} is not a run or sweep directory: it holds no finished job (no summary.json) and "
            "no job directories."
        )
    for j in jobs:
        if j.summary is not None and j.problem is None:
            j.problem = j.damage()
    intact = [j for j in jobs if j.summary is not None and j.problem is None]
    damaged = [j for j in jobs if j.problem is not None]
    if not intact and damaged:
        raise RunError(
            f"{path}: every finished job is damaged, e.g. {damaged[0].problem}: rerun the sweep "
            "with overwrite=true."
        )
    if not intact:
        raise ConfigError(
            f"{path} is a sweep directory with no finished job (no */summary.json): nothing to compare."
        )
    unfinished = [j for j in jobs if j.summary is None and j.problem is None]
    missing = missing_jobs(record, path, jobs)
    used, left_out = complete_seeds(intact, damaged + unfinished, missing)
    used.sort(key=lambda j: (j.case, j.seed, j.path.name))
    return Sweep(path, "sweep", used, unfinished, missing, damaged, left_out, record)


def warn_left_out(sweep: Sweep) -> None:
    """One warning per job left out, saying why and how to finish it, and one per seed left out of
    every table."""
    for j in sweep.unfinished:
        failure = store.read_failure(j.path)
        if failure:
            log.warning(f"job {j.name} did not finish (left out): {printable(failure['message'])}")
        else:
            log.warning(
                f"job {j.name} has not finished (no summary.json): left out; rerun the sweep to finish it."
            )
    for j in sweep.damaged:
        log.warning(f"job {j.name} is damaged (left out): {printable(j.problem)}")
    for m in sweep.missing:
        log.warning(
            f"job {printable(m)} is missing (no directory): left out; rerun the sweep with "
            f"hydra.sweep.dir={printable(sweep.path)}."
        )
    several = len({j.setting for j in sweep.jobs}) > 1
    for x in sweep.left_out:
        where = f" of setting {printable(x.setting)}" if several else ""
        kept = ", ".join(j.name for j in x.set_aside)
        aside = f" (its finished jobs {kept} are kept, not used)" if kept else ""
        log.warning(
            f"seed {x.seed}{where} is left out of every table and picture, so that every case is "
            f"compared on the same seeds{aside}: {'; '.join(x.why)}"
        )


def seed_override(seeds: list[int]) -> str:
    """`seed=...` for a multirun: Hydra's `range(a,b)` for a run of more than eight consecutive seeds
    (a command that adds 230 seeds stays one line), else the list."""
    if len(seeds) > 8 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seed=range({seeds[0]},{seeds[-1] + 1})"
    return f"seed={','.join(map(str, seeds))}"
