"""The study's claims, each tested with the statistic the study used and the seed as the replicate unit.

`claims.csv` holds one row per claim (per setting, with a leading `setting` column when the sweep has
several). Each claim is a `Claim` of the registry `CLAIMS`: its column, the function that makes its
cells (seed, unit, case, value) and its statistic's words; the table is one loop over the registry.

The study ("Features that maximize mutual information, how do they look like?") claims that case c
keeps the most MI, three ways; two more rows test the summaries this tool has always printed:

* `loss_curves` (the study's evidence: the loss curves over 50 iterations): the mean over training
  steps of the objective's own MI estimate, `local_mi + global_mi` (nats); one value per training run:
  `n_units` = 0.
* `example_images` (the cat and the horse): the mean over the maps (`mi_mean`) of the study's example
  images (`study_examples` in summary.json: on the embedded set the whole-photo crops of `chelsea` and
  `horse`), averaged over them; the images are fixed, not sampled: `n_units` = their number.
* `winner_share` ("over all 5000 images, the highest frequency"): on each image the winner is the case
  with the highest `mi_max`; per image unit (`group`) the fraction of its images a case wins.
* `mean_max_mi` (this tool's old verdict): per unit, the mean of `mi_max`.
* `mean_mi`: per unit, the mean of `mi_mean`.

For a claim "case c has the highest X" (verdict.py says how it is decided): `best_case` is the case with
the highest point estimate (mean over seeds and units); each pre-specified pair c - o gets an interval
from the paired differences per (seed, unit) (`stats.table_interval`: seed part with S-1 df, unit part
with G-1 df; units fixed: the t-interval on per-seed means), simultaneous over the pairs, with one
seed's mean floored at a fifth of the claim's `margin` (compare.margin); `estimate, ci_low, ci_high`
are the headline, c minus the truly strongest other case (min over the pairs). Shares are fractions
(0.1 = 10 points). `status`: with one seed, `not established` (one training run per case) whatever the
images say; otherwise `holds` (c beats every other case by more than the margin), `fails` (some case
beats c by more), `equivalent` (every pair inside +-margin) or `not established`, and `seeds_needed`
says how many seeds would narrow every pair's interval below the margin. claims_pairs.csv holds the
pairs.

Beside each claim: the same statistic on the untrained encoders (`init_*`: `mi_max_init` /
`mi_mean_init`, winners by `mi_max_init`) and under each other alignment A the jobs measured
(`<A>_*`: `mi_max_<A>` / `mi_mean_<A>`), with a note when the claim already holds (or c is already best)
before training, or when it reverses under another alignment; and a note when the image statistics
disagree (c has the highest mean max-MI while d wins the most images). `sentence` says it all in words.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from .. import rundir
from ..config import MarginConfig
from ..rundir import SETTING, several_settings
from . import stats
from .verdict import (
    BEATS,
    EQUIVALENT,
    FAILS,
    HOLDS,
    LOSES,
    UNDECIDED,
    WITHIN,
    Verdict,
    compare_cases,
)

# mi_max_<suffix> columns that are not another alignment (when the caller lists no alignments)
NOT_ALIGNMENTS = ("init", "above_null")
NATS, SHARE = "nats", "share"
DEFAULT_MARGINS = dataclasses.asdict(MarginConfig())  # claim id -> margin (compare.margin)


@dataclass(frozen=True)
class Setting:
    """What one setting's claims are computed from: its per-image rows, its loss curves, and the
    words and choices read off them once."""

    per_image: pd.DataFrame
    losses: pd.DataFrame  # setting, case, seed, step, mi
    loss_source: str  # how `mi` was obtained, in words
    align: str  # " (align=A)" when every job measured under one alignment A, else ""
    aligns: tuple[str, ...]  # the other alignments every image was also measured under
    examples: pd.DataFrame  # the per-image rows of the study's example images
    example_words: str  # their labels: "chelsea and horse"
    margins: Mapping[str, float]  # claim id -> its margin (compare.margin)

    @property
    def tie(self) -> float:
        """The MI margin of a win: cases within it of an image's top split the image."""
        return self.margins[MEAN_MAX_MI.id]


# ------------------------------------------------------------------------------------ statistics


