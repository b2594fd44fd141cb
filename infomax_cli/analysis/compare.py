"""A sweep's comparison: the loaded sweep -> its statistics -> its files, pictures and report.

The one way data flows through the house: a job writes its run directory; `sweep.load` reads a run
or sweep directory once; `analyse` computes every statistic (stats, winners, claims) once, into
`Findings`; `pictures` chooses what the report shows (and which of the jobs' own pictures it reuses);
the renderers (figures, report) only draw what they are handed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback

from .. import rundir
from ..errors import InfomaxError
from ..render import figures, report
from ..rundir import SETTING
from . import claims, stats
from .findings import Findings
from .sweep import Sweep, find_jobs, load, warn_left_out

log = logging.getLogger("infomax")


def comparison(sweep: Sweep) -> pd.DataFrame:
    """One row per image (per seed and setting when the sweep has several): image_id, label, group
    (its independent unit), mi_max_<case>, mi_mean_<case>, winner (the case with the highest mi_max;
    cases tied within stats.TIE_NATS joined by '=', e.g. 'a=c')."""
    long = sweep.per_image
    # the setting always (dropped when written if it is one), the seed when there are several
    keys = [SETTING, *(["seed"] if long["seed"].nunique() > 1 else [])]
    index = [*keys, "image_id", "label", "group"]
    wide = long.pivot_table(
        index=index, columns="case", values=["mi_max", "mi_mean"], aggfunc="first"
    )
    cases = sorted(long["case"].unique())
    wide.columns = [f"{metric}_{case}" for metric, case in wide.columns]
    max_cols = [f"mi_max_{c}" for c in cases]
    wide = wide.reset_index()[[*index, *max_cols, *(f"mi_mean_{c}" for c in cases)]]
    wide["winner"] = stats.winner_names(wide[max_cols].set_axis(cases, axis=1))
    return wide.sort_values([*keys, "image_id"]).reset_index(drop=True)


def shuffled_means(per_image: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(setting, case) -> the mean over images of mi_shuffled_mean (the estimator's bias), if measured."""
    if "mi_shuffled_mean" not in per_image.columns:
        return {}
    means = per_image.groupby([SETTING, "case"])["mi_shuffled_mean"].mean()
    return {(str(s), str(c)): float(v) for (s, c), v in means.items()}


def analyse(sweep: Sweep) -> Findings:
    """The statistics of a loaded run or sweep: per-case intervals and paired differences; for a
    sweep also the comparison, the winner shares and the study's claims."""
    frame = stats.metric_frame(sweep.per_image)
    table = stats.stats_table(frame)
    seeds = int(table["n_seeds"].max()) if len(table) else 0
    over = "seeds and image units" if seeds > 1 else "image units (one training run)"
    found = Findings(
        table, stats.pairwise_table(frame), over, shuffled=shuffled_means(sweep.per_image)
    )
    if sweep.kind == "sweep":
        found.comparison = comparison(sweep)
        found.winners = stats.winner_shares(found.comparison)
        losses, source = sweep.loss_mi
        found.claims = claims.claims_table(
            sweep.per_image, losses, source, sweep.align, alt_aligns=sweep.alt_aligns
        )
        found.claim_lines = claims.lines(found.claims)
        found.share_claims = claims.SHARE_CLAIMS
    return found


# ------------------------------------------------------------------------- which pictures, drawn once
def _loss_picture(sweep: Sweep) -> bytes:
    """A run's own loss.png (drawn again only when it is missing); a sweep's loss curves, every job's."""
    job = sweep.jobs[0]
    if sweep.kind == "run" and job.loss_png is not None:
        return job.loss_png.read_bytes()
    if sweep.kind == "run":
        title = f"case {job.case}: training loss"
        return figures.png(figures.loss_figure(job.loss, title, figures.case_color(job.case)))
    return figures.png(figures.loss_curves_figure({sweep.label(j): j.loss for j in sweep.jobs}))


def _example_pictures(sweep: Sweep) -> dict[str, list[tuple[str, bytes]]]:
    """Per example image, (caption, PNG bytes) to show: each case's first job's own features/ picture,
    one under another; where some case lacks it, one grid drawn from the jobs' saved maps; where
    some case has neither, the pictures there are."""
    first = {c: next(j for j in sweep.jobs if j.case == c) for c in sweep.cases}
    names = sorted(
        set().union(*(j.pictures for j in first.values()), *(j.examples for j in first.values()))
    )
    shown = {}
    for name in names:
        have = {c: first[c].pictures.get(name) for c in first}
        if all(have.values()):
            shown[name] = [
                (f"case {c}: feature maps of {name}", p.read_bytes()) for c, p in have.items()
            ]
        elif all(name in j.examples for j in first.values()):
            rows = [(c, *first[c].examples[name]) for c in first]
            grid = figures.png(figures.example_grid_figure(rows))
            shown[name] = [(f"feature maps of {name}, every case", grid)]
        else:
            shown[name] = [
                (f"case {c}: feature maps of {name}", p.read_bytes()) for c, p in have.items() if p
            ]
    return shown


