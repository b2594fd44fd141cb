"""Statistics of a sweep: intervals with the right replicate units, paired differences, winner shares.

Two levels of replication (design notes, "Nulls and statistics"):

* the **seed** is the replicate unit of a training result (initialisation and batch order);
* inside a seed, the **image units**: images cut from one source are one unit (`group` in
  mi_per_image.csv: the photograph for the embedded set, the image itself for STL-10). A statistic is
  first averaged over the images of each (seed, unit) cell, and the cells are the data.

Every seed of a sweep measures the same images, so seeds and units are *crossed*. The estimate is the
mean of the cells (each unit counts once, each seed counts once). Its 95% interval
(`interval`, vectorised in `crossed_halfwidth`), for S seeds and G units, from the two-way ANOVA mean
squares of the S x G cell table (MS_seed = G var(seed means), MS_unit = S var(unit means), MS_resid):

    half-width^2 = [ t(S-1)^2 MS_seed + t(G-1)^2 max(MS_unit - MS_resid, 0) ] / (S G)

i.e. the variance of the grand mean, sigma_seed^2/S + sigma_unit^2/G + sigma_resid^2/(SG) =
(MS_seed + MS_unit - MS_resid)/(SG), split into its seed part (MS_seed/(SG): with S-1 degrees of
freedom, exactly the t-interval on per-seed means) and its unit part ((MS_unit - MS_resid)/(SG), the
image units shared by every seed, G-1 degrees of freedom), each scaled by its own t quantile and
combined in quadrature. A Satterthwaite t on the same variance under-covers with few seeds (simulated,
seed SD 0.05, unit SD 0.2, noise SD 0.1, 100 units: 90% at 2 seeds, 93% at 3): when the one-degree-of-
freedom seed mean square comes out small by chance its df jumps to ~G. The component-wise interval
covered 97.6 / 97.0 / 96.3 / 96.1% at 2 / 3 / 5 / 10 seeds (tests/test_stats.py checks >= 93%); the
hierarchical percentile bootstrap it replaces covered 74 / 78 / 83 / 78% there (and 56% with one seed
against the population of seeds), 77 / 85 / 92 / 94% when every seed has its own images.

Other designs: units measured by no two seeds (nested): the t-interval on per-seed means (S-1 df),
exact for that design. Units measured by only some seeds: the units every seed has, crossed. One seed:
the t-interval over units (G-1 df): an interval over images only, for that one training run, and
`n_seeds` = 1 says so. Units fixed (the study's example images, a training curve): the t-interval on
per-seed means; no interval with one seed.

Shares (winners.csv): the share of images a case wins (cases within compare.tie of the top split an
image), with a Clopper-Pearson interval at the design's effective sample size n_eff = z^2 p (1-p) / h^2
(h: the half-width above of the per-cell shares, t quantiles included: Korn and Graubard's degrees-of-
freedom adjustment) of the case with the largest design effect, one n_eff for every case (the wins of
all cases come from the same seeds and images), at most the number of images. A share near 0 or 1
reads its own spread too small when its few seeds all went one way, and a share of 0 has none. In the
simulated world of tests/verdict_world.py (1000 sweeps; benchmarks/bench_verdict.py), where c wins
85% of the images, c's share was covered in 89.7% of sweeps at 5 seeds by the median case's n_eff
this replaces, and in 94.1% by this one; where the shares are the study's (a = c 0.35, d 0.28, b 0.03)
every case's in >= 96.8% at 2, 5 and 10 seeds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import betaincinv, ndtri, stdtrit  # not scipy.stats: a second less on import

from .. import rundir
from ..rundir import SETTING

LEVEL = 0.95
# per case: MI, MI above the null (the maps against another image), the null itself, the untrained control
METRICS = (
    "mi_mean",
    "mi_max",
    "mi_mean_above_null",
    "mi_max_above_null",
    "mi_null_mean",
    "mi_null_max",
    "mi_mean_init",
    "mi_max_init",
)
PAIRWISE_METRICS = ("mi_mean", "mi_max", "mi_mean_above_null", "mi_max_above_null")
STUDY_CASE = "c"  # the study's finding: case c keeps the most information


class Interval(NamedTuple):
    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_units: int  # independent image units the interval rests on (0: none, the seeds alone)
    design: str  # crossed | nested | one seed | fixed units | none
    # what the half-width is made of, to predict it at another number of seeds (`halfwidth_at`):
    # the variance of one seed's mean (floored), and the squared half-width's unit part, which is
    # shared by every seed and does not shrink with more of them (NaN: no seed-to-seed spread known)
    seed_var: float = math.nan
    unit_part: float = 0.0
    level: float = LEVEL
    unit_var: float = 0.0  # the unit part of the mean's variance, sigma_unit^2 / G (no t quantile)


# ------------------------------------------------------------------------------ interval arithmetic


def t_quantile(df, level: float = LEVEL):
    """The two-sided `level` Student t quantile for `df` degrees of freedom (array or scalar)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return stdtrit(df, (1 + level) / 2)


