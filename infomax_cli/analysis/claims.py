"""The study's claims, each tested with the statistic the study used and the seed as the replicate unit.

`claims.csv` holds one row per claim (and setting). Each claim is a `Claim` of the registry `CLAIMS`:
its column, the function that makes its cells (seed, unit, case, value) and its statistic's words.

The study ("Features that maximize mutual information, how do they look like?") claims that case c
keeps the most MI, three ways; two more rows test the summaries this tool has always printed:

* `loss_curves` (the study's evidence: the loss curves over 50 iterations): the mean over training
  steps of the objective's own MI estimate, `local_mi + global_mi` (nats); one value per training run:
  `n_units` = 0.
* `example_images` (the cat and the horse): the mean over the maps (`mi_mean`) of the study's example
  images (`study_examples` in summary.json: on the embedded set the whole-photo crops of `chelsea` and
  `horse`), averaged; fixed images, not sampled: `n_units` = their number; about them alone.
* `winner_share` ("over all 5000 images, the highest frequency"): on each image the winner is the case
  with the highest `mi_max`; per image unit (`group`) the fraction of its images a case wins.
* `mean_max_mi` (this tool's old verdict): per unit, the mean of `mi_max`.
* `mean_mi`: per unit, the mean of `mi_mean`.

For a claim "case c has the highest X": `best_case` is the case with the highest point estimate (mean
over seeds and units); each pre-specified pair c - o is judged by the rule (rule.py: holds an
intersection-union test, fails a union corrected for the pairs, equivalent two one-sided tests) at
the sweep's look (verdict.Look: its plan and earlier looks, looks.py); `estimate, ci_low, ci_high` are
the headline, c minus the truly strongest other case; `seeds_needed` (planning.py) the seeds that
would decide every pair with 80% probability. Shares are fractions (0.1 = 10 points); winners split
within `compare.tie`. claims_pairs.csv holds the pairs.

Beside each claim: the same statistic on the untrained encoders (`init_*`: `mi_max_init` /
`mi_mean_init`, winners by `mi_max_init`) and under each other alignment A the jobs measured
(`<A>_*`: `mi_max_<A>` / `mi_mean_<A>`), with a note when the claim already holds (or c is already best)
before training, or when it reverses under another alignment; and a note when the image statistics
disagree (c has the highest mean max-MI while d wins the most images). `sentence` says it all in words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from .. import rundir
from ..config import CompareConfig, MarginConfig
from ..rundir import LOSS_MI, SETTING
from . import stats
from .claim_cells import alignments, mean_cells, winner_cells
from .claim_cells import has as _has
from .claim_words import (  # noqa: F401 - lines, one_seed: claims.csv in words, as claims.X
    NATS,
    SHARE,
    align_note,
    init_note,
    lines,
    one_seed,
    sentence,
)
from .sequential import Plan
from .verdict import Look, Verdict, compare_cases, coverage

DEFAULT_MARGINS = dataclasses.asdict(MarginConfig())  # claim id -> margin (compare.margin)
DEFAULT_TIE = CompareConfig().tie  # compare.tie: cases within it of an image's top split the image


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
    # compare.tie (nats): cases within it of an image's top split the image
    tie: float = DEFAULT_TIE
    plan: Plan | None = None  # the sweep's plan (None: one look, the fixed-size test)
    before: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)  # earlier looks
    look: int = 0  # the sweep's look number (0: none recorded)

    def look_of(self, claim_id: str) -> Look:
        return Look(self.plan, tuple(self.before.get(claim_id, ())))

    @property
    def look_words(self) -> str:
        """Which look of which plan, for the sentences."""
        if self.plan is None or not self.look:
            return ""
        return f", look {self.look} of a plan of {self.plan.max_seeds} seeds"


# ------------------------------------------------------------------------------------ statistics


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
    column: str  # the per-image column it reads ("": none); its controls read column_init, _<A>
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
    **looks,
) -> Setting:
    """What one setting's claims read, gathered once. `margins`: claim id -> margin (default: the
    schema's, config.MarginConfig); `looks`: Setting's tie, plan, before and look."""
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
        **looks,
    )


def evaluate(
    claim: Claim, s: Setting, suffix: str = "", study_case: str = stats.STUDY_CASE
) -> Verdict | None:
    """The claim's test on the column with `suffix` ("" its own, "_init", "_<A>") at the setting's
    look; None when the setting lacks it."""
    cells = claim.cells(s, claim.column + suffix)
    if cells is None:
        return None
    margin, share = s.margins[claim.id], claim.kind == SHARE
    v = compare_cases(cells, study_case, claim.units_random, margin, share, s.look_of(claim.id))
    if not claim.image_units:
        v.n_units = 0
    return v


def _claim_row(claim: Claim, s: Setting, study_case: str) -> tuple[dict, Verdict]:
    """claims.csv's row of one claim (its notes still a list) and its verdict."""
    v, init, by_align, notes = evaluate(claim, s, "", study_case), None, {}, []
    measured = v is not None
    if not measured:
        v = Verdict({}, reason=claim.missing, margin=s.margins[claim.id])
    else:
        notes = claim.notes(s)
    if measured and claim.controls:
        init = evaluate(claim, s, "_init", study_case)
        for a in s.aligns:
            if (w := evaluate(claim, s, f"_{a}", study_case)) is not None:
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
        "sentence": sentence(
            claim,
            v,
            study_case,
            claim.units_random,
            s.example_words,
            s.look_words,
            s.plan.max_seeds if s.plan else None,
        ),
        "notes": notes,
        "seeds_needed_high": v.seeds_needed_high,
        "seeds_why": v.why,
        "look": s.look,
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
    """claims_pairs.csv's rows of one claim: each pre-specified pair c - o with its limits (the lower
    one for holds, the upper one for fails, corrected for the pairs; together a `level` interval),
    its 90% equivalence interval, decision and seeds_needed."""
    return [
        {
            "claim": claim.id,
            "study_case": study_case,
            "other_case": o,
            "estimate": p.estimate,
            "ci_low": p.ci_low,
            "ci_high": p.ci_high,
            "level": coverage(len(v.pairs)),
            "n_seeds": p.n_seeds,
            "n_units": p.n_units if claim.image_units else 0,
            "margin": v.margin,
            "seeds_needed": p.seeds_needed,
            "decision": p.decision,
            "equiv_low": p.equiv_low,
            "equiv_high": p.equiv_high,
            "seeds_needed_high": p.seeds_needed_high,
        }
        for o, p in v.pairs.items()
    ]


