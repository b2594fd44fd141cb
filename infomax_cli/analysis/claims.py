"""The study's claims, each tested with the statistic the study used and the seed as the replicate unit.

`claims.csv` holds one row per claim (per setting, with a leading `setting` column when the sweep has
several). The study ("Features that maximize mutual information, how do they look like?") claims that
case c keeps the most MI, three ways; two more rows test the summaries this tool has always printed:

* `loss_curves` (the study's evidence: the loss curves over 50 iterations): the mean over training
  steps of the objective's own MI estimate, `local_mi + global_mi` (nats; a run without them: the
  negated loss terms `-(local + global)`, which differ from it by a constant, so the case differences
  are the same); one value per training run: `n_units` = 0.
* `example_images` (the cat and the horse): the mean over the maps (`mi_mean`) of the study's example
  images (`study_examples` in summary.json; for an older embedded-set run, the whole-photo crops of
  `chelsea` and `horse`), averaged over them; the images are fixed, not sampled: `n_units` = their number.
* `winner_share` ("over all 5000 images, the highest frequency"): on each image the winner is the case
  with the highest `mi_max`; per image unit (`group`) the fraction of its images a case wins.
* `mean_max_mi` (this tool's old verdict): per unit, the mean of `mi_max`.
* `mean_mi`: per unit, the mean of `mi_mean`.

For a claim "case c has the highest X": `best_case` is the case with the highest point estimate (mean
over seeds and units); `estimate` = X(c) - X(o), o the strongest other case, and `ci_low, ci_high` its
95% interval from the paired differences per (seed, unit) (`stats.interval`: seed part with S-1 df,
unit part with G-1 df; units fixed: the t-interval on per-seed means). Shares are fractions (0.1 = 10
points). `status`: with one seed, `not established` (one training run per case) whatever the images say;
otherwise `holds` when c beats every other case (each paired interval above 0: an intersection-union
test, no correction needed), `fails` when some case beats c (its interval below 0), else `not established`.

Beside each claim: the same statistic on the untrained encoders (`init_*`: `mi_max_init` /
`mi_mean_init`, winners by `mi_max_init`) and under each other alignment A the jobs measured
(`<A>_*`: `mi_max_<A>` / `mi_mean_<A>`), with a note when the claim already holds (or c is already best)
before training, or when it reverses under another alignment; and a note when the image statistics
disagree (c has the highest mean max-MI while d wins the most images). `sentence` says it all in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .. import rundir
from ..rundir import SETTING, several_settings
from . import stats
from .verdict import FAILS, HOLDS, Verdict, compare_cases

STUDY_COMMAND = "infomax run -m case=a,b,c,d seed=0,1,2,3,4 dataset=samples"
NOT_ALIGNMENTS = ("init", "above_null")  # mi_max_<suffix> columns that are not another alignment


@dataclass(frozen=True)
class Claim:
    id: str
    label: str  # how a sentence starts
    what: str  # "<what> is highest for case k"
    kind: str  # nats | share


CLAIMS = (
    Claim("loss_curves", "(i) Loss curves", "the objective's MI estimate during training", "nats"),
    Claim(
        "example_images", "(ii) Example images", "the mean MI over the maps of {examples}", "nats"
    ),
    Claim(
        "winner_share",
        "(iii) Winner share",
        "the share of images won (highest max-MI of the cases)",
        "share",
    ),
    Claim("mean_max_mi", "Mean max-MI", "the mean over images of the max MI over the maps", "nats"),
    Claim("mean_mi", "Mean MI", "the mean over images of the mean MI over the maps", "nats"),
)
SHARE_CLAIMS = frozenset(c.id for c in CLAIMS if c.kind == "share")
IMAGE_CLAIMS = {
    "mean_max_mi": "has the highest mean max-MI",
    "winner_share": "wins the most images",
    "mean_mi": "has the highest mean MI",
}


# ------------------------------------------------------------------------------------ statistics


def alignments(per_image: pd.DataFrame) -> list[str]:
    """The other alignments the jobs were measured under (columns mi_max_<A> and mi_mean_<A>)."""
    cols = list(per_image.columns)
    found = [c.removeprefix("mi_max_") for c in cols if c.startswith("mi_max_")]
    return [
        a
        for a in found
        if a not in NOT_ALIGNMENTS
        and f"mi_mean_{a}" in cols
        and per_image[f"mi_max_{a}"].notna().all()
    ]


def mean_cells(per_image: pd.DataFrame, column: str, unit: str = "group") -> pd.DataFrame:
    """seed, unit, case, value: the mean of `column` over the images of each (seed, unit, case)."""
    g = per_image.groupby(["seed", unit, "case"], sort=True)[column].mean()
    return g.rename("value").reset_index().rename(columns={unit: "unit"})


def winner_cells(per_image: pd.DataFrame, column: str = "mi_max") -> pd.DataFrame:
    """seed, unit, case, value: per (seed, unit) the fraction of its images on which the case has the
    highest `column` among the cases (images every case measured; k cases tied within stats.TIE_NATS
    get 1/k each). The number of (seed, image) draws is in `.attrs["draws"]`."""
    wide = per_image.pivot_table(
        index=["seed", "image_id", "group"], columns="case", values=column, aggfunc="first"
    ).dropna()
    if wide.empty:
        return pd.DataFrame(columns=["seed", "unit", "case", "value"])
    won = stats.winner_credit(wide)
    cells = won.groupby(level=["seed", "group"]).mean()
    cells.columns.name = "case"
    out = cells.stack().rename("value").reset_index().rename(columns={"group": "unit"})
    out.attrs["draws"] = len(wide)
    return out


# ------------------------------------------------------------------------------------------ words


def _num(x: float, kind: str, sign: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if kind == "share":
        return f"{100 * x:+.1f} points" if sign else f"{100 * x:.1f}%"
    return f"{x:+.4f} nats" if sign else f"{x:.4f} nats"


def _bare(x: float, kind: str) -> str:
    return f"{100 * x:+.1f}" if kind == "share" else f"{x:+.4f}"


def status_phrase(v: Verdict, study_case: str) -> str:
    if v.reason:
        return f"cannot be tested: {v.reason}"
    if v.n_seeds < 2:
        return "not established (one training run per case)"
    if v.status == HOLDS:
        return f"holds: case {study_case} beats every other case"
    if v.status == FAILS:
        many = len(v.lost) > 1
        beat = f"case{'s' if many else ''} {', '.join(v.lost)} beat{'' if many else 's'}"
        return f"fails: {beat} case {study_case}"
    return f"not established: case {study_case} is not distinguishable from {', '.join(v.tied)} (interval includes 0)"


def sentence(
    claim: Claim, v: Verdict, study_case: str, units_random: bool, examples: str = ""
) -> str:
    what = claim.what.format(examples=examples or "the example images")
    if v.reason and v.best_case is None:
        return f"{claim.label}: not available ({v.reason})."
    head = f"{claim.label}: {what} is highest for case {v.best_case}"
    if v.reason:
        return f"{head}; {status_phrase(v, study_case)}."
    diff = f"{study_case} − {v.other} = {_num(v.estimate, claim.kind)}"
    if math.isnan(v.ci_low):
        where = "no interval from one seed" if v.n_seeds < 2 else "no interval"
    else:
        over = (
            f"over {v.n_seeds} seeds" + (f" and {v.n_units} image units" if units_random else "")
            if v.n_seeds > 1
            else f"over {v.n_units} image units of one training run"
        )
        where = (
            f"95% interval {_bare(v.ci_low, claim.kind)} to {_bare(v.ci_high, claim.kind)} {over}"
        )
    return f"{head} ({diff}; {where}); {status_phrase(v, study_case)}."


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
    bests = {k: b for k, b in bests.items() if k in IMAGE_CLAIMS and b}
    if len(set(bests.values())) < 2:
        return ""
    groups: dict[str, list[str]] = {}
    for k in IMAGE_CLAIMS:  # mean max-MI first, then the winner share, then mean MI
        if k in bests:
            groups.setdefault(bests[k], []).append(IMAGE_CLAIMS[k])
    return "the statistics disagree: " + " while ".join(
        f"case {c} {' and '.join(p)}" for c, p in groups.items()
    )


# ------------------------------------------------------------------------------------------ table


def _claims_of_setting(
    per_image: pd.DataFrame,
    losses: pd.DataFrame,
    loss_source: str,
    align: str | None,
    study_case: str,
    level: float,
) -> list[dict]:
    aligns = alignments(per_image)
    align = f" (align={align})" if align else ""
    ex = per_image[per_image["example"]]
    ex_names = ex.drop_duplicates("image_id").sort_values("image_id")
    example_words = " and ".join(str(x) for x in ex_names["label"]) if len(ex_names) else ""
    rows, verdicts = [], {}

    def has(col: str) -> bool:
        return col in per_image.columns and per_image[col].notna().all()

    def evaluate(claim_id: str, suffix: str) -> Verdict | None:
        if claim_id == "example_images":
            col = f"mi_mean{suffix}"
            if ex.empty or col not in ex.columns or not ex[col].notna().all():
                return None
            return compare_cases(
                mean_cells(ex.assign(unit=ex["image_id"].astype(str)), col, "unit"),
                study_case,
                level,
                units_random=False,
            )
        col = {"winner_share": "mi_max", "mean_max_mi": "mi_max", "mean_mi": "mi_mean"}[
            claim_id
        ] + suffix
        if not has(col):
            return None
        if claim_id == "winner_share":
            cells = winner_cells(per_image, col)
            return compare_cases(
                cells, study_case, level, share_draws=cells.attrs.get("draws", len(cells))
            )
        return compare_cases(mean_cells(per_image, col), study_case, level)

    for claim in CLAIMS:
        notes = []
        init, by_align = None, {}
        if claim.id == "loss_curves":
            statistic = f"mean over training steps of the objective's MI estimate, {loss_source}"
            cells = (
                losses.groupby(["seed", "case"])["mi"]
                .mean()
                .rename("value")
                .reset_index()
                .assign(unit="run")
            )
            v = (
                compare_cases(cells, study_case, level, units_random=False)
                if len(cells)
                else Verdict({}, reason="no loss.csv")
            )
            v.n_units = 0
            units_random = False
        else:
            units_random = claim.id != "example_images"
            examples = f"the study's example images ({example_words or 'none'}){align}"
            per_unit = f"{align}, per image unit then mean"
            statistic = {
                "example_images": f"mean MI over the maps of {examples}, mean over them",
                "winner_share": f"share of images on which the case has the highest max-MI{per_unit}",
                "mean_max_mi": f"mean over images of the max MI over the maps (nats){per_unit}",
                "mean_mi": f"mean over images of the mean MI over the maps (nats){per_unit}",
            }[claim.id]
            v = evaluate(claim.id, "")
            if v is None:
                why = (
                    "the jobs name no study example images (study_examples)"
                    if claim.id == "example_images"
                    else "column missing"
                )
                v = Verdict({}, reason=why)
            else:
                init = evaluate(claim.id, "_init")
                by_align = {a: w for a in aligns if (w := evaluate(claim.id, f"_{a}")) is not None}
                if claim.id == "example_images":
                    per = []
                    for image_id, label in zip(ex_names["image_id"], ex_names["label"]):
                        means = ex[ex["image_id"] == image_id].groupby("case")["mi_mean"].mean()
                        per.append(f"{label} (image {image_id}): case {means.idxmax()}")
                    notes.append("best per image: " + ", ".join(per))
                if init is not None:
                    notes.append(init_note(v, init, claim, study_case))
                if by_align:
                    notes.append(align_note(v, by_align, study_case))
        verdicts[claim.id] = v
        row = {
            "claim": claim.id,
            "statistic": statistic,
            "study_case": study_case,
            "best_case": v.best_case,
            "estimate": v.estimate,
            "ci_low": v.ci_low,
            "ci_high": v.ci_high,
            "n_seeds": v.n_seeds,
            "n_units": v.n_units,
            "status": v.status,
            "sentence": sentence(claim, v, study_case, units_random, example_words),
            "notes": notes,
            **{f"value_{c}": x for c, x in v.values.items()},
        }
        if init is not None:
            row.update(
                init_best_case=init.best_case, init_estimate=init.estimate, init_status=init.status
            )
        for a, w in by_align.items():
            row.update(
                {
                    f"{a}_best_case": w.best_case,
                    f"{a}_estimate": w.estimate,
                    f"{a}_status": w.status,
                }
            )
        rows.append(row)
    split = disagreement({k: v.best_case for k, v in verdicts.items()})
    for row in rows:
        if split and row["claim"] in IMAGE_CLAIMS:
            row["notes"].append(split)
        row["notes"] = "; ".join(n for n in row["notes"] if n)
    return rows


def claims_table(
    per_image: pd.DataFrame,
    losses: pd.DataFrame,
    loss_source: str = "local_mi + global_mi (nats)",
    align: str | None = None,
    study_case: str = stats.STUDY_CASE,
    level: float = stats.LEVEL,
) -> pd.DataFrame:
    """One row per setting and claim: `setting`, rundir.CLAIM_COLUMNS, then `sentence`,
    `notes`, `value_<case>` (each case's point estimate), the untrained control (`init_best_case,
    init_estimate, init_status`) and each other alignment's (`<A>_best_case, <A>_estimate, <A>_status`)."""
    # units as integer codes: the same grouping, without hashing strings in every groupby
    per_image = per_image.assign(
        case=per_image["case"].astype(str),
        group=pd.factorize(per_image["group"].astype(str))[0],
    )
    rows = []
    for setting in sorted(per_image[SETTING].unique()):
        part = per_image[per_image[SETTING] == setting]
        curves = losses[losses[SETTING] == setting]
        for row in _claims_of_setting(part, curves, loss_source, align, study_case, level):
            rows.append({SETTING: setting, **row})
    out = pd.DataFrame(rows)
    first = [SETTING, *rundir.CLAIM_COLUMNS, "sentence", "notes"]
    values = sorted(c for c in out.columns if c.startswith("value_"))
    rest = [c for c in out.columns if c not in first and c not in values]
    out = out[first + values + rest]
    return out.astype({"n_seeds": int, "n_units": int})


# --------------------------------------------------------------------------------------- output


def one_seed(claims: pd.DataFrame) -> bool:
    """Whether some claim rests on one training run per case."""
    tested = claims[claims["best_case"].notna()]
    return bool(len(tested)) and bool((tested["n_seeds"] < 2).any())


ESTABLISH = (
    f"With one seed the claims are not established (one training run per case): `make study` (five seeds: "
    f"{STUDY_COMMAND}) establishes them."
)


def lines(claims: pd.DataFrame) -> list[str]:
    """The sentences (with their notes), then, with one seed, the line that says how to establish them."""
    out, several = [], several_settings(claims)
    for _, r in claims.iterrows():
        prefix = f"[{r[SETTING]}] " if several else ""
        notes = r.get("notes")
        out.append(
            prefix
            + str(r["sentence"])
            + (f" Note: {notes}." if isinstance(notes, str) and notes else "")
        )
    if one_seed(claims):
        out.append(ESTABLISH)
    return out