def alignments(per_image: pd.DataFrame, listed: Sequence[str] | None = None) -> list[str]:
    """The other alignments the jobs were measured under, as their summaries list them (`listed`:
    summary.json's `alt_aligns`, which the store gives every job), or when the caller lists none, read
    off the columns mi_max_<A> and mi_mean_<A>; only those every image has both columns of."""
    cols = list(per_image.columns)
    if listed is None:
        found = [c.removeprefix("mi_max_") for c in cols if c.startswith("mi_max_")]
        listed = [a for a in found if a not in NOT_ALIGNMENTS]
    return [
        a
        for a in listed
        if f"mi_mean_{a}" in cols
        and f"mi_max_{a}" in cols
        and per_image[f"mi_max_{a}"].notna().all()
    ]


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and frame[column].notna().all()


def mean_cells(per_image: pd.DataFrame, column: str, unit: str = "group") -> pd.DataFrame:
    """seed, unit, case, value: the mean of `column` over the images of each (seed, unit, case)."""
    g = per_image.groupby(["seed", unit, "case"], sort=True)[column].mean()
    return g.rename("value").reset_index().rename(columns={unit: "unit"})


def winner_cells(
    per_image: pd.DataFrame, column: str = "mi_max", tie: float = stats.TIE_NATS
) -> pd.DataFrame:
    """seed, unit, case, value: per (seed, unit) the fraction of its images on which the case has the
    highest `column` among the cases (images every case measured; k cases within `tie` of the top get
    1/k each)."""
    wide = per_image.pivot_table(
        index=["seed", "image_id", "group"], columns="case", values=column, aggfunc="first"
    ).dropna()
    if wide.empty:
        return pd.DataFrame(columns=["seed", "unit", "case", "value"])
    won = stats.winner_credit(wide, tie)
    cells = won.groupby(level=["seed", "group"]).mean()
    cells.columns.name = "case"
    return cells.stack().rename("value").reset_index().rename(columns={"group": "unit"})


# Each claim's cells (seed, unit, case, value) of a column (its own, or its _init / _<A> control), or
# None when the setting lacks what the claim reads.
def _loss_cells(s: Setting, column: str) -> pd.DataFrame | None:
    """One value per training run: the mean over steps of the objective's MI estimate."""
    if s.losses.empty:
        return None
    per_run = s.losses.groupby(["seed", "case"])["mi"].mean()
    return per_run.rename("value").reset_index().assign(unit="run")


def _example_cells(s: Setting, column: str) -> pd.DataFrame | None:
    """The study's example images, each its own (fixed) unit."""
    ex = s.examples
    if ex.empty or not _has(ex, column):
        return None
    return mean_cells(ex.assign(unit=ex["image_id"].astype(str)), column, "unit")


def _winner_cells(s: Setting, column: str) -> pd.DataFrame | None:
    return winner_cells(s.per_image, column, s.tie) if _has(s.per_image, column) else None


def _mean_cells(s: Setting, column: str) -> pd.DataFrame | None:
    return mean_cells(s.per_image, column) if _has(s.per_image, column) else None


def _best_per_example(s: Setting) -> list[str]:
    """Which case has the highest mean MI on each example image, by name."""
    ex, per = s.examples, []
    for image_id, label in (
        ex.drop_duplicates("image_id")
        .sort_values("image_id")[["image_id", "label"]]
        .itertuples(index=False)
    ):
        means = ex[ex["image_id"] == image_id].groupby("case")["mi_mean"].mean()
        per.append(f"{label} (image {image_id}): case {means.idxmax()}")
    return ["best per image: " + ", ".join(per)]


def _no_notes(s: Setting) -> list[str]:
    return []


@dataclass(frozen=True)
class Claim:
    """One claim of the study: what it says, the statistic that tests it and where its cells come from."""

    id: str
    label: str  # how a sentence starts
    what: str  # "<what> is highest for case k"
    kind: str  # NATS | SHARE
    column: (
        str  # the per-image column it reads ("" : none); its controls read column_init, column_<A>
    )
    cells: Callable[[Setting, str], pd.DataFrame | None]
    statistic: Callable[[Setting], str]  # claims.csv's `statistic`
    missing: str  # why it cannot be tested when the setting lacks its cells
    units_random: bool = True  # its units are sampled (image units) rather than fixed
    image_units: bool = True  # False: one value per training run, no image unit (n_units 0)
    controls: bool = True  # also tested on the untrained encoders and under the other alignments
    notes: Callable[[Setting], list[str]] = _no_notes  # its own notes, before the controls'
    rival: str = ""  # how the disagreement note words a case that is best by this claim