def pictures(sweep: Sweep, found: Findings) -> figures.Pictures:
    """What the report of `sweep` shows, each picture drawn once from the findings (the statistics'
    own intervals); the jobs' own pictures (a run's loss.png, features/) reused as they are."""
    per_map = {c: pd.concat([j.per_map for j in sweep.jobs if j.case == c]) for c in sweep.cases}
    drawn = figures.Pictures(
        _loss_picture(sweep),
        figures.png(figures.mi_bars_figure(found.stats, found.shuffled, found.over)),
        figures.png(figures.mi_violin_figure(per_map)),
    )
    if found.winners is not None and len(sweep.cases) > 1:
        drawn.winners = figures.png(figures.winners_figure(found.winners))
    drawn.examples = _example_pictures(sweep)
    return drawn


def render(sweep: Sweep, found: Findings) -> tuple[figures.Pictures, str]:
    """The pictures (each drawn once) and the report page of an analysed sweep."""
    drawn = pictures(sweep, found)
    return drawn, report.page(sweep, drawn, found)


def write_report(sweep: Sweep, found: Findings) -> Path:
    """report.html of a run or sweep (`infomax report DIR`, and the end of every job)."""
    return rundir.write_text(sweep.path / rundir.REPORT, render(sweep, found)[1])


def build_report(path: Path) -> Path:
    """`infomax report DIR`: load the run or sweep, analyse it, write its report.html."""
    sweep = load(path)
    return write_report(sweep, analyse(sweep))


def compare(sweep_dir: Path | Sweep) -> tuple[Sweep, Findings]:
    """Write a sweep's comparison.csv, winners.csv, stats.csv, pairwise.csv, claims.csv, winners.png,
    loss_curves.png and report.html; return the sweep and what was found. `sweep_dir`: a directory,
    or a sweep already loaded."""
    sweep = sweep_dir if isinstance(sweep_dir, Sweep) else load(sweep_dir)
    if sweep.kind != "sweep":
        raise InfomaxError(
            f"{sweep_dir} is a run directory: compare takes a sweep directory (run -m)."
        )
    warn_left_out(sweep)
    found = analyse(sweep)
    drawn, html = render(sweep, found)
    out = sweep.path
    rundir.write_table(out / rundir.STATS, found.stats)
    rundir.write_table(out / rundir.PAIRWISE, found.pairwise)
    rundir.write_table(out / rundir.CLAIMS, found.claims)
    rundir.write_table(out / rundir.COMPARISON, found.comparison)
    rundir.write_table(out / rundir.WINNERS_CSV, found.winners)
    if drawn.winners is not None:
        rundir.write_bytes(out / rundir.WINNERS_PNG, drawn.winners)
    else:  # one case: nothing to compare it with, but the file the contract names is still drawn
        rundir.write_bytes(
            out / rundir.WINNERS_PNG, figures.png(figures.winners_figure(found.winners))
        )
    rundir.write_bytes(out / rundir.LOSS_CURVES, drawn.loss)
    rundir.write_text(out / rundir.REPORT, html)
    return sweep, found


def print_found(sweep: Sweep, found: Findings) -> None:
    report.print_found(found, sweep.path)


def sweep_exit_code(codes: list[int]) -> int:
    """The exit status of a sweep whose jobs stopped with these statuses: 0 when none did, 1 when any
    hit a runtime failure, else the interrupt's status (resumable), else 2 (every job rejected its
    config)."""
    if not codes:
        return 0
    if any(c not in (0, 2) and c < 128 for c in codes):
        return 1
    return next((c for c in codes if c >= 128), 2)


class CompareCallback(Callback):
    """Writes the sweep's comparison when a multirun ends, whatever the launcher; `exit_code` is then
    the sweep's exit status (its jobs write failed.json when they stop without finishing)."""

    exit_code = 0

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            sweep = load(sweep_dir)  # the sweep's jobs, looked up once
            unfinished, n_jobs = sweep.unfinished, len(sweep.jobs) + len(sweep.unfinished)
        except InfomaxError as e:  # nothing finished: no comparison, but the exit status
            sweep, error = None, e
            unfinished = find_jobs(sweep_dir) if sweep_dir.is_dir() else []
            n_jobs = len(unfinished)
        failures = [f for j in unfinished if (f := rundir.read_failure(j.path))]
        CompareCallback.exit_code = sweep_exit_code([int(f["exit_code"]) for f in failures])
        try:
            if sweep is None:
                raise error
            sweep, found = compare(sweep)
        except InfomaxError as e:
            log.error(str(e))
            return
        print_found(sweep, found)
        if failures:
            log.error(
                f"{len(failures)} of {n_jobs} jobs did not finish (see above): the comparison covers "
                "the finished ones. Rerun the same command to redo the others."
            )
