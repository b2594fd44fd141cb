"""How many seeds would settle a claim: `seeds_needed` in claims.csv and claims_pairs.csv.

A pair c - o at S seeds is decided when its estimate lands in one of the decision regions of
verdict.py: above max(h_low, margin) (beats), below -max(h_high, margin) (loses), or inside
(-margin + h_equiv, margin - h_equiv) (within the margin), each h the half-width the pair would have at S
seeds at the level the plan gives a look at S (sequential.Plan.next_levels: the next look, after the
looks so far: adding the seeds in one round). Taking the sweep's estimate as the truth and the seed part
of its variance as what more seeds average away (the photographs stay the same, so their part stays),
the estimate at S seeds is normal around it with variance seed_var / S, and the chance of a decision is

    P(S) = Phi((d - max(h_low, m)) / se) + Phi((-max(h_high, m) - d) / se)
           + max(0, Phi((m - h_equiv - d) / se) - Phi((-m + h_equiv - d) / se)).

`seeds_needed` is the fewest S (more than the sweep has, at most the plan's `max_seeds`) with
P(S) >= 80%, for every pair of the claim still undecided: a half-width below the margin is not enough
(an estimate near the margin needs both). Four seeds' variance rests on 3 degrees of freedom, so
`seeds_needed_high` is the same with the seed variance at its one-sided 80% upper confidence limit
(chi-square): the pair is settled by then unless the variance was underestimated by more than that.
No number: `UNITS` when even infinitely many seeds would leave the decision under 80% likely (the image
units, the photographs, are too few: their part of the half-width alone reaches across 0 or the
margin); `PLAN` when it takes more seeds than the plan has. A winner share's limits are wider than its
own variance makes them (verdict._share_limits): its half-widths are scaled by what that adds now.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import chdtri, ndtr

from .rule import UNDECIDED, Pairs, alphas, halfwidth, pair_decisions, t_one_sided
from .sequential import Plan

P_DECIDE = 0.8  # seeds_needed: every undecided pair decided with this probability
UPPER = 0.8  # seeds_needed_high: the seed variance at this one-sided upper confidence limit
UNITS, PLAN = "units", "plan"
MAX_SEEDS = 1000  # without a plan: the most seeds looked at


def decide_probability(est, seed_var, unit_var, s, g, levels, margin, scale=1.0):
    """P(S) of the module docstring for seed counts s (an array, on a new last axis) whose looks have
    the one-sided levels `levels` (low, high, equiv arrays like s); est, seed_var, unit_var, scale:
    arrays of the pairs."""
    est, seed_var, unit_var, scale = (
        np.asarray(x, dtype=float)[..., None] for x in (est, seed_var, unit_var, scale)
    )
    se = np.sqrt(seed_var / s)
    h = [scale * halfwidth(seed_var, unit_var, s, g, p) for p in levels]
    beats = ndtr((est - np.maximum(h[0], margin)) / se)
    loses = ndtr((-np.maximum(h[1], margin) - est) / se)
    within = np.maximum(ndtr((margin - h[2] - est) / se) - ndtr((-margin + h[2] - est) / se), 0)
    return beats + loses + within


def _levels(plan: Plan | None, before, n: int, s: np.ndarray, k: int):
    """Each candidate look's one-sided levels (low, high, equiv), after looks at `before` and n."""
    if plan is None:  # a fixed-size sweep of s seeds: one look each
        return [np.full(s.shape, a) for a in alphas(k)]
    return [plan.next_levels([*before, n], s, a) for a in alphas(k)]


def _first(prob: np.ndarray, s: np.ndarray) -> np.ndarray:
    reach = prob >= P_DECIDE
    return np.where(reach.any(-1), s[np.argmax(reach, -1)], np.nan)


def seeds_needed(pairs: Pairs, margin: float, plan: Plan | None, before=(), scale=1.0):
    """Per pair (the last axis; the rest vectorised): (seeds_needed, seeds_needed_high, why), the
    fewest seeds at which the pair would be decided with P_DECIDE probability (module docstring);
    why: UNITS or PLAN where no count is given, else "". The pairs' own seeds when they are decided."""
    n, g, k = pairs.n_seeds, pairs.n_units, np.shape(pairs.est)[-1]
    est = np.asarray(pairs.est, dtype=float)
    if n < 2:
        nan = np.full(est.shape, np.nan)
        return nan, nan, np.full(est.shape, "", dtype=object)
    top = plan.max_seeds if plan is not None else MAX_SEEDS
    decided = pair_decisions(pairs, margin) != UNDECIDED
    if n >= top:  # the plan's last look has been: no more seeds can decide anything
        why = np.where(decided, "", PLAN).astype(object)
        return np.where(decided, n, np.nan), np.where(decided, n, np.nan), why
    s = np.arange(n + 1, top + 1, dtype=float)
    levels = _levels(plan, before, n, s, k)
    high_var = pairs.seed_var * (n - 1) / chdtri(n - 1, UPPER)
    args = (pairs.unit_var, s, g, levels, margin, scale)
    needed = _first(decide_probability(est, pairs.seed_var, *args), s)
    needed_high = _first(decide_probability(est, high_var, *args), s)
    # no count: would infinitely many seeds decide it? (the seed part gone, the last look's levels)
    unit_sd = np.sqrt(pairs.unit_var) if g >= 2 else np.zeros(est.shape)
    t_unit = [
        scale * (t_one_sided(g - 1, np.asarray(p)[-1]) if g >= 2 else 0.0) * unit_sd for p in levels
    ]
    can = (
        (est > np.maximum(t_unit[0], margin))
        | (est < -np.maximum(t_unit[1], margin))
        | (np.abs(est) < margin - t_unit[2])
    )
    why = np.where(np.isnan(needed), np.where(can, PLAN, UNITS), "")
    return (
        np.where(decided, n, needed),
        np.where(decided, n, needed_high),
        np.where(decided, "", why).astype(object),
    )


def claim_seeds(needed, needed_high, why, decided: bool, n_seeds: int):
    """A claim's (seeds_needed, seeds_needed_high, why) from its pairs' (arrays over the pairs): the
    largest, every pair's; the claim's own seeds when it is decided."""
    if decided:
        return float(n_seeds), float(n_seeds), ""
    needed, needed_high = np.asarray(needed, dtype=float), np.asarray(needed_high, dtype=float)
    reasons = [w for w in why if w]
    if reasons:
        return math.nan, math.nan, UNITS if UNITS in reasons else PLAN
    if not len(needed) or np.isnan(needed).any():  # one seed: no seed-to-seed spread yet
        return math.nan, math.nan, ""
    high = math.nan if np.isnan(needed_high).any() else float(needed_high.max())
    return float(needed.max()), high, ""