def mean_halfwidth(
    x: np.ndarray, level: float = LEVEL, sd_floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last axis and the half-width of its t-interval (n-1 df); NaN half-width for n < 2.
    `sd_floor`: the standard deviation is taken as at least this (identical values are not certainty)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    m = x.mean(-1)
    if n < 2:
        return m, np.full_like(m, np.nan)
    return m, t_quantile(n - 1, level) * np.maximum(x.std(-1, ddof=1), sd_floor) / math.sqrt(n)


def crossed_parts(x: np.ndarray, seed_sd_floor: float = 0.0):
    """Of a (..., S, G) table of crossed cells: the grand mean, the seed mean square MS_seed (at least
    G * seed_sd_floor^2: one seed's mean varies by at least the floor) and the unit mean square in
    excess of the residual, max(MS_unit - MS_resid, 0) (module docstring). Vectorised."""
    x = np.asarray(x, dtype=float)
    s, g = x.shape[-2:]
    m = x.mean((-2, -1))
    seed_means, unit_means = x.mean(-1), x.mean(-2)
    ms_seed = np.maximum(g * seed_means.var(-1, ddof=1), g * seed_sd_floor**2)
    ms_unit = s * unit_means.var(-1, ddof=1)
    resid = x - seed_means[..., :, None] - unit_means[..., None, :] + m[..., None, None]
    ms_resid = (resid**2).sum((-2, -1)) / ((s - 1) * (g - 1))
    return m, ms_seed, np.maximum(ms_unit - ms_resid, 0.0)


def crossed_halfwidth(
    x: np.ndarray, level: float = LEVEL, seed_sd_floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Grand mean of a (..., S, G) table of cells (seeds x units, crossed, S >= 2, G >= 2) and the
    half-width of its interval: seed part with S-1 df and unit part with G-1 df in quadrature (module
    docstring). Vectorised over the leading axes. `seed_sd_floor`: see crossed_parts."""
    x = np.asarray(x, dtype=float)
    s, g = x.shape[-2:]
    if s < 2 or g < 2:
        raise ValueError(f"a crossed interval needs >= 2 seeds and >= 2 units, got {s} x {g}")
    m, ms_seed, ms_unit_excess = crossed_parts(x, seed_sd_floor)
    h2 = t_quantile(s - 1, level) ** 2 * ms_seed + t_quantile(g - 1, level) ** 2 * ms_unit_excess
    return m, np.sqrt(h2 / (s * g))


def halfwidth_at(n_seeds, seed_var, unit_part, level: float = LEVEL):
    """The half-width an interval would have with `n_seeds` seeds (array or scalar), from its parts
    now (Interval.seed_var, .unit_part): t(S-1)^2 seed_var / S + unit_part."""
    n_seeds = np.asarray(n_seeds, dtype=float)
    return np.sqrt(t_quantile(n_seeds - 1, level) ** 2 * seed_var / n_seeds + unit_part)


MAX_SEEDS = 1000  # seeds_needed beyond this is reported as "more seeds than is sensible"


def seeds_needed(seed_var, unit_part, bound, level: float = LEVEL) -> np.ndarray:
    """The fewest seeds (>= 2) at which halfwidth_at falls below `bound`; NaN when no number of seeds up
    to MAX_SEEDS does (the unit part alone is too wide: more image units are missing) or when the
    seed-to-seed spread is unknown. Vectorised over the arguments' shapes."""
    seed_var, unit_part, bound = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (seed_var, unit_part, bound))
    )
    grid = np.arange(2, MAX_SEEDS + 1, dtype=float)
    h = halfwidth_at(grid, seed_var[..., None], unit_part[..., None], level)
    below = h < bound[..., None]
    first = np.argmax(below, axis=-1)
    return np.where(below.any(-1), grid[first], np.nan)


