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

Shares (winners.csv): the share of images a case wins, with a Wilson interval whose sample size is the
effective one of the design, n_eff = z^2 p (1-p) / h^2 (h: the half-width above of the per-cell
shares), at most the number of images; so a share of 0 or 1 gets the interval (0, z^2/(n_eff+z^2)) or
its mirror, where n_eff comes from the most clustered other case (the number of units when none).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import ndtri, stdtrit  # not scipy.stats: a second less on every import

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


# ------------------------------------------------------------------------------ interval arithmetic


def t_quantile(df, level: float = LEVEL):
    """The two-sided `level` Student t quantile for `df` degrees of freedom (array or scalar)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return stdtrit(df, (1 + level) / 2)


def mean_halfwidth(x: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last axis and the half-width of its t-interval (n-1 df); NaN half-width for n < 2."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    m = x.mean(-1)
    if n < 2:
        return m, np.full_like(m, np.nan)
    return m, t_quantile(n - 1, level) * x.std(-1, ddof=1) / math.sqrt(n)


def crossed_halfwidth(x: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Grand mean of a (..., S, G) table of cells (seeds x units, crossed, S >= 2, G >= 2) and the
    half-width of its interval: seed part with S-1 df and unit part with G-1 df in quadrature (module
    docstring). Vectorised over the leading axes."""
    x = np.asarray(x, dtype=float)
    s, g = x.shape[-2:]
    if s < 2 or g < 2:
        raise ValueError(f"a crossed interval needs >= 2 seeds and >= 2 units, got {s} x {g}")
    m = x.mean((-2, -1))
    seed_means, unit_means = x.mean(-1), x.mean(-2)
    ms_seed = g * seed_means.var(-1, ddof=1)
    ms_unit = s * unit_means.var(-1, ddof=1)
    resid = x - seed_means[..., :, None] - unit_means[..., None, :] + m[..., None, None]
    ms_resid = (resid**2).sum((-2, -1)) / ((s - 1) * (g - 1))
    h2 = t_quantile(s - 1, level) ** 2 * ms_seed + t_quantile(g - 1, level) ** 2 * np.maximum(
        ms_unit - ms_resid, 0.0
    )
    return m, np.sqrt(h2 / (s * g))


def _finish(m: float, h: float, n_seeds: int, n_units: int, design: str) -> Interval:
    m, h = float(m), float(h)
    return Interval(m, m - h, m + h, int(n_seeds), int(n_units), design)


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


def table_interval(
    table: pd.DataFrame, level: float = LEVEL, units_random: bool = True
) -> Interval:
    """`interval` of a seeds x units table of cell values (NaN: a cell not measured)."""
    table = table.dropna(axis=0, how="all").dropna(axis=1, how="all")
    if table.empty:
        return Interval(math.nan, math.nan, math.nan, 0, 0, "none")
    n_seeds, n_units = table.shape
    if not units_random:
        m, h = mean_halfwidth(table.mean(axis=1).to_numpy(), level)
        return _finish(m, h, n_seeds, n_units, "fixed units")
    if n_seeds == 1:
        m, h = mean_halfwidth(table.iloc[0].dropna().to_numpy(), level)
        return _finish(m, h, 1, n_units, "one seed")
    present = table.notna().to_numpy()
    if (present.sum(axis=0) < 2).all():  # no unit measured by two seeds: nested
        m, h = mean_halfwidth(table.mean(axis=1).to_numpy(), level)
        return _finish(m, h, n_seeds, n_units, "nested")
    complete = table.to_numpy(dtype=float)[:, present.all(axis=0)]  # the units every seed has
    if complete.shape[1] == 1:  # one unit every seed has: only the seeds vary
        m, h = mean_halfwidth(complete[:, 0], level)
        return _finish(m, h, n_seeds, 1, "crossed")
    if complete.shape[1] == 0:  # partly shared, nothing common: treat as nested (per-seed means)
        m, h = mean_halfwidth(table.mean(axis=1).to_numpy(), level)
        return _finish(m, h, n_seeds, n_units, "nested")
    m, h = crossed_halfwidth(complete, level)
    return _finish(m, h, n_seeds, complete.shape[1], "crossed")


