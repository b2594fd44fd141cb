"""One claim's verdict from its cells (seed, unit, case, value): each case's mean, the study case's
pre-specified pairs c - o judged by the rule (rule.py) at the look's levels (its sweep's plan,
sequential.py), the headline c minus the strongest other case, and the seeds that would settle it
(planning.py). `compare_cases` is the function `infomax compare` runs per claim; rule.claim_arrays is
its arithmetic on many complete tables at once (tests/test_verdict.py checks they agree).
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import planning, stats
from .rule import (  # noqa: F401 - the rule's names, as `verdict.X` for its callers
    ALPHA,
    BEATS,
    DECIDED,
    EQUIVALENT,
    FAILS,
    FLOOR,
    HOLDS,
    LOSES,
    NOT_ESTABLISHED,
    UNDECIDED,
    WITHIN,
    Decision,
    Levels,
    Pairs,
    Status,
    alphas,
    claim_arrays,
    decide,
    halfwidth,
    headline,
    limits,
    pair_decisions,
)
from .sequential import Plan


def coverage(k: int, alpha: float = ALPHA) -> float:
    """The coverage of a pair's [low, high] over every look of the plan."""
    low, high, _ = alphas(k, alpha)
    return 1 - low - high


@dataclass(frozen=True)
class Look:
    """Where a comparison stands in its sweep's plan: the plan (None: one look that spends everything,
    the fixed-size test) and the seed counts of the claim's earlier looks."""

    plan: Plan | None = None
    before: tuple[int, ...] = ()

    def levels(self, n_seeds: int, k: int) -> Levels:
        if self.plan is None:
            return Levels.fixed(k)
        return Levels.at(self.plan, self.before, n_seeds, k)


class Pair(NamedTuple):
    """One pre-specified pair c - o as claims_pairs.csv has it."""

    estimate: float
    ci_low: float
    ci_high: float
    equiv_low: float
    equiv_high: float
    n_seeds: int
    n_units: int
    decision: Decision = UNDECIDED
    seeds_needed: float = math.nan
    seeds_needed_high: float = math.nan


@dataclass
class Verdict:
    """One claim judged: each case's mean, the headline c minus the strongest other with its limits,
    the status, each pair's decision and limits, and the seeds that would settle it; or, when the
    claim cannot be tested, why (`reason`)."""

    values: dict[str, float]  # case -> point estimate
    _: KW_ONLY  # the rest by name
    best_case: str | None = None
    other: str | None = None  # the other case with the highest point estimate
    estimate: float = math.nan  # the headline: min over the pairs
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_seeds: int = 0
    n_units: int = 0
    status: Status = NOT_ESTABLISHED
    beaten: tuple[str, ...] = ()  # the other cases c beats
    lost: tuple[str, ...] = ()  # the other cases c loses to
    tied: tuple[str, ...] = ()  # the pairs neither beaten nor lost
    reason: str = ""  # why the claim cannot be tested, when it cannot
    margin: float = math.nan
    seeds_needed: float = math.nan  # NaN: decided, unknown (one seed) or see `why`
    seeds_needed_high: float = math.nan  # the same at the seed variance's upper confidence limit
    why: str = ""  # why no seed count is given: planning.UNITS or planning.PLAN (or "")
    levels: Levels | None = None
    pairs: dict[str, Pair] = field(default_factory=dict)  # other case -> c - other

    @property
    def decisions(self) -> dict[str, Decision]:
        return {o: p.decision for o, p in self.pairs.items()}

    @property
    def units_short(self) -> bool:
        """The image units alone keep some pair from being decided, whatever the seeds."""
        return self.why == planning.UNITS


def _wide(cells: pd.DataFrame) -> pd.DataFrame:
    wide = cells.pivot_table(index=["seed", "unit"], columns="case", values="value", aggfunc="mean")
    wide.columns = [str(c) for c in wide.columns]
    return wide


def _parts(iv: stats.Interval) -> tuple:
    return (iv.mean, iv.seed_var, iv.unit_var, iv.n_seeds, iv.n_units)


def _one_seed(table, levels: Levels, units_random: bool, floor: float) -> tuple[float, float]:
    """An interval over the image units of one training run, at the look's levels: shown, never
    deciding (one seed says nothing about training)."""
    low = stats.table_interval(table, 1 - 2 * levels.low, units_random, floor).ci_low
    high = stats.table_interval(table, 1 - 2 * levels.high, units_random, floor).ci_high
    return low, high


