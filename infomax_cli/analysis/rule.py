"""The test behind each claim: does the study's case have the highest value of a statistic, by a
difference that matters?

From cells (seed, unit, case, value): each case's mean, and the paired difference of the study case
against every other case, the claim's pre-specified pairs (c - a, c - b, c - d). Each pair gets limits
from the paired cells (the seed part with S-1 degrees of freedom, the unit part with G-1, stats.py), with
one seed's mean taken to vary by at least a fifth of the margin (`FLOOR`: identical seeds are no
certainty). The floor only widens: at the fixed-size levels two identical seeds get a lower limit 1.8
margins below their estimate (t(1) = 12.7), so they neither hold nor fail, but a 90% equivalence
interval of +-0.89 margins, so two seeds that agree to six digits on a difference near 0 are
equivalent; five get +-0.19 margins. By a plan (sequential.py) a look at two seeds is taken at a far
smaller level: with the default plan nothing is decided at two seeds.

With `margin` the smallest difference worth reporting and alpha = 5%, three tests, each at its own
level (`Levels`):

* `holds` (c beats every other case) is an intersection-union test: each pair's one-sided test at
  alpha/2, no correction: a pair `beats` when its lower limit (one-sided 1 - alpha/2) is above 0 and its
  estimate above +margin;
* `fails` (some case beats c) is a union over the K pairs: each pair's upper limit at one-sided
  1 - alpha/(2K) (Bonferroni); a pair `loses` when it is below 0 and its estimate below -margin;
* `equivalent` (every pair inside the margin): each pair's two one-sided tests at alpha, i.e. its 90%
  interval (`equiv_low, equiv_high`) inside (-margin, +margin): `within margin`;
* else a pair is `undecided`; with one seed every pair is (one training run per case says nothing about
  training).

Where no case differs, holds and fails each happen at most alpha/2 of the time, together at most alpha;
equivalent is wrong (some pair truly beyond the margin) at most alpha of the time. A sweep looked at
again and again takes each look's levels from its plan (sequential.py): the same tests at smaller
nominal levels, so the error rates hold over all looks. The headline is the claim's parameter
min_o (c - o), c minus the truly strongest other case: its estimate the smallest pair estimate, its
interval [min low, min high]: the lower limit covers by the intersection-union argument (the truly
strongest other's lower limit alone must), the upper one by the union's correction, so it covers with
>= 95% and agrees with holds / fails. Winner shares are bounded: their pairs' limits are taken on the
atanh scale and at least as wide as the wins' common design effect makes them (`_share_limits`).
`seeds_needed` (planning.py): the seeds at which every pair would be decided with 80% probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np
from scipy.special import stdtrit

from . import stats
from .sequential import Plan

ALPHA = 0.05  # every claim's error rate: holds or fails wrongly, or equivalent wrongly


class Status(StrEnum):
    """A claim's status, as claims.csv writes it (a member is its text)."""

    HOLDS = "holds"
    FAILS = "fails"
    EQUIVALENT = "equivalent"
    NOT_ESTABLISHED = "not established"


class Decision(StrEnum):
    """One pair's decision, as claims_pairs.csv writes it (a member is its text)."""

    BEATS = "beats"
    LOSES = "loses"
    WITHIN = "within margin"
    UNDECIDED = "undecided"


# the members by their names, for the callers
HOLDS, FAILS, EQUIVALENT, NOT_ESTABLISHED = Status
BEATS, LOSES, WITHIN, UNDECIDED = Decision
DECIDED = (HOLDS, FAILS, EQUIVALENT)
FLOOR = 0.2  # one seed's mean varies by at least FLOOR * margin


def alphas(k: int, alpha: float = ALPHA) -> tuple[float, float, float]:
    """The one-sided errors of a pair's lower limit (holds), upper limit (fails: a union over k pairs)
    and equivalence limits (two one-sided tests), spent over the whole plan."""
    return alpha / 2, alpha / (2 * max(k, 1)), alpha


@dataclass(frozen=True)
class Levels:
    """One look's one-sided nominal errors: each limit's t quantiles are taken at 1 - these."""

    low: float
    high: float
    equiv: float

    @classmethod
    def fixed(cls, k: int, alpha: float = ALPHA) -> Levels:
        """One look that spends everything: the fixed-size test."""
        return cls(*alphas(k, alpha))

    @classmethod
    def at(cls, plan: Plan, before, n: int, k: int, alpha: float = ALPHA) -> Levels:
        """A look at n seeds after looks at `before` seeds, by the plan (a look that cannot test, one
        seed: the fixed-size levels, for an interval shown but deciding nothing)."""
        if n < 2:
            return cls.fixed(k, alpha)
        return cls(*(plan.level(before, n, a) for a in alphas(k, alpha)))


class Pairs(NamedTuple):
    """The pairs c - o of one or many claims (the pairs on the last axis)."""

    est: np.ndarray
    low: np.ndarray
    high: np.ndarray
    equiv_low: np.ndarray
    equiv_high: np.ndarray
    seed_var: np.ndarray  # the variance of one seed's mean (floored)
    unit_var: np.ndarray  # the unit part of the mean's variance (0: units fixed)
    n_seeds: int
    n_units: int


def t_one_sided(df, p):
    """The one-sided 1 - p Student t quantile, -t_p (exact for tiny p; inf for p = 0)."""
    p = np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p > 0, -stdtrit(df, np.where(p > 0, p, 0.5)), np.inf)