LOSS_CURVES = Claim(
    "loss_curves",
    "(i) Loss curves",
    "the objective's MI estimate during training",
    NATS,
    "",
    _loss_cells,
    lambda s: f"mean over training steps of the objective's MI estimate, {s.loss_source}",
    "no loss.csv",
    units_random=False,
    image_units=False,
    controls=False,
)
EXAMPLE_IMAGES = Claim(
    "example_images",
    "(ii) Example images",
    "the mean MI over the maps of {examples}",
    NATS,
    "mi_mean",
    _example_cells,
    lambda s: (
        f"mean MI over the maps of the study's example images ({s.example_words or 'none'})"
        f"{s.align}, mean over them"
    ),
    "the jobs name no study example images (study_examples)",
    units_random=False,
    notes=_best_per_example,
)
WINNER_SHARE = Claim(
    "winner_share",
    "(iii) Winner share",
    "the share of images won (highest max-MI of the cases)",
    SHARE,
    "mi_max",
    _winner_cells,
    lambda s: (
        f"share of images on which the case has the highest max-MI{s.align}, per image unit then mean"
    ),
    "column missing",
    rival="wins the most images",
)
MEAN_MAX_MI = Claim(
    "mean_max_mi",
    "Mean max-MI",
    "the mean over images of the max MI over the maps",
    NATS,
    "mi_max",
    _mean_cells,
    lambda s: (
        f"mean over images of the max MI over the maps (nats){s.align}, per image unit then mean"
    ),
    "column missing",
    rival="has the highest mean max-MI",
)
MEAN_MI = Claim(
    "mean_mi",
    "Mean MI",
    "the mean over images of the mean MI over the maps",
    NATS,
    "mi_mean",
    _mean_cells,
    lambda s: (
        f"mean over images of the mean MI over the maps (nats){s.align}, per image unit then mean"
    ),
    "column missing",
    rival="has the highest mean MI",
)
CLAIMS = (LOSS_CURVES, EXAMPLE_IMAGES, WINNER_SHARE, MEAN_MAX_MI, MEAN_MI)
SHARE_CLAIMS = frozenset(c.id for c in CLAIMS if c.kind == SHARE)
# the statistics over all images, in the order the disagreement note names them
IMAGE_CLAIMS = (MEAN_MAX_MI, WINNER_SHARE, MEAN_MI)


# ------------------------------------------------------------------------------------------ words


