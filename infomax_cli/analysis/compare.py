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

from .. import rundir, store
from ..errors import ConfigError
from ..render import claims_figure, figures, report
from ..rundir import SETTING
from . import claims, looks, pixels, stats
from .command import rerun_line
from .findings import Findings
from .sweep import Sweep, load, warn_left_out
from .verdict import NOT_ESTABLISHED, UNDECIDED

log = logging.getLogger("infomax")


def comparison(sweep: Sweep, tie: float = stats.TIE_NATS) -> pd.DataFrame:
    """One row per image (per seed and setting when the sweep has several): image_id, label, group
    (its independent unit), mi_max_<case>, mi_mean_<case>, winner (the case with the highest mi_max;
    cases within `tie`, compare.tie, of the top split the image, joined by '=', e.g. 'a=c')."""
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
    wide["winner"] = stats.winner_names(wide[max_cols].set_axis(cases, axis=1), tie)
    return wide.sort_values([*keys, "image_id"]).reset_index(drop=True)


def shuffled_means(per_image: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(setting, case) -> the mean over images of mi_shuffled_mean (the estimator's bias), when the
    tables have it (a column beyond the contract's)."""
    if "mi_shuffled_mean" not in per_image.columns:
        return {}
    means = per_image.groupby([SETTING, "case"])["mi_shuffled_mean"].mean()
    return {(str(s), str(c)): float(v) for (s, c), v in means.items()}


def margins_of(sweep: Sweep, given: dict[str, float] | None = None) -> dict[str, float]:
    """compare.margin: the schema's defaults, then the sweep's own configuration, then `given`
    (`infomax compare --margin CLAIM=VALUE`)."""
    return {**claims.DEFAULT_MARGINS, **sweep.margins, **(given or {})}


STUDY_SEEDS = 5  # with one seed, the advice adds seeds up to this many (then compare says how many)


def seeds_to_run(sweep: Sweep, total: int) -> list[int]:
    """The seeds a command runs so that `total` seeds are complete: first the pending ones (their jobs
    that never started, did not finish or are damaged are run, the intact ones skipped), then new ones
    after every seed the sweep has or asked for."""
    redo = sweep.pending_seeds
    have = len([s for s in sweep.seeds if s not in redo]) + len(redo)
    last = max([*sweep.all_seeds, *redo])
    return redo + list(range(last + 1, last + 1 + max(total - have, 0)))


def complete_seeds(sweep: Sweep) -> list[int]:
    """The seeds at which every job the sweep holds or asked for is intact."""
    pending = set(sweep.pending_seeds)
    return [s for s in sweep.seeds if s not in pending]


def seeds_words(sweep: Sweep, finish: bool = True) -> list[str]:
    """Which seeds every table uses, and each seed left out with why, in words (terminal and page); with
    `finish`, then the command that finishes them (when no advice on seeds does already)."""
    if sweep.kind != "sweep" or not sweep.left_out:
        return []
    used = ", ".join(map(str, sweep.seeds))
    out = [
        f"Every table and picture uses the seeds at which every case finished intact: {used}; "
        "left out:"
    ]
    several = len({j.setting for j in sweep.jobs}) > 1
    for x in sweep.left_out:
        where = f" ({x.setting})" if several else ""
        out.append(f"seed {x.seed}{where}: {'; '.join(x.why)}")
    if finish:
        redo = sorted({x.seed for x in sweep.left_out})
        out.append(f"to finish them (then every table covers them): {rerun_line(sweep, redo)}")
    return out


def seed_advice(sweep: Sweep, table: pd.DataFrame, pairs: pd.DataFrame) -> list[str]:
    """For the claims not settled: the command that first finishes the seeds left out (their jobs that
    did not finish or are damaged) and adds the seeds they need into this sweep's directory (it keeps
    every finished job and compares them all at its end), grouped by the number of seeds; those that
    need more image units, not seeds, said so. A claim whose pairs are all decided (c beats some cases
    and ties others: mixed) needs no more seeds."""
    seeds = sweep.seeds
    undecided = pairs[pairs["decision"] == UNDECIDED]
    open_keys = set(zip(undecided[SETTING], undecided["claim"]))
    open_ = table[table["best_case"].notna() & (table["status"] == NOT_ESTABLISHED)]
    if len(seeds) > 1:
        open_ = open_[[k in open_keys for k in zip(open_[SETTING], open_["claim"])]]
    if open_.empty:
        return []
    if len(seeds) < 2:
        run = seeds_to_run(sweep, STUDY_SEEDS)
        new = [s for s in run if s not in sweep.pending_seeds]
        redo = run[: len(run) - len(new)]
        what = f"seeds {new[0]}–{new[-1]}" if new else ""
        if redo:
            what = f"finish seed{'s' if len(redo) > 1 else ''} {', '.join(map(str, redo))}" + (
                f" and add {what}" if new else ""
            )
        else:
            what = f"add {what}"
        return [
            f"With one seed no claim is established (one training run per case). {what[0].upper()}"
            f"{what[1:]} into this sweep (its finished jobs are kept); the comparison at its "
            f"end says how many seeds each claim needs: {rerun_line(sweep, run)}"
        ]
    need: dict[int, list[str]] = {}
    short = []
    beyond = []  # more seeds than the plan allows
    for r in open_.itertuples():
        if pd.isna(r.seeds_needed):
            (beyond if getattr(r, "seeds_why", "") == "plan" else short).append(str(r.claim))
            continue
        # narrower than the margin already but straddling it: twice the seeds
        n = int(r.seeds_needed) if r.seeds_needed > len(seeds) else 2 * len(seeds)
        need.setdefault(n, []).append(str(r.claim))
    out = []
    for n, names in sorted(need.items()):
        run = seeds_to_run(sweep, n)
        what = ", ".join(dict.fromkeys(names))
        out.append(f"{what}: {n} seeds; {_run_words(sweep, run)}: {rerun_line(sweep, run)}")
    if short:
        out.append(
            f"{', '.join(dict.fromkeys(short))}: more image units (photographs), not seeds, are "
            "missing"
        )
    if beyond:
        out.append(
            f"{', '.join(dict.fromkeys(beyond))}: more seeds than the sweep's plan "
            "(compare.max_seeds, looks.csv) allows"
        )
    return out


def _run_words(sweep: Sweep, run: list[int]) -> str:
    """'add 3', or 'finish seed 0 and add 2': what a command running `run` does."""
    new = len([s for s in run if s not in sweep.pending_seeds])
    redo = run[: len(run) - new]
    if not redo:
        return f"add {new}"
    finish = f"finish seed{'s' if len(redo) > 1 else ''} {', '.join(map(str, redo))}"
    return f"{finish} and add {new}" if new else finish


def analyse(
    sweep: Sweep, margins: dict[str, float] | None = None, given: dict | None = None
) -> Findings:
    """The statistics of a loaded run or sweep: per-case intervals and paired differences; for a
    sweep also the comparison, the winner shares and the study's claims with their pairs, judged
    against `margins` (margins_of: defaults, the sweep's configuration, then these) at the look the
    sweep stands at (looks.take: its plan and its earlier looks; `given`: a multirun's compare node)."""
    frame = stats.metric_frame(sweep.per_image)
    table = stats.stats_table(frame)
    seeds = int(table["n_seeds"].max()) if len(table) else 0
    over = "seeds and image units" if seeds > 1 else "image units (one training run)"
    found = Findings(
        table, stats.pairwise_table(frame), over, shuffled=shuffled_means(sweep.per_image)
    )
    if sweep.kind == "sweep":
        found.margins = margins_of(sweep, margins)
        tie, plan = looks.configured(sweep.configs, given)
        found.comparison = comparison(sweep, tie)  # cases within `tie` of the top split an image
        found.winners = stats.winner_shares(found.comparison, tie=tie)
        losses, source = sweep.loss_mi
        found.look = looks.take(sweep.path, sweep.per_image, plan)  # the claims' seeds and looks
        found.claims, found.claim_pairs = claims.claim_tables(
            looks.restrict(sweep.per_image, found.look.seeds),
            looks.restrict(losses, found.look.seeds),
            source,
            sweep.align,
            alt_aligns=sweep.alt_aligns,
            margins=found.margins,
            tie=tie,
            plan=found.look.plan,
            before=found.look.before,
            look=found.look.number,
        )
        compared = pixels.compared(sweep)  # which image pixels the cases were measured on
        where = [compared.get(s, "") for s in found.claims[SETTING]]
        found.claims.insert(found.claims.columns.get_loc("notes") + 1, "pixels", where)
        found.pixels = pixels.lines(compared)
        found.claim_lines = claims.lines(found.claims)
        found.share_claims = claims.SHARE_CLAIMS
        found.advice = seed_advice(sweep, found.claims, found.claim_pairs)
        found.seeds = seeds_words(sweep, finish=not found.advice)
    return found


# ------------------------------------------------------------------------- which pictures, drawn once
def _loss_picture(sweep: Sweep) -> bytes:
    """A run's own loss.png (drawn again only when it is missing); a sweep's loss curves, every job's."""
    job = sweep.jobs[0]
    if sweep.kind == "run" and (own := job.loss_png) is not None:
        return own
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
            shown[name] = [(f"case {c}: feature maps of {name}", p) for c, p in have.items()]
        elif all(name in j.examples for j in first.values()):
            rows = [(c, *first[c].examples[name]) for c in first]
            grid = figures.png(figures.example_grid_figure(rows))
            shown[name] = [(f"feature maps of {name}, every case", grid)]
        else:
            shown[name] = [(f"case {c}: feature maps of {name}", p) for c, p in have.items() if p]
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
    if found.claims is not None:
        figure = claims_figure.claims_figure(found.claims, found.claim_pairs, found.share_claims)
        drawn.claims = figures.png(figure)
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
    """`infomax report DIR`: load the run or sweep, analyse it, write its report.html (a sweep's
    claims shown on new seeds are a look: recorded in looks.csv)."""
    sweep = load(path)
    found = analyse(sweep)
    out = write_report(sweep, found)
    if found.look is not None:
        looks.record(sweep.path, found.look, found.claims)
    return out


def compare(
    sweep_dir: Path | Sweep, margins: dict[str, float] | None = None, given: dict | None = None
) -> tuple[Sweep, Findings]:
    """Write a sweep's comparison.csv, winners.csv, stats.csv, pairwise.csv, claims.csv,
    claims_pairs.csv, claims.png, winners.png, loss_curves.png and report.html, and record the look
    (looks.csv); return the sweep and what was found (found.look: the look; looks.states(found.claims):
    per claim, decided or not and what would settle it). `sweep_dir`: a directory, or a sweep already
    loaded; `margins`: claim id -> margin over the sweep's own compare.margin; `given`: compare.tie,
    max_seeds, spending over the sweep's own (the plan: only before its first look)."""
    sweep = sweep_dir if isinstance(sweep_dir, Sweep) else load(sweep_dir)
    if sweep.kind != "sweep":
        raise ConfigError(
            f"{sweep_dir} is a run directory: compare takes a sweep directory (run -m); "
            f"infomax report {sweep_dir} rebuilds a run's report."
        )
    warn_left_out(sweep)
    found = analyse(sweep, margins, given)
    drawn, html = render(sweep, found)
    out = sweep.path
    rundir.write_table(out / rundir.STATS, found.stats)
    rundir.write_table(out / rundir.PAIRWISE, found.pairwise)
    rundir.write_table(out / rundir.CLAIMS, found.claims)
    rundir.write_table(out / rundir.CLAIMS_PAIRS, found.claim_pairs)
    rundir.write_bytes(out / rundir.CLAIMS_PNG, drawn.claims)
    rundir.write_table(out / rundir.COMPARISON, found.comparison)
    rundir.write_table(out / rundir.WINNERS_CSV, found.winners)
    if drawn.winners is not None:
        rundir.write_bytes(out / rundir.WINNERS_PNG, drawn.winners)
    else:  # one case: nothing to compare it with, but the file the contract names is still drawn
        rundir.write_bytes(
            out / rundir.WINNERS_PNG, figures.png(figures.winners_figure(found.winners))
        )
    rundir.write_bytes(out / rundir.LOSS_CURVES, drawn.loss)
    rundir.write_json(out / rundir.SWEEP_JSON, sweep_record(sweep))
    rundir.write_text(out / rundir.REPORT, html)
    looks.record(out, found.look, found.claims)
    return sweep, found


def sweep_record(sweep: Sweep) -> dict:
    """sweep.json: the format, and per setting the seeds every table uses and those left out, why."""
    settings = sorted({j.setting for j in sweep.jobs} | {x.setting for x in sweep.left_out})
    return {
        "format": store.FORMAT,
        "settings": [
            {
                "setting": s,
                "seeds": sorted({j.seed for j in sweep.jobs if j.setting == s}),
                "left_out": [
                    {"seed": x.seed, "why": x.why} for x in sweep.left_out if x.setting == s
                ],
            }
            for s in settings
        ],
    }


def print_found(sweep: Sweep, found: Findings) -> None:
    report.print_found(found, sweep.path)