def halfwidth(seed_var, unit_var, n_seeds, n_units, p):
    """t(S-1, 1-p)^2 seed_var / S + t(G-1, 1-p)^2 unit_var, square-rooted (G < 2: no unit part)."""
    seed = t_one_sided(n_seeds - 1, p) ** 2 * np.asarray(seed_var) / n_seeds
    if n_units < 2:
        return np.sqrt(seed)
    return np.sqrt(seed + t_one_sided(n_units - 1, p) ** 2 * np.asarray(unit_var))


def _share_limits(est, h, n_cells: int):
    """Limits of share differences d with half-widths h = (lower, upper) taken on the atanh scale by
    the delta method: they stay inside [-1, 1] and reach further toward the far side of a difference
    near a bound; d clipped to +-(1 - 1/cells) for the transform, so that a difference of 1 keeps an
    interval (which then reaches the estimate itself)."""
    d = np.clip(est, -1 + 1 / n_cells, 1 - 1 / n_cells)
    slope = 1 / (1 - d * d)
    low, high = np.tanh(np.arctanh(d) - h[0] * slope), np.tanh(np.arctanh(d) + h[1] * slope)
    return np.minimum(low, est), np.maximum(high, est)


def share_spread(shares, seed_var, unit_var, n_seeds, n_units, p):
    """The wins' common design effect at level p, as h^2 / (p (1-p)) of the case with the largest
    (cases on the last axis; 0 where no case has a share strictly between 0 and 1)."""
    shares = np.asarray(shares, dtype=float)
    ok = (shares > 0) & (shares < 1)
    h = halfwidth(seed_var, unit_var, n_seeds, n_units, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(ok, h**2 / np.where(ok, shares * (1 - shares), 1.0), 0.0)
    return np.nanmax(ratio, -1)


def limits(parts, levels: Levels, share=None) -> Pairs:
    """The pairs' limits from their parts (est, seed_var, unit_var, n_seeds, n_units; the pairs on the
    last axis) at one look's levels. `share`, for a share claim: (the study case's share, the other
    case's share of each pair, and every case's (share, seed_var, unit_var), the cases on the last
    axis)."""
    est, seed_var, unit_var, s, g = parts
    hs = {
        k: halfwidth(seed_var, unit_var, s, g, getattr(levels, k)) for k in ("low", "high", "equiv")
    }
    if share is None:
        lo, hi = est - hs["low"], est + hs["high"]
        eq = (est - hs["equiv"], est + hs["equiv"])
    else:
        p_study, p_other, cases = share
        gap = np.maximum(p_study + p_other - est**2, 0.0)
        for k in hs:  # at least as wide as the wins' common design effect makes a difference
            spread = share_spread(*cases, s, g, getattr(levels, k))
            hs[k] = np.maximum(hs[k], np.sqrt(spread[..., None] * gap))
        cells = s * max(g, 1)
        lo, hi = _share_limits(est, (hs["low"], hs["high"]), cells)
        eq = _share_limits(est, (hs["equiv"], hs["equiv"]), cells)
    return Pairs(est, lo, hi, eq[0], eq[1], seed_var, unit_var, s, g)


def pair_decisions(pairs: Pairs, margin) -> np.ndarray:
    """BEATS / LOSES / WITHIN / UNDECIDED per pair (vectorised; NaN, or one seed: undecided)."""
    est, margin = np.asarray(pairs.est, dtype=float), np.asarray(margin, dtype=float)
    if pairs.n_seeds < 2:
        return np.full(est.shape, UNDECIDED, dtype=object)
    return np.select(
        [
            (pairs.low > 0) & (est > margin),
            (pairs.high < 0) & (est < -margin),
            (pairs.equiv_low > -margin) & (pairs.equiv_high < margin),
        ],
        [BEATS, LOSES, WITHIN],
        UNDECIDED,
    )


def decide(pairs: Pairs, margin) -> np.ndarray:
    """The claim's status from its pairs (the last axis; the rest vectorised)."""
    d = pair_decisions(pairs, margin)
    return np.select(
        [(d == BEATS).all(-1), (d == LOSES).any(-1), (d == WITHIN).all(-1)],
        [HOLDS, FAILS, EQUIVALENT],
        NOT_ESTABLISHED,
    )


def headline(pairs: Pairs):
    """(estimate, low, high) of min over the pairs (the last axis): c minus the strongest other case."""
    return np.min(pairs.est, -1), np.min(pairs.low, -1), np.min(pairs.high, -1)


def claim_arrays(cells, margin: float, levels: Levels, units_random: bool = True, share=False):
    """The pairs of many claims at once, as compare_cases computes them one claim at a time on complete
    tables: `cells` (..., cases, S, G) crossed cells (units_random) or (..., cases, S) one value per
    seed, the study case first. Returns the Pairs (..., K)."""
    cells = np.asarray(cells, dtype=float)
    if not units_random:
        cells = cells[..., None]
    diffs = cells[..., :1, :, :] - cells[..., 1:, :, :]
    s, g = diffs.shape[-2:]
    floor = FLOOR * margin
    if units_random:
        est, ms_seed, excess = stats.crossed_parts(diffs, floor)
        seed_var, unit_var = ms_seed / g, excess / (s * g)
    else:
        means = diffs[..., 0]
        est, seed_var = means.mean(-1), np.maximum(means.var(-1, ddof=1), floor**2)
        unit_var, g = np.zeros_like(est), 0
    shares = None
    if share:
        m, ms_case, ex_case = stats.crossed_parts(cells)
        shares = (m[..., :1], m[..., 1:], (m, ms_case / g, ex_case / (s * g)))
    return limits((est, seed_var, unit_var, s, g), levels, shares)