def claims_of_setting(s: Setting, study_case: str) -> tuple[list[dict], list[dict]]:
    """One row per claim of the registry, with the disagreement note on the image statistics' rows;
    and the rows of their pairs."""
    rows, pairs, bests = [], [], {}
    for claim in CLAIMS:
        row, v = _claim_row(claim, s, study_case)
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
    loss_source: str = LOSS_MI,
    align: str | None = None,
    *,
    alt_aligns: Mapping[str, Sequence[str] | None] | None = None,
    margins: Mapping[str, float] | None = None,
    tie: float = DEFAULT_TIE,
    plan: Plan | None = None,
    before: Mapping[tuple[str, str], tuple[int, ...]] | None = None,
    look: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """claims.csv and claims_pairs.csv, with their `setting` column. claims.csv: one row per setting
    and claim: `setting`, rundir.CLAIM_COLUMNS, then `sentence`, `notes`, `value_<case>` (each case's
    point estimate), `seeds_needed_high`, `look`, the untrained control (`init_best_case,
    init_estimate, init_status`) and each other alignment's (`<A>_best_case, <A>_estimate,
    <A>_status`). `alt_aligns`: per setting, the other alignments the jobs' summaries list
    (Sweep.alt_aligns); `margins`: claim id -> margin; `tie`: compare.tie; `plan`, `before` ((setting,
    claim) -> the seed counts of its earlier looks) and `look` (the sweep's look number): where the
    sweep's plan stands (looks.py; no plan: one look, the fixed-size test). Case stats.STUDY_CASE
    against the others."""
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
        mine = {c: n for (st, c), n in (before or {}).items() if st == setting}
        s = setting_of(
            part,
            curves,
            loss_source,
            align,
            listed,
            margins,
            tie=tie,
            plan=plan,
            before=mine,
            look=look,
        )
        claims, claim_pairs = claims_of_setting(s, stats.STUDY_CASE)
        rows += [{SETTING: setting, **row} for row in claims]
        pairs += [{SETTING: setting, **row} for row in claim_pairs]
    out = pd.DataFrame(rows)
    first = [SETTING, *rundir.CLAIM_COLUMNS, "sentence", "notes"]
    values = sorted(c for c in out.columns if c.startswith("value_"))
    rest = [c for c in out.columns if c not in first and c not in values]
    counts = {"n_seeds": int, "n_units": int, "seeds_needed": "Int64", "seeds_needed_high": "Int64"}
    pairs = pd.DataFrame(pairs, columns=[SETTING, *rundir.CLAIM_PAIR_COLUMNS])
    return out[first + values + rest].astype(counts), pairs.astype(counts)


def claims_table(per_image: pd.DataFrame, losses: pd.DataFrame, *args, **kw) -> pd.DataFrame:
    """claims.csv alone (claim_tables' first table)."""
    return claim_tables(per_image, losses, *args, **kw)[0]