def _finish(
    m: float, h: float, n_seeds: int, n_units: int, design: str, parts=(math.nan, 0.0, LEVEL, 0.0)
) -> Interval:
    m, h = float(m), float(h)
    seed_var, unit_part, level, unit_var = (float(p) for p in parts)
    return Interval(
        m, m - h, m + h, int(n_seeds), int(n_units), design, seed_var, unit_part, level, unit_var
    )


def interval(
    cells: pd.DataFrame, value: str = "value", level: float = LEVEL, units_random: bool = True
) -> Interval:
    """The mean of `value` over seeds and units with its `level` interval (module docstring).

    `cells`: a frame with columns `seed`, `unit` and `value`; several rows of one (seed, unit) are
    averaged first (the images of a unit). `units_random=False`: the units are fixed (the study's example
    images, or one training curve per seed): only the seeds vary.
    """
    f = cells[["seed", "unit", value]].dropna()
    if f.empty:
        return Interval(math.nan, math.nan, math.nan, 0, 0, "none")
    # seeds x units, NaN: not measured
    table = f.groupby(["seed", "unit"], sort=True)[value].mean().unstack("unit")
    return table_interval(table, level, units_random)


def _per_seed(means: np.ndarray, n_units: int, design: str, level: float, floor: float):
    """The t-interval on per-seed means (S-1 df), with its parts."""
    m, h = mean_halfwidth(means, level, floor)
    var = max(float(np.var(means, ddof=1)), floor**2) if len(means) > 1 else math.nan
    return _finish(m, h, len(means), n_units, design, (var, 0.0, level, 0.0))


def table_interval(
    table: pd.DataFrame, level: float = LEVEL, units_random: bool = True, seed_sd_floor: float = 0.0
) -> Interval:
    """`interval` of a seeds x units table of cell values (NaN: a cell not measured). `seed_sd_floor`:
    one seed's mean is taken to vary by at least this much (a zero-width interval is no certainty)."""
    table = table.dropna(axis=0, how="all").dropna(axis=1, how="all")
    if table.empty:
        return Interval(math.nan, math.nan, math.nan, 0, 0, "none")
    n_seeds, n_units = table.shape
    floor = seed_sd_floor
    if not units_random:
        return _per_seed(table.mean(axis=1).to_numpy(), n_units, "fixed units", level, floor)
    if (
        n_seeds == 1
    ):  # over the units of one training run; the floor too: identical units are no proof
        m, h = mean_halfwidth(table.iloc[0].dropna().to_numpy(), level, floor)
        return _finish(m, h, 1, n_units, "one seed", (math.nan, 0.0, level, 0.0))
    present = table.notna().to_numpy()
    if (present.sum(axis=0) < 2).all():  # no unit measured by two seeds: nested
        return _per_seed(table.mean(axis=1).to_numpy(), n_units, "nested", level, floor)
    complete = table.to_numpy(dtype=float)[:, present.all(axis=0)]  # the units every seed has
    if complete.shape[1] == 1:  # one unit every seed has: only the seeds vary
        return _per_seed(complete[:, 0], 1, "crossed", level, floor)
    if complete.shape[1] == 0:  # partly shared, nothing common: treat as nested (per-seed means)
        return _per_seed(table.mean(axis=1).to_numpy(), n_units, "nested", level, floor)
    m, h = crossed_halfwidth(complete, level, floor)
    s, g = complete.shape
    _, ms_seed, excess = crossed_parts(complete, floor)
    unit_var = excess / (s * g)
    parts = (ms_seed / g, t_quantile(g - 1, level) ** 2 * unit_var, level, unit_var)
    return _finish(m, h, s, g, "crossed", parts)


