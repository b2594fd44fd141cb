"""The test behind each claim: does the study's case have the highest value of a statistic?

From cells (seed, unit, case, value): each case's mean over seeds and units with its interval
(stats.table_interval), and the paired difference of the study case against every other case.
`holds` when the study case beats every other case (each paired interval above 0: an
intersection-union test, no correction needed), `fails` when some case beats it (an interval below
0), else `not established`; always `not established` with one seed (one training run per case).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import stats

HOLDS, FAILS, NOT_ESTABLISHED = "holds", "fails", "not established"


@dataclass
class Verdict:
    values: dict  # case -> point estimate
    best_case: str | None = None
    other: str | None = None
    estimate: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_seeds: int = 0
    n_units: int = 0
    status: str = NOT_ESTABLISHED
    beaten: tuple = ()
    lost: tuple = ()
    tied: tuple = ()
    reason: str = ""  # why the claim cannot be tested, when it cannot


def _share_hull(
    values: dict, ivs: dict, pairs: dict, study_case: str, draws: int, level: float
) -> dict:
    """Difference-of-share intervals that stay proper when a share is 0 or 1 (where the per-unit
    differences may not vary at all): the hull of the paired interval and Newcombe's hybrid score
    interval built from each share's Wilson interval at the design's effective sample size
    (stats.effective_n), clipped to [-1, 1]."""
    cases = list(values)
    p = np.array([values[c] for c in cases])
    half = np.array([(ivs[c].ci_high - ivs[c].ci_low) / 2 for c in cases])
    n_units = max(iv.n_units for iv in ivs.values())
    low, high = stats.wilson(p, stats.effective_n(p, half, draws, n_units, level), level)
    w = {c: (lo, hi) for c, lo, hi in zip(cases, low, high)}
    pc, (lc, uc) = values[study_case], w[study_case]
    out = {}
    for o, iv in pairs.items():
        po, (lo, uo) = values[o], w[o]
        d = pc - po
        nl = d - math.hypot(pc - lc, uo - po)
        nu = d + math.hypot(uc - pc, po - lo)
        a, b = (iv.ci_low, iv.ci_high) if not math.isnan(iv.ci_low) else (nl, nu)
        out[o] = iv._replace(ci_low=max(min(a, nl), -1.0), ci_high=min(max(b, nu), 1.0))
    return out


def compare_cases(
    cells: pd.DataFrame,
    study_case: str = stats.STUDY_CASE,
    level: float = stats.LEVEL,
    units_random: bool = True,
    share_draws: int | None = None,
) -> Verdict:
    """Does `study_case` have the highest value? `cells`: seed, unit, case, value. `share_draws`: the
    values are shares of this many (seed, image) draws: their difference intervals go through _share_hull."""
    if cells.empty:
        return Verdict({}, reason="no data")
    wide = cells.pivot_table(index=["seed", "unit"], columns="case", values="value", aggfunc="mean")
    wide.columns = [str(c) for c in wide.columns]

    def iv(series: pd.Series) -> stats.Interval:
        return stats.table_interval(series.unstack("unit"), level, units_random)

    ivs = {c: iv(wide[c]) for c in sorted(wide.columns)}
    ivs = {c: x for c, x in ivs.items() if not math.isnan(x.mean)}
    values = {c: x.mean for c, x in ivs.items()}
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
    pairs = {o: iv(wide[study_case] - wide[o]) for o in others}
    other = max(others, key=values.get)
    if share_draws is not None and units_random:
        pairs = _share_hull(values, ivs, pairs, study_case, share_draws, level)
    p = pairs[other]
    beaten = tuple(o for o in others if pairs[o].ci_low > 0)
    lost = tuple(o for o in others if pairs[o].ci_high < 0)
    tied = tuple(o for o in others if o not in beaten and o not in lost)
    if p.n_seeds < 2:
        status = NOT_ESTABLISHED
    elif len(beaten) == len(others):
        status = HOLDS
    elif lost:
        status = FAILS
    else:
        status = NOT_ESTABLISHED
    return Verdict(
        values,
        best,
        other,
        p.mean,
        p.ci_low,
        p.ci_high,
        p.n_seeds,
        p.n_units,
        status,
        beaten,
        lost,
        tied,
    )