def pair_limits(wide, study_case, others, look: Look, units_random, margin, share) -> Pairs:
    """c - o for each other case o at the look's levels (K pairs on the axis), floored; winner
    shares by their own limits (`limits`)."""
    floor = FLOOR * margin if np.isfinite(margin) else 0.0
    tables = [(wide[study_case] - wide[o]).unstack("unit") for o in others]
    ivs = [stats.table_interval(t, stats.LEVEL, units_random, floor) for t in tables]
    n_seeds = min(iv.n_seeds for iv in ivs)
    levels = look.levels(n_seeds, len(others))
    est = np.array([iv.mean for iv in ivs])
    if n_seeds < 2:  # an interval over the units, deciding nothing
        lo, hi = np.array([_one_seed(t, levels, units_random, floor) for t in tables]).T
        if share:
            lo, hi = np.maximum(lo, -1.0), np.minimum(hi, 1.0)
        nan = np.full(len(others), np.nan)
        return Pairs(est, lo, hi, nan, nan, nan, nan, n_seeds, max(iv.n_units for iv in ivs))
    cases = None
    if share:  # every case's own share and its parts, the study case first
        case_ivs = [stats.table_interval(wide[c].unstack("unit")) for c in [study_case, *others]]
        cases = tuple(np.array(x) for x in zip(*(_parts(c)[:3] for c in case_ivs)))
    rows = []
    for i, iv in enumerate(ivs):
        mine = None if cases is None else (cases[0][:1], cases[0][i + 1 : i + 2], cases)
        p = limits(tuple(np.atleast_1d(x) for x in _parts(iv)[:3]) + _parts(iv)[3:], levels, mine)
        rows.append([float(np.asarray(x).ravel()[0]) for x in p[:7]])
    cols = [np.array(c) for c in zip(*rows)]
    return Pairs(*cols, n_seeds, max(iv.n_units for iv in ivs))


def _share_scale(pairs: Pairs, levels: Levels) -> np.ndarray:
    """How much wider a share pair's limits are than its own variance makes them (for planning)."""
    s, g = pairs.n_seeds, pairs.n_units
    own = halfwidth(pairs.seed_var, pairs.unit_var, s, g, levels.low)
    own = own + halfwidth(pairs.seed_var, pairs.unit_var, s, g, levels.high)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(own > 0, np.maximum((pairs.high - pairs.low) / own, 1.0), 1.0)


def compare_cases(
    cells: pd.DataFrame,
    study_case: str = stats.STUDY_CASE,
    units_random: bool = True,
    margin: float = math.nan,
    share: bool = False,
    look: Look = Look(),
) -> Verdict:
    """Does `study_case` have the highest value, by more than `margin`? `cells`: seed, unit, case,
    value; `share`: the values are shares; `look`: where the sweep's plan stands (default: one look,
    the fixed-size test)."""
    if cells.empty:
        return Verdict({}, reason="no data", margin=margin)
    # each case's own mean: what the table and best_case report, not what decides
    wide = _wide(cells)
    ivs = {
        c: stats.table_interval(wide[c].unstack("unit"), stats.LEVEL, units_random) for c in wide
    }
    values = {c: x.mean for c, x in sorted(ivs.items()) if not math.isnan(x.mean)}
    if not values:
        return Verdict({}, reason="no data", margin=margin)
    best = max(values, key=values.get)
    if study_case in values and values[study_case] == values[best]:
        best = study_case  # a tie for the top: the study case is (one of) the best
    if study_case not in values:
        reason = f"case {study_case} is not in the sweep"
        return Verdict(values, best_case=best, reason=reason, margin=margin)
    others = [c for c in values if c != study_case]
    if not others:
        reason = "the sweep holds no other case to compare with"
        return Verdict(values, best_case=best, reason=reason, margin=margin)
    # what decides: c minus each other case, paired within (seed, unit), at the look's levels
    pairs = pair_limits(wide, study_case, others, look, units_random, margin, share)
    status = Status(str(decide(pairs, margin))) if pairs.n_seeds >= 2 else NOT_ESTABLISHED
    decisions = [Decision(d) for d in pair_decisions(pairs, margin).tolist()]
    scale = _share_scale(pairs, look.levels(pairs.n_seeds, len(others))) if share else 1.0
    needed, high, why = planning.seeds_needed(pairs, margin, look.plan, look.before, scale)
    claim = planning.claim_seeds(needed, high, why, status in DECIDED, pairs.n_seeds)
    # the headline: c minus the truly strongest other, its limits the smallest of the pairs' (no
    # selection of "the strongest" from the same data, which biased it low)
    h_est, h_low, h_high = (float(x) for x in headline(pairs))
    rows = zip(others, *pairs[:5], decisions, needed, high)
    return Verdict(
        values,
        best_case=best,
        other=max(others, key=values.get),
        estimate=h_est,
        ci_low=h_low,
        ci_high=h_high,
        n_seeds=pairs.n_seeds,
        n_units=pairs.n_units,
        status=status,
        beaten=tuple(o for o, d in zip(others, decisions) if d == BEATS),
        lost=tuple(o for o, d in zip(others, decisions) if d == LOSES),
        tied=tuple(o for o, d in zip(others, decisions) if d not in (BEATS, LOSES)),
        margin=margin,
        seeds_needed=claim[0],
        seeds_needed_high=claim[1],
        why=claim[2],
        levels=look.levels(pairs.n_seeds, len(others)),
        pairs={
            o: Pair(e, lo, hi, el, eh, pairs.n_seeds, pairs.n_units, d, float(nd), float(nh))
            for o, e, lo, hi, el, eh, d, nd, nh in rows
        },
    )