def clopper_pearson(p, n, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The Clopper-Pearson interval of a proportion p from n (effective, not necessarily whole) draws:
    exact for a binomial, conservative near 0 and 1 where the score interval is not."""
    p, n = np.broadcast_arrays(np.asarray(p, dtype=float), np.asarray(n, dtype=float))
    x, a = p * n, (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x > 0, betaincinv(np.maximum(x, 1e-12), n - x + 1, a), 0.0)
        high = np.where(x < n, betaincinv(x + 1, np.maximum(n - x, 1e-12), 1 - a), 1.0)
    # below a billionth: 0 (an effective sample under one draw leaves the share undetermined)
    low, high = np.where(low < 1e-9, 0.0, low), np.where(high > 1 - 1e-9, 1.0, high)
    return np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)


def effective_n(p, half, n_images, n_units: int = 1, level: float = LEVEL) -> np.ndarray:
    """The effective sample size of shares p (the cases on the last axis) whose design-based interval
    half-widths are `half`: one for every case, n_images over the largest design effect of the cases
    with a spread to read (a case's design effect: n_images half^2 / (z^2 p(1-p)); at most n_images).
    The wins of all cases come from the same seeds and images, so they share one design; a share whose
    own spread reads small because its few seeds all went one way (a share near 0 or 1: the seed-to-
    seed spread of a bounded share is skewed) borrows the spread the others show, and a share of 0 or 1
    has none of its own. No case with a spread to read: n_units."""
    z = ndtri((1 + level) / 2)
    p, half = np.asarray(p, dtype=float), np.asarray(half, dtype=float)
    ok = (p > 0) & (p < 1) & np.isfinite(half) & (half > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        deff = np.where(ok, n_images * half**2 / (z * z * np.where(ok, p * (1 - p), 1.0)), 0.0)
        n = np.minimum(n_images / deff.max(-1, keepdims=True), n_images)
    n = np.broadcast_to(n, p.shape)
    return np.where(ok.any(-1, keepdims=True), n, min(max(n_units, 1), n_images))


def share_intervals(p, half, n_images, n_units: int = 1, level: float = LEVEL):
    """Each case's share interval (the cases on the last axis): Clopper-Pearson at its effective sample
    size (effective_n; module docstring; tests/test_verdict.py checks its coverage)."""
    return clopper_pearson(p, effective_n(p, half, n_images, n_units, level), level)


# ----------------------------------------------------------------------------------------- tables


def _by_setting(frame: pd.DataFrame):
    """(setting, rows) for each setting of the frame (a frame without the column: one setting, "")."""
    if SETTING not in frame.columns:
        frame = frame.assign(**{SETTING: ""})
    yield from frame.groupby(SETTING, sort=True)


def _unit_column(frame: pd.DataFrame) -> pd.Series:
    return frame["group"].astype(str) if "group" in frame.columns else frame["image_id"].astype(str)


def _n_images(frame: pd.DataFrame) -> int:
    return int(frame.groupby("seed")["image_id"].nunique().max()) if len(frame) else 0


def stats_table(per_image: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per case and metric (mi_mean, mi_max, and the _init controls where every job has them): the mean
    over seeds and units with its interval (module docstring). `per_image`: columns case, seed, image_id,
    [group,] the metrics; its `setting` column (none: one setting, "") splits the rows and comes first."""
    metrics = [m for m in METRICS if m in per_image.columns and per_image[m].notna().all()]
    rows = []
    for setting, part in _by_setting(per_image):
        part = part.assign(case=part["case"].astype(str), unit=_unit_column(part))
        for case, g in part.groupby("case", sort=True):
            for metric in metrics:
                ci = interval(g, metric, level)
                rows.append(
                    {
                        SETTING: setting,
                        "case": case,
                        "metric": metric,
                        "mean": ci.mean,
                        "ci_low": ci.ci_low,
                        "ci_high": ci.ci_high,
                        "n_seeds": ci.n_seeds,
                        "n_images": _n_images(g),
                        "n_units": ci.n_units,
                    }
                )
    out = pd.DataFrame(rows, columns=[SETTING, *rundir.STATS_COLUMNS])
    return out.astype({"n_seeds": int, "n_images": int, "n_units": int})


def pairwise_table(
    per_image: pd.DataFrame, level: float = LEVEL, metrics: Sequence[str] = PAIRWISE_METRICS
) -> pd.DataFrame:
    """For each metric and each pair of cases x < y: the mean difference x - y over the images both
    measured (paired by seed and image_id, averaged per unit) with its interval; `significant`: the
    interval excludes 0."""
    metrics = [m for m in metrics if m in per_image.columns]
    rows = []
    for setting, part in _by_setting(per_image):
        part = part.assign(case=part["case"].astype(str), unit=_unit_column(part))
        tables = {
            case: g.set_index(["seed", "image_id"]) for case, g in part.groupby("case", sort=True)
        }
        for metric in metrics:
            for x, y in itertools.combinations(sorted(tables), 2):
                both = tables[x][["unit", metric]].merge(
                    tables[y][[metric]],
                    how="inner",
                    left_index=True,
                    right_index=True,
                    suffixes=("_x", "_y"),
                )
                if both.empty:
                    continue
                d = pd.DataFrame(
                    {
                        "seed": both.index.get_level_values("seed"),
                        "unit": both["unit"].to_numpy(),
                        "value": (both[f"{metric}_x"] - both[f"{metric}_y"]).to_numpy(),
                    }
                )
                ci = interval(d, "value", level)
                rows.append(
                    {
                        SETTING: setting,
                        "metric": metric,
                        "case_x": x,
                        "case_y": y,
                        "diff": ci.mean,
                        "ci_low": ci.ci_low,
                        "ci_high": ci.ci_high,
                        "n_seeds": ci.n_seeds,
                        "n_images": _n_images(both.reset_index()),
                        "significant": bool(ci.ci_low > 0 or ci.ci_high < 0),
                        "n_units": ci.n_units,
                    }
                )
    out = pd.DataFrame(rows, columns=[SETTING, *rundir.PAIRWISE_COLUMNS])
    return out.astype({"n_seeds": int, "n_images": int, "significant": bool, "n_units": int})


# Max-MI values closer than this are one value (the tables keep 6 significant digits): cases that compute
# the same function on the scored pixels (untrained a and c under align=geometry) tie.
TIE_NATS = 1e-6


def win_credit(values, tie: float = TIE_NATS) -> np.ndarray:
    """Per row of `values` (the cases on the last axis; vectorised over the others): the cases within
    `tie` of the highest value split the win, 1/k each (a case wins alone only when it beats every
    other by more than `tie`); a NaN never wins."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    top = np.max(np.where(finite, v, -np.inf), -1, keepdims=True)
    tied = finite & (v >= top - tie)
    count = tied.sum(-1, keepdims=True)
    return np.where(count > 0, tied / np.maximum(count, 1), 0.0)


def winner_credit(values: pd.DataFrame, tie: float = TIE_NATS) -> pd.DataFrame:
    """win_credit of a frame with one column per case."""
    return pd.DataFrame(
        win_credit(values.to_numpy(), tie), index=values.index, columns=values.columns
    )


def winner_names(values: pd.DataFrame, tie: float = TIE_NATS) -> pd.Series:
    """The winning case of each row, cases that split it joined by '=' ('a=c')."""
    credit = win_credit(values.to_numpy(), tie)
    cols = np.asarray(values.columns, dtype=str)
    return pd.Series(["=".join(cols[row > 0]) for row in credit], index=values.index, dtype=object)


def winner_shares(comp: pd.DataFrame, level: float = LEVEL, tie: float = TIE_NATS) -> pd.DataFrame:
    """`case, wins, share` over every row of a comparison (compare.comparison; cases within `tie` of
    the top split an image, so `wins` may be fractional), the share's interval (share_intervals: over
    seeds and image units, at the most clustered case's effective sample size), and `n_units`, the
    independent image units (`group`; the image itself without one). Seeds (and settings) are the
    replicates."""
    cases = [c.removeprefix("mi_max_") for c in comp.columns if c.startswith("mi_max_")]
    credit = winner_credit(comp[[f"mi_max_{c}" for c in cases]].set_axis(cases, axis=1), tie)
    wins = credit.sum(axis=0).reindex(cases, fill_value=0.0)
    n = len(comp)
    counts = wins.to_numpy()
    out = pd.DataFrame(
        {
            "case": cases,
            "wins": counts.astype(int) if np.allclose(counts, counts.round()) else counts,
            "share": counts / max(n, 1),
        }
    )
    if comp.empty or not cases:
        return out.assign(ci_low=np.nan, ci_high=np.nan, n_units=0)[rundir.WINNER_COLUMNS]
    keys = [k for k in (SETTING, "seed") if k in comp.columns]
    seed = (
        comp[keys].astype(str).agg("|".join, axis=1) if keys else pd.Series("0", index=comp.index)
    )
    unit = _unit_column(comp)
    half, n_units = [], 0
    for c in cases:
        ci = interval(
            pd.DataFrame({"seed": seed, "unit": unit, "value": credit[c].to_numpy()}),
            "value",
            level,
        )
        half.append((ci.ci_high - ci.ci_low) / 2)
        n_units = ci.n_units
    share = out["share"].to_numpy()
    low, high = share_intervals(share, np.asarray(half), n, unit.nunique(), level)
    return out.assign(ci_low=low, ci_high=high, n_units=n_units)[rundir.WINNER_COLUMNS]


# ----------------------------------------------------------------------------------- the sweep's
def metric_frame(per_image: pd.DataFrame) -> pd.DataFrame:
    """The rows stats.csv is computed from (a Sweep's per_image): columns setting, case, seed,
    image_id, group and the metrics every job has."""
    metrics = [m for m in METRICS if m in per_image.columns and per_image[m].notna().all()]
    return per_image[[SETTING, "case", "seed", "image_id", "group", *metrics]]