def _num(x: float, kind: str, sign: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if kind == "share":
        return f"{100 * x:+.1f} points" if sign else f"{100 * x:.1f}%"
    return f"{x:+.4f} nats" if sign else f"{x:.4f} nats"


def _unsigned(x: float, kind: str) -> str:
    """A size (a margin): nats to 4 significant digits, or points for a share."""
    return f"{100 * x:.3g} points" if kind == SHARE else f"{x:.4g} nats"


def _bare(x: float, kind: str) -> str:
    return f"{100 * x:+.1f}" if kind == "share" else f"{x:+.4f}"


def _cases(names, verb: str = "") -> str:
    many = len(names) > 1
    return f"case{'s' if many else ''} {', '.join(names)}" + (
        f" {verb}{'' if many else 's'}" if verb else ""
    )


def _open_pairs(v: Verdict, study_case: str) -> str:
    """Where a claim that is not established stands, pair by pair."""
    by: dict[str, list[str]] = {}
    for o, d in v.decisions.items():
        by.setdefault(d, []).append(o)
    parts = []
    if by.get(BEATS):
        parts.append(f"case {study_case} beats {', '.join(by[BEATS])}")
    if by.get(WITHIN):
        parts.append(f"is within the margin of {', '.join(by[WITHIN])}")
    if by.get(UNDECIDED):  # its interval reaches across 0 or across the margin
        parts.append(f"is not yet told from {', '.join(by[UNDECIDED])} by more than the margin")
    if by.get(LOSES):
        parts.append(f"loses to {', '.join(by[LOSES])}")
    return ", ".join(parts) if parts else f"case {study_case} is not yet told from the others"


def detectable(v: Verdict, claim: Claim) -> str:
    """What the sweep could detect: its margin, and the seeds (or image units) it would take to
    narrow every pair's interval below it."""
    margin = f"margin ±{_unsigned(v.margin, claim.kind)}"
    if v.units_short:
        return (
            f"{margin}; more image units (photographs), not seeds, are missing: the units alone "
            "leave an interval wider than the margin"
        )
    if v.decisions and UNDECIDED not in v.decisions.values():
        return (
            f"{margin}; every pair is decided: a mixed verdict, which more seeds would not change"
        )
    if math.isnan(v.seeds_needed):
        return margin
    if v.seeds_needed <= v.n_seeds:  # narrow enough already, but reaching across the margin
        return f"{margin}; every interval is narrower than it already: a difference near the margin"
    return f"{margin}; about {int(v.seeds_needed)} seeds would narrow every interval below it"


def status_phrase(v: Verdict, study_case: str, claim: Claim) -> str:
    """The status in words, with what the sweep could detect."""
    margin = f"±{_unsigned(v.margin, claim.kind)}"
    if v.reason:
        return f"cannot be tested: {v.reason}"
    if v.n_seeds < 2:
        return "not established (one training run per case)"
    if v.status == HOLDS:
        return f"holds: case {study_case} beats every other case by more than the margin ({margin})"
    if v.status == FAILS:
        return (
            f"fails: {_cases(v.lost, 'beat')} case {study_case} by more than the margin ({margin})"
        )
    if v.status == EQUIVALENT:
        return (
            f"equivalent: no case differs from case {study_case} by more than the margin ({margin})"
        )
    return f"not established: {_open_pairs(v, study_case)} ({detectable(v, claim)})"


def sentence(
    claim: Claim, v: Verdict, study_case: str, units_random: bool, examples: str = ""
) -> str:
    what = claim.what.format(examples=examples or "the example images")
    if v.reason and v.best_case is None:
        return f"{claim.label}: not available ({v.reason})."
    head = f"{claim.label}: {what} is highest for case {v.best_case}"
    if v.reason:
        return f"{head}; {status_phrase(v, study_case, claim)}."
    diff = f"{study_case} − strongest other ({v.other}) = {_num(v.estimate, claim.kind)}"
    if math.isnan(v.ci_low):
        where = "no interval from one seed" if v.n_seeds < 2 else "no interval"
    else:
        over = (
            f"over {v.n_seeds} seeds" + (f" and {v.n_units} image units" if units_random else "")
            if v.n_seeds > 1
            else f"over {v.n_units} image units of one training run"
        )
        lo, hi = _bare(v.ci_low, claim.kind), _bare(v.ci_high, claim.kind)
        n = len(v.pairs)
        family = f", simultaneous over the {n} pairs" if n > 1 else ""
        where = f"95% interval {lo} to {hi} {over}{family}"
    return f"{head} ({diff}; {where}); {status_phrase(v, study_case, claim)}."


def init_note(v: Verdict, init: Verdict, claim: Claim, study_case: str) -> str:
    if init.best_case is None or init.reason:
        return ""
    diff = f"{study_case} − {init.other} = {_num(init.estimate, claim.kind)}" if init.other else ""
    if init.status == HOLDS:
        return f"already holds before training (untrained encoders: {diff})"
    # e.g. untrained a and c: one function on the scored pixels
    if init.other and abs(init.estimate) < stats.TIE_NATS:
        return f"before training case {study_case} ties with case {init.other} (untrained encoders: {diff})"
    if init.best_case == study_case:
        return f"case {study_case} is already best before training (untrained encoders: {diff})"
    if init.best_case == v.best_case:
        return f"case {init.best_case} is already best before training (untrained encoders: {diff})"
    return f"before training case {init.best_case} is best (untrained encoders: {diff})"


def align_note(v: Verdict, by_align: dict[str, Verdict], study_case: str) -> str:
    same, notes = [], []
    for a, w in by_align.items():
        if w.best_case is None or w.reason:
            continue
        flipped = (v.best_case == study_case) != (w.best_case == study_case) or {
            v.status,
            w.status,
        } == {HOLDS, FAILS}
        if flipped:
            notes.append(
                f"reverses under align={a} (best: case {w.best_case}{f', {w.status}' if w.n_seeds > 1 else ''})"
            )
        elif w.best_case != v.best_case:
            notes.append(f"under align={a} the best is case {w.best_case}")
        else:
            same.append(a)
    if same:
        notes.append(f"same best case under align={', '.join(same)}")
    return "; ".join(notes)


def disagreement(bests: dict[str, str | None]) -> str:
    """One sentence when the image statistics name different best cases, else ""."""
    named = [(c, bests[c.id]) for c in IMAGE_CLAIMS if bests.get(c.id)]
    if len({best for _, best in named}) < 2:
        return ""
    groups: dict[str, list[str]] = {}
    for claim, best in named:  # mean max-MI first, then the winner share, then mean MI
        groups.setdefault(best, []).append(claim.rival)
    return "the statistics disagree: " + " while ".join(
        f"case {c} {' and '.join(p)}" for c, p in groups.items()
    )


# ------------------------------------------------------------------------------------------ table


def setting_of(
    per_image: pd.DataFrame,
    losses: pd.DataFrame,
    loss_source: str,
    align: str | None,
    listed_aligns: Sequence[str] | None = None,
    margins: Mapping[str, float] | None = None,
) -> Setting:
    """What one setting's claims read, gathered once. `margins`: claim id -> margin (default: the
    schema's, config.MarginConfig)."""
    ex = per_image[per_image["example"]]
    names = ex.drop_duplicates("image_id").sort_values("image_id")["label"]
    return Setting(
        per_image,
        losses,
        loss_source,
        f" (align={align})" if align else "",
        tuple(alignments(per_image, listed_aligns)),
        ex,
        " and ".join(str(x) for x in names),
        {**DEFAULT_MARGINS, **(margins or {})},
    )


def evaluate(
    claim: Claim,
    s: Setting,
    suffix: str = "",
    study_case: str = stats.STUDY_CASE,
    level=stats.LEVEL,
) -> Verdict | None:
    """The claim's test on the column with `suffix` ("" its own, "_init", "_<A>"); None when the
    setting lacks it."""
    cells = claim.cells(s, claim.column + suffix)
    if cells is None:
        return None
    margin, share = s.margins[claim.id], claim.kind == SHARE
    v = compare_cases(cells, study_case, level, claim.units_random, margin, share)
    if not claim.image_units:
        v.n_units = 0
    return v


def _claim_row(claim: Claim, s: Setting, study_case: str, level: float) -> tuple[dict, Verdict]:
    """claims.csv's row of one claim (its notes still a list) and its verdict."""
    v, init, by_align, notes = evaluate(claim, s, "", study_case, level), None, {}, []
    measured = v is not None
    if not measured:
        v = Verdict({}, reason=claim.missing, margin=s.margins[claim.id])
    else:
        notes = claim.notes(s)
    if measured and claim.controls:
        init = evaluate(claim, s, "_init", study_case, level)
        for a in s.aligns:
            if (w := evaluate(claim, s, f"_{a}", study_case, level)) is not None:
                by_align[a] = w
        if init is not None:
            notes.append(init_note(v, init, claim, study_case))
        if by_align:
            notes.append(align_note(v, by_align, study_case))
    row = {
        "claim": claim.id,
        "statistic": claim.statistic(s),
        "study_case": study_case,
        "best_case": v.best_case,
        "estimate": v.estimate,
        "ci_low": v.ci_low,
        "ci_high": v.ci_high,
        "n_seeds": v.n_seeds,
        "n_units": v.n_units,
        "margin": v.margin,
        "seeds_needed": v.seeds_needed,
        "status": v.status,
        "sentence": sentence(claim, v, study_case, claim.units_random, s.example_words),
        "notes": notes,
        **{f"value_{c}": x for c, x in v.values.items()},
    }
    if init is not None:
        row.update(
            init_best_case=init.best_case, init_estimate=init.estimate, init_status=init.status
        )
    for a, w in by_align.items():
        row.update(
            {f"{a}_best_case": w.best_case, f"{a}_estimate": w.estimate, f"{a}_status": w.status}
        )
    return row, v


def pair_rows(claim: Claim, v: Verdict, study_case: str) -> list[dict]:
    """claims_pairs.csv's rows of one claim: each pre-specified pair c - o with its own interval
    (simultaneous over the claim's pairs), decision and seeds_needed."""
    return [
        {
            "claim": claim.id,
            "study_case": study_case,
            "other_case": o,
            "estimate": p.mean,
            "ci_low": p.ci_low,
            "ci_high": p.ci_high,
            "level": p.level,
            "n_seeds": p.n_seeds,
            "n_units": p.n_units if claim.image_units else 0,
            "margin": v.margin,
            "seeds_needed": v.pair_seeds.get(o, math.nan),
            "decision": v.decisions.get(o, UNDECIDED),
        }
        for o, p in v.pairs.items()
    ]


def claims_of_setting(s: Setting, study_case: str, level: float) -> tuple[list[dict], list[dict]]:
    """One row per claim of the registry, with the disagreement note on the image statistics' rows;
    and the rows of their pairs."""
    rows, pairs, bests = [], [], {}
    for claim in CLAIMS:
        row, v = _claim_row(claim, s, study_case, level)
        rows.append(row)
        pairs += pair_rows(claim, v, study_case)
        bests[claim.id] = v.best_case
    split = disagreement(bests)
    image_claims = {c.id for c in IMAGE_CLAIMS}
    for row in rows:
        if split and row["claim"] in image_claims:
            row["notes"].append(split)
        row["notes"] = "; ".join(n for n in row["notes"] if n)
    return rows, pairs


def claim_tables(
    per_image: pd.DataFrame,
    losses: pd.DataFrame,
    loss_source: str = "local_mi + global_mi (nats)",
    align: str | None = None,
    *,
    alt_aligns: Mapping[str, Sequence[str] | None] | None = None,
    margins: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """claims.csv and claims_pairs.csv, with their `setting` column. claims.csv: one row per setting
    and claim: `setting`, rundir.CLAIM_COLUMNS, then `sentence`, `notes`, `value_<case>` (each case's
    point estimate), the untrained control (`init_best_case, init_estimate, init_status`) and each other
    alignment's (`<A>_best_case, <A>_estimate, <A>_status`). `alt_aligns`: per setting, the other
    alignments the jobs' summaries list (Sweep.alt_aligns); `margins`: claim id -> margin. Case
    stats.STUDY_CASE against the others, at stats.LEVEL."""
    # units as integer codes: the same grouping, without hashing strings in every groupby
    per_image = per_image.assign(
        case=per_image["case"].astype(str),
        group=pd.factorize(per_image["group"].astype(str))[0],
    )
    rows, pairs = [], []
    for setting in sorted(per_image[SETTING].unique()):
        part = per_image[per_image[SETTING] == setting]
        curves = losses[losses[SETTING] == setting]
        listed = (alt_aligns or {}).get(setting)
        s = setting_of(part, curves, loss_source, align, listed, margins)
        claims, claim_pairs = claims_of_setting(s, stats.STUDY_CASE, stats.LEVEL)
        rows += [{SETTING: setting, **row} for row in claims]
        pairs += [{SETTING: setting, **row} for row in claim_pairs]
    out = pd.DataFrame(rows)
    first = [SETTING, *rundir.CLAIM_COLUMNS, "sentence", "notes"]
    values = sorted(c for c in out.columns if c.startswith("value_"))
    rest = [c for c in out.columns if c not in first and c not in values]
    out = out[first + values + rest].astype({"n_seeds": int, "n_units": int})
    out["seeds_needed"] = out["seeds_needed"].astype("Int64")
    pairs = pd.DataFrame(pairs, columns=[SETTING, *rundir.CLAIM_PAIR_COLUMNS])
    pairs["seeds_needed"] = pairs["seeds_needed"].astype("Int64")
    return out, pairs.astype({"n_seeds": int, "n_units": int})


def claims_table(per_image: pd.DataFrame, losses: pd.DataFrame, *args, **kw) -> pd.DataFrame:
    """claims.csv alone (claim_tables' first table)."""
    return claim_tables(per_image, losses, *args, **kw)[0]


# --------------------------------------------------------------------------------------- output


def one_seed(claims: pd.DataFrame) -> bool:
    """Whether some claim rests on one training run per case."""
    tested = claims[claims["best_case"].notna()]
    return bool(len(tested)) and bool((tested["n_seeds"] < 2).any())


def lines(claims: pd.DataFrame) -> list[str]:
    """The sentences, each with its notes."""
    out, several = [], several_settings(claims)
    for _, r in claims.iterrows():
        prefix = f"[{r[SETTING]}] " if several else ""
        notes = r.get("notes")
        out.append(
            prefix
            + str(r["sentence"])
            + (f" Note: {notes}." if isinstance(notes, str) and notes else "")
        )
    return out
