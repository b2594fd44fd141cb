"""A sweep's comparison: which case reaches the highest max-MI on each image, from the job directories' files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from hydra.experimental.callback import Callback

from . import rundir
from .errors import ConfigError

log = logging.getLogger("infomax")


@dataclass
class Job:
    path: Path
    overrides: list[str]
    summary: dict | None

    @property
    def setting(self) -> str:
        """The job's overrides other than case and seed: jobs of one setting are compared with each other."""
        return ",".join(
            o for o in self.overrides if o.split("=")[0].lstrip("+~") not in ("case", "seed")
        )


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every job directory of a sweep (a folder holding `.hydra/`, a summary or a checkpoint)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(
            f"{sweep_dir} is not a directory: give the sweep directory of an `infomax run -m` multirun."
        )
    jobs = []
    for d in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        marks = [d / ".hydra", d / rundir.SUMMARY, d / rundir.CHECKPOINT]
        if not any(m.exists() for m in marks):
            continue
        ov_file = d / ".hydra" / "overrides.yaml"
        overrides = (
            yaml.safe_load(ov_file.read_text()) or [] if ov_file.is_file() else d.name.split(",")
        )
        jobs.append(Job(d, [str(o) for o in overrides], rundir.read_summary(d)))
    return jobs


def missing_jobs(sweep_dir: Path, jobs: list[Job]) -> list[str]:
    """The jobs the sweep's multirun.yaml asked for that have no directory (as their overrides)."""
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return []
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = (yaml.safe_load(path.read_text()).get("hydra", {}).get("overrides", {}) or {}).get(
        "task", []
    )
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(task), None)
    present = {frozenset(j.overrides) for j in jobs}
    return [" ".join(o) for batch in batches for o in batch if frozenset(o) not in present]


def comparison(jobs: list[Job]) -> pd.DataFrame:
    """One row per image (per seed and setting when the sweep has several): image_id, label, group (its
    independent unit: the photograph for the embedded set, the image itself for STL-10), mi_max_<case>,
    mi_mean_<case>, winner (the case with the highest mi_max; cases tied within stats.TIE_NATS joined by
    '=', e.g. 'a=c')."""
    from .stats import units_of, winner_names

    frames = []
    for job in jobs:
        t = pd.read_csv(job.path / rundir.MI_PER_IMAGE)
        t = t.assign(group=units_of(t, job.summary))[
            ["image_id", "label", "group", "mi_mean", "mi_max"]
        ]
        t["case"], t["seed"], t["setting"] = (
            str(job.summary["case"]),
            int(job.summary["seed"]),
            job.setting,
        )
        frames.append(t)
    long = pd.concat(frames, ignore_index=True)
    keys = [k for k in ("setting", "seed") if long[k].nunique() > 1]
    wide = long.pivot_table(
        index=[*keys, "image_id", "label", "group"],
        columns="case",
        values=["mi_max", "mi_mean"],
        aggfunc="first",
    )
    cases = sorted(long["case"].unique())
    wide.columns = [f"{metric}_{case}" for metric, case in wide.columns]
    wide = wide.reset_index()
    max_cols = [f"mi_max_{c}" for c in cases]
    wide = wide[[*keys, "image_id", "label", "group", *max_cols, *[f"mi_mean_{c}" for c in cases]]]
    wide["winner"] = winner_names(wide[max_cols].set_axis(cases, axis=1))  # a tie: 'a=c'

    return wide.sort_values([*keys, "image_id"]).reset_index(drop=True)


