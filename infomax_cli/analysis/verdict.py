"""The test behind each claim: does the study's case have the highest value of a statistic, by a
difference that matters?

From cells (seed, unit, case, value): each case's mean, and the paired difference of the study case
against every other case, the claim's pre-specified pairs (c - a, c - b, c - d). Each pair gets an
interval from the paired cells (stats.table_interval) at the simultaneous level 1 - 0.05/K (Bonferroni
over the K pairs: all K intervals cover their differences together with probability >= 95%), with one
seed's mean taken to vary by at least a tenth of the margin (`FLOOR`: identical seeds are no
certainty, so a zero-width interval never decides). With `margin` the smallest difference worth
reporting, a pair is

* `beats`: its interval is above 0 and its estimate above +margin (c ahead by a difference that matters),
* `loses`: its interval is below 0 and its estimate below -margin,
* `within`: its interval lies inside (-margin, +margin),
* else undecided;

and the claim `holds` when c beats every other case, `fails` when some case beats c, is `equivalent`
when every pair lies within the margin, else `not established`; always `not established` with one seed
(one training run per case). Holds and fails each need some simultaneous interval to miss its
difference when no case differs, so together they happen at most 5% of the time (tests/test_verdict.py
simulates it). The headline is the claim's parameter min_o (c - o), c minus the truly strongest other
case: its estimate the smallest pair estimate, its interval [min low, min high], which covers it
whenever every pair's interval covers its own (>= 95%) and agrees with the status (holds: its low
above 0; fails: its high below 0). `seeds_needed`: the fewest seeds at which every pair's half-width
would fall below the margin, from the sweep's own seed and unit variance parts; NaN when the image
units alone leave a half-width above the margin (more photographs, not seeds, are missing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import stats

HOLDS, FAILS, EQUIVALENT, NOT_ESTABLISHED = "holds", "fails", "equivalent", "not established"
BEATS, LOSES, WITHIN, UNDECIDED = "beats", "loses", "within margin", "undecided"
FLOOR = 0.2  # one seed's mean varies by at least FLOOR * margin


def pair_level(n_pairs: int, level: float = stats.LEVEL) -> float:
    """Each pair's level so that all n_pairs intervals cover together with probability >= level."""
    return 1 - (1 - level) / max(n_pairs, 1)


def pair_decisions(est, low, high, margin) -> np.ndarray:
    """BEATS / LOSES / WITHIN / UNDECIDED per pair (vectorised; NaN: undecided)."""
    est, low, high = (np.asarray(a, dtype=float) for a in (est, low, high))
    return np.select(
        [
            (low > 0) & (est > margin),
            (high < 0) & (est < -margin),
            (low > -margin) & (high < margin),
        ],
        [BEATS, LOSES, WITHIN],
        UNDECIDED,
    )


def decide(est, low, high, margin, n_seeds) -> np.ndarray:
    """The claim's status from its pairs (the last axis of est, low, high; the rest vectorised)."""
    pairs = pair_decisions(est, low, high, margin)
    return np.select(
        [
            np.asarray(n_seeds) < 2,
            (pairs == BEATS).all(-1),
            (pairs == LOSES).any(-1),
            (pairs == WITHIN).all(-1),
        ],
        [NOT_ESTABLISHED, HOLDS, FAILS, EQUIVALENT],
        NOT_ESTABLISHED,
    )


def headline(est, low, high):
    """(estimate, low, high) of min over the pairs (the last axis): c minus the strongest other case."""
    return np.min(est, -1), np.min(low, -1), np.min(high, -1)


def pair_arrays(diffs, margin: float, units_random: bool = True, level: float = stats.LEVEL):
    """The pairs' intervals of many claims at once, as compare_cases computes them one by one (through
    stats.table_interval) on complete tables: `diffs` (..., K, S, G) crossed cells of c - o per pair
    (units_random) or (..., K, S) one value per seed (fixed units). Returns est, low, high and each
    pair's seeds_needed, (..., K); the claim's status and headline follow from decide and headline."""
    diffs = np.asarray(diffs, dtype=float)
    k, floor = diffs.shape[-3 if units_random else -2], FLOOR * margin
    each = pair_level(k, level)
    if units_random:
        s, g = diffs.shape[-2:]
        est, half = stats.crossed_halfwidth(diffs, each, floor)
        _, ms_seed, excess = stats.crossed_parts(diffs, floor)
        seed_var, unit_part = ms_seed / g, stats.t_quantile(g - 1, each) ** 2 * excess / (s * g)
    else:
        est, half = stats.mean_halfwidth(diffs, each, floor)
        seed_var, unit_part = np.maximum(diffs.var(-1, ddof=1), floor**2), 0.0
    # the seeds at which every pair's interval would be narrower than the margin, from this sweep's
    # own seed and unit variance parts; no seed count helps when the units alone are too few
    needed = stats.seeds_needed(seed_var, unit_part, margin, each)
    return est, est - half, est + half, needed


