"""A claim's verdict in words: the sentence of claims.csv (what was tested, at which level, with what
result) and its notes on the untrained control and the other alignments. Nothing here computes a
statistic; `claim` is a claims.Claim (its label, words and unit), `v` a verdict.Verdict."""

from __future__ import annotations

import math

import pandas as pd

from ..rundir import SETTING, several_settings
from . import planning, stats
from .verdict import BEATS, EQUIVALENT, FAILS, HOLDS, LOSES, UNDECIDED, WITHIN, Verdict

NATS, SHARE = "nats", "share"


def num(x: float, kind: str, sign: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if kind == SHARE:
        return f"{100 * x:+.1f} points" if sign else f"{100 * x:.1f}%"
    return f"{x:+.4f} nats" if sign else f"{x:.4f} nats"


def unsigned(x: float, kind: str) -> str:
    """A size (a margin): nats to 4 significant digits, or points for a share."""
    return f"{100 * x:.3g} points" if kind == SHARE else f"{x:.4g} nats"


def bare(x: float, kind: str) -> str:
    return f"{100 * x:+.1f}" if kind == SHARE else f"{x:+.4f}"


def cases(names, verb: str = "") -> str:
    many = len(names) > 1
    return f"case{'s' if many else ''} {', '.join(names)}" + (
        f" {verb}{'' if many else 's'}" if verb else ""
    )


def seeds_range(needed: float, high: float) -> str:
    """'33' or '33-80' (the plug-in count to the count at the variance's upper limit)."""
    if math.isnan(needed):
        return ""
    if math.isnan(high):
        return f"{int(needed)} to more than the plan allows"
    return f"{int(needed)}" if int(high) == int(needed) else f"{int(needed)}–{int(high)}"


def open_pairs(v: Verdict, study_case: str) -> str:
    """Where a claim that is not established stands, pair by pair."""
    by: dict[str, list[str]] = {}
    for o, d in v.decisions.items():
        by.setdefault(d, []).append(o)
    parts = []
    if by.get(BEATS):
        parts.append(f"case {study_case} beats {', '.join(by[BEATS])}")
    if by.get(WITHIN):
        parts.append(f"is within the margin of {', '.join(by[WITHIN])}")
    if by.get(UNDECIDED):  # its limits reach across 0 or across the margin
        parts.append(f"is not yet told from {', '.join(by[UNDECIDED])}")
    if by.get(LOSES):
        parts.append(f"loses to {', '.join(by[LOSES])}")
    return ", ".join(parts) if parts else f"case {study_case} is not yet told from the others"


def detectable(v: Verdict, claim, max_seeds: int | None = None) -> str:
    """What the sweep could detect: its margin, and the seeds (or image units) it would take to decide
    every pair with 80% probability."""
    margin = f"margin ±{unsigned(v.margin, claim.kind)}"
    if v.units_short:
        return (
            f"{margin}; more image units (photographs), not seeds, are missing: the units alone "
            "keep a pair's limits across 0 or the margin"
        )
    if v.decisions and UNDECIDED not in v.decisions.values():
        return (
            f"{margin}; every pair is decided: a mixed verdict, which more seeds would not change"
        )
    if v.why == planning.PLAN:
        plan = f" ({max_seeds})" if max_seeds else ""
        return f"{margin}; more seeds than the plan's compare.max_seeds{plan} would be needed"
    if math.isnan(v.seeds_needed):
        return margin
    return (
        f"{margin}; about {seeds_range(v.seeds_needed, v.seeds_needed_high)} seeds would decide "
        "every pair with 80% probability"
    )


def status_phrase(v: Verdict, study_case: str, claim, max_seeds: int | None = None) -> str:
    """The status in words: what was tested and found, or what the sweep could detect."""
    margin = f"±{unsigned(v.margin, claim.kind)}"
    if v.reason:
        return f"cannot be tested: {v.reason}"
    if v.n_seeds < 2:
        return "not established (one training run per case)"
    if v.status == HOLDS:
        return (
            f"holds: case {study_case} is ahead of every other case (each pair's lower limit above 0) "
            f"and each estimated lead is beyond the margin ({margin})"
        )
    if v.status == FAILS:
        return (
            f"fails: {cases(v.lost, 'beat')} case {study_case} (its upper limit below 0, corrected for "
            f"the {len(v.pairs)} pairs, and the estimate beyond the margin, {margin})"
        )
    if v.status == EQUIVALENT:
        return (
            f"equivalent: every pair's 90% interval (two one-sided tests) lies inside the margin "
            f"({margin}): no case differs from case {study_case} by that much"
        )
    detect = detectable(v, claim, max_seeds)
    return f"not established: {open_pairs(v, study_case)} ({detect})"


def sentence(
    claim,
    v: Verdict,
    study_case: str,
    units_random: bool,
    examples: str = "",
    look: str = "",
    max_seeds: int | None = None,
) -> str:
    """The claim in one sentence. `look`: which look of the sweep's plan this is, in words."""
    what = claim.what.format(examples=examples or "the example images")
    if v.reason and v.best_case is None:
        return f"{claim.label}: not available ({v.reason})."
    head = f"{claim.label}: {what} is highest for case {v.best_case}"
    if v.reason:
        return f"{head}; {status_phrase(v, study_case, claim)}."
    diff = f"{study_case} − strongest other ({v.other}) = {num(v.estimate, claim.kind)}"
    if math.isnan(v.ci_low):
        where = "no interval from one seed" if v.n_seeds < 2 else "no interval"
    else:
        over = (
            f"over {v.n_seeds} seeds" + (f" and {v.n_units} image units" if units_random else "")
            if v.n_seeds > 1
            else f"over {v.n_units} image units of one training run"
        )
        lo, hi = bare(v.ci_low, claim.kind), bare(v.ci_high, claim.kind)
        where = f"95% interval {lo} to {hi} {over}{look}"
    return f"{head} ({diff}; {where}); {status_phrase(v, study_case, claim, max_seeds)}."


def init_note(v: Verdict, init: Verdict, claim, study_case: str) -> str:
    if init.best_case is None or init.reason:
        return ""
    diff = f"{study_case} − {init.other} = {num(init.estimate, claim.kind)}" if init.other else ""
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