def compare(sweep_dir: Path) -> dict:
    """Write comparison.csv, winners.csv, winners.png and loss_curves.png of a sweep; return what was found."""
    from . import report

    sweep_dir = Path(sweep_dir)
    jobs = find_jobs(sweep_dir)
    finished = [j for j in jobs if j.summary is not None]
    unfinished = [j for j in jobs if j.summary is None]
    for j in unfinished:
        failure = rundir.read_failure(j.path)
        if failure:
            log.warning(f"job {j.path.name} did not finish (left out): {failure['message']}")
        else:
            log.warning(
                f"job {j.path.name} has not finished (no summary.json): left out; rerun the sweep to finish it."
            )
    missing = missing_jobs(sweep_dir, jobs)
    for m in missing:
        log.warning(
            f"job {m} is missing (no directory): left out; rerun the sweep with hydra.sweep.dir={sweep_dir}."
        )
    if not finished:
        raise ConfigError(
            f"{sweep_dir} holds no finished job (no */summary.json): nothing to compare."
        )
    from . import claims, stats

    comp = comparison(finished)
    wins = stats.winner_shares(comp)
    stats.write_stats(sweep_dir, finished)
    found_claims = claims.write_claims(sweep_dir, finished)
    rundir.write_csv(sweep_dir / rundir.COMPARISON, comp)
    rundir.write_csv(sweep_dir / rundir.WINNERS_CSV, wins)
    rundir.save_figure(sweep_dir / rundir.WINNERS_PNG, report.winners_figure(wins))
    losses = {}
    for j in finished:
        label = " ".join(
            [
                str(j.summary["case"]),
                *(
                    [j.path.name]
                    if len(finished) > len({x.summary["case"] for x in finished})
                    else []
                ),
            ]
        )
        losses[label] = pd.read_csv(j.path / rundir.LOSS_CSV)
    rundir.save_figure(sweep_dir / rundir.LOSS_CURVES, report.loss_curves_figure(losses))
    report.build_report(sweep_dir)
    return {
        "jobs": finished,
        "unfinished": unfinished,
        "missing": missing,
        "comparison": comp,
        "winners": wins,
        "claims": found_claims,
    }


def winners_table(wins: pd.DataFrame, title: str):
    from rich.table import Table

    table = Table(title=title, min_width=len(title) + 4)
    ci = "ci_low" in wins.columns
    for col in ("case", "wins", "share", *(["95% interval"] if ci else [])):
        table.add_column(col, justify="right" if col != "case" else "left")
    for row in wins.itertuples():
        table.add_row(
            f"case {row.case}",
            str(row.wins),
            f"{row.share:.1%}",
            *([f"{row.ci_low:.1%} - {row.ci_high:.1%}"] if ci else []),
        )
    return table


def print_found(found: dict, sweep_dir) -> None:
    """The end of a sweep's terminal output: the winner table, then the claims table and its sentences
    (with one seed, last, the line saying the claims are not established and what establishes them)."""
    from rich.console import Console

    from . import claims

    console = Console()
    console.print(
        winners_table(found["winners"], f"which case has the highest max MI ({sweep_dir})")
    )
    console.print(
        claims.console_table(
            found["claims"], "the study's claims: does case c keep the most MI? (claims.csv)"
        )
    )
    for line in claims.lines(found["claims"]):
        console.print(line, markup=False, highlight=False)


def sweep_exit_code(codes: list[int]) -> int:
    """The exit status of a sweep whose jobs stopped with these statuses: 0 when none did, 1 when any hit
    a runtime failure, else the interrupt's status (resumable), else 2 (every job rejected its config)."""
    if not codes:
        return 0
    if any(c not in (0, 2) and c < 128 for c in codes):
        return 1
    return next((c for c in codes if c >= 128), 2)


class CompareCallback(Callback):
    """Writes the sweep's comparison when a multirun ends, whatever the launcher; `exit_code` is then the
    sweep's exit status (its jobs write failed.json when they stop without finishing)."""

    exit_code = 0

    def on_multirun_end(self, config, **kwargs) -> None:
        from .errors import InfomaxError

        sweep_dir = Path(config.hydra.sweep.dir)
        failures = [
            f
            for j in find_jobs(sweep_dir)
            if j.summary is None and (f := rundir.read_failure(j.path))
        ]
        CompareCallback.exit_code = sweep_exit_code([int(f["exit_code"]) for f in failures])
        try:
            found = compare(sweep_dir)
        except InfomaxError as e:
            log.error(str(e))
            return
        print_found(found, sweep_dir)
        if failures:
            log.error(
                f"{len(failures)} of {len(found['jobs']) + len(found['unfinished'])} jobs did not finish (see above): "
                f"the comparison covers the finished ones. Rerun the same command to redo the others."
            )