@dataclass
class Verdict:
    values: dict  # case -> point estimate
    best_case: str | None = None
    other: str | None = None  # the other case with the highest point estimate
    estimate: float = math.nan  # the headline: min over the pairs
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_seeds: int = 0
    n_units: int = 0
    status: str = NOT_ESTABLISHED
    beaten: tuple = ()
    lost: tuple = ()
    tied: tuple = ()  # the pairs neither beaten nor lost
    reason: str = ""  # why the claim cannot be tested, when it cannot
    margin: float = math.nan
    seeds_needed: float = math.nan  # NaN: unknown (one seed) or more image units needed
    units_short: bool = False  # the image units alone leave a half-width above the margin
    pairs: dict[str, stats.Interval] = field(default_factory=dict)  # other case -> c - other
    decisions: dict[str, str] = field(default_factory=dict)  # other case -> BEATS ...
    pair_seeds: dict[str, float] = field(default_factory=dict)  # other case -> its seeds_needed


def _wide(cells: pd.DataFrame) -> pd.DataFrame:
    wide = cells.pivot_table(index=["seed", "unit"], columns="case", values="value", aggfunc="mean")
    wide.columns = [str(c) for c in wide.columns]
    return wide


def _pair_intervals(wide, study_case, others, level, units_random, margin, share) -> dict:
    """c - o for each other case o, at the simultaneous level, floored, clipped to [-1, 1] for shares."""
    floor = FLOOR * margin if np.isfinite(margin) else 0.0
    each = pair_level(len(others), level)
    out = {}
    for o in others:
        diff = (wide[study_case] - wide[o]).unstack("unit")
        iv = stats.table_interval(diff, each, units_random, floor)
        if share and not math.isnan(iv.ci_low):
            iv = iv._replace(ci_low=max(iv.ci_low, -1.0), ci_high=min(iv.ci_high, 1.0))
        out[o] = iv
    return out


def compare_cases(
    cells: pd.DataFrame,
    study_case: str = stats.STUDY_CASE,
    level: float = stats.LEVEL,
    units_random: bool = True,
    margin: float = math.nan,
    share: bool = False,
) -> Verdict:
    """Does `study_case` have the highest value, by more than `margin`? `cells`: seed, unit, case,
    value; `share`: the values are shares (intervals clipped to [-1, 1])."""
    if cells.empty:
        return Verdict({}, reason="no data")
    # each case's own mean and interval: what the table and best_case report, not what decides
    wide = _wide(cells)
    ivs = {c: stats.table_interval(wide[c].unstack("unit"), level, units_random) for c in wide}
    values = {c: x.mean for c, x in sorted(ivs.items()) if not math.isnan(x.mean)}
    if not values:
        return Verdict({}, reason="no data")
    best = max(values, key=values.get)
    if study_case in values and values[study_case] == values[best]:
        best = study_case  # a tie for the top: the study case is (one of) the best
    if study_case not in values:
        return Verdict(values, best, reason=f"case {study_case} is not in the sweep")
    others = [c for c in values if c != study_case]
    if not others:
        return Verdict(values, best, reason="the sweep holds no other case to compare with")
    # what decides: c minus each other case, paired within (seed, unit), each interval at the
    # Bonferroni level 1 - alpha/(cases - 1) so that together they cover with the stated level
    pairs = _pair_intervals(wide, study_case, others, level, units_random, margin, share)
    est, low, high = (
        np.array([getattr(pairs[o], k) for o in others]) for k in ("mean", "ci_low", "ci_high")
    )
    n_seeds = min(p.n_seeds for p in pairs.values())
    decisions = dict(zip(others, pair_decisions(est, low, high, margin).tolist()))
    # the seeds at which every pair's interval would be narrower than the margin, from this sweep's
    # own seed and unit variance parts; no seed count helps when the units alone are too few
    needed = stats.seeds_needed(
        [p.seed_var for p in pairs.values()],
        [p.unit_part for p in pairs.values()],
        margin,
        pair_level(len(others), level),
    )
    units_short = any(p.unit_part >= margin**2 for p in pairs.values())
    pair_seeds = dict(zip(others, needed.tolist()))
    # the headline: c minus the truly strongest other, its limits the smallest of the pairs' (no
    # selection of "the strongest" from the same data, which biased it low)
    h_est, h_low, h_high = headline(est, low, high)
    return Verdict(
        values,
        best,
        max(others, key=values.get),
        float(h_est),
        float(h_low),
        float(h_high),
        n_seeds,
        max(p.n_units for p in pairs.values()),
        str(decide(est, low, high, margin, n_seeds)),
        tuple(o for o in others if decisions[o] == BEATS),
        tuple(o for o in others if decisions[o] == LOSES),
        tuple(o for o in others if decisions[o] not in (BEATS, LOSES)),
        margin=margin,
        seeds_needed=float(np.max(needed)) if not units_short else math.nan,
        units_short=units_short,
        pairs=pairs,
        decisions=decisions,
        pair_seeds=pair_seeds,
    )