def wilson(p, n, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion p from n (effective) draws; (0, z^2/(n+z^2)) at p = 0."""
    z = ndtri((1 + level) / 2)
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z / d * np.sqrt(np.maximum(p * (1 - p), 0.0) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def effective_n(
    p: np.ndarray, half: np.ndarray, n_images: int, n_units: int, level: float = LEVEL
) -> np.ndarray:
    """The effective sample size of shares p whose design-based interval half-widths are `half`:
    z^2 p(1-p)/half^2, at most n_images. A share of 0 or 1 (or a zero half-width) has no variance to
    read it from: it takes the most clustered other share's (n_images / the largest design effect), or
    n_units when there is none."""
    z = ndtri((1 + level) / 2)
    p, half = np.asarray(p, dtype=float), np.asarray(half, dtype=float)
    ok = (p > 0) & (p < 1) & np.isfinite(half) & (half > 0)
    n = np.full(p.shape, np.nan)
    n[ok] = z * z * p[ok] * (1 - p[ok]) / half[ok] ** 2
    n = np.minimum(n, n_images)
    fallback = float(np.nanmin(n)) if ok.any() else float(max(n_units, 1))
    return np.where(ok, n, min(fallback, n_images))


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


# Max-MI values closer than this are a tie (the tables keep 6 significant digits): cases that compute the
# same function on the scored pixels (untrained a and c under align=geometry) must not hand the win to
# whichever column comes first.
TIE_NATS = 1e-6


def winner_credit(values: pd.DataFrame) -> pd.DataFrame:
    """Per row of `values` (one column per case): 1 for the case with the highest value, 1/k for each of
    k cases tied within TIE_NATS of it, 0 otherwise (a NaN never wins)."""
    top = values.max(axis=1).to_numpy()[:, None]
    tied = values.ge(top - TIE_NATS) & values.notna()
    return tied.div(tied.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0).astype(float)


def winner_names(values: pd.DataFrame) -> pd.Series:
    """The winning case of each row, tied cases joined by '=' ('a=c')."""
    credit = winner_credit(values)
    cols = np.asarray(values.columns, dtype=str)
    return pd.Series(
        ["=".join(cols[row > 0]) for row in credit.to_numpy()], index=values.index, dtype=object
    )


def winner_shares(comp: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """`case, wins, share` over every row of a comparison (compare.comparison; a tie splits the win, so
    `wins` may be fractional), the share's Wilson
    interval with the design's effective sample size (module docstring), and `n_units`, the independent
    image units (`group`; the image itself without one). Seeds (and settings) are the replicates."""
    cases = [c.removeprefix("mi_max_") for c in comp.columns if c.startswith("mi_max_")]
    # ties split
    credit = winner_credit(comp[[f"mi_max_{c}" for c in cases]].set_axis(cases, axis=1))
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
    n_eff = effective_n(out["share"].to_numpy(), np.asarray(half), n, unit.nunique(), level)
    low, high = wilson(out["share"].to_numpy(), n_eff, level)
    return out.assign(ci_low=low, ci_high=high, n_units=n_units)[rundir.WINNER_COLUMNS]


# ----------------------------------------------------------------------------------- the sweep's
def metric_frame(per_image: pd.DataFrame) -> pd.DataFrame:
    """The rows stats.csv is computed from (a Sweep's per_image): columns setting, case, seed,
    image_id, group and the metrics every job has."""
    metrics = [m for m in METRICS if m in per_image.columns and per_image[m].notna().all()]
    return per_image[[SETTING, "case", "seed", "image_id", "group", *metrics]]
