"""Statistics of a sweep: bootstrap intervals over images and seeds, paired differences, the verdict.

Everything here is a pure function of data frames (seeded: the same input gives the same numbers), but
`write_stats`, which reads a sweep's job files and writes `stats.csv` and `pairwise.csv`.

The bootstrap is hierarchical: a replicate draws the seeds with replacement, then, inside each drawn
seed, its images with replacement (an independent draw for every slot a seed fills), and takes the mean
of the seeds' means. With one seed this is the ordinary bootstrap over images. Intervals are percentile
intervals of `n_boot` replicates. Images are paired across cases by (seed, image_id): a difference
between two cases is bootstrapped on the per-image differences, so what the images share cancels.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import NamedTuple, Sequence, Union

import numpy as np
import pandas as pd

from . import rundir

METRICS = ("mi_mean", "mi_max", "mi_mean_init", "mi_max_init")
PAIRWISE_METRICS = ("mi_mean", "mi_max")
STATS_COLUMNS = ["case", "metric", "mean", "ci_low", "ci_high", "n_seeds", "n_images"]
PAIRWISE_COLUMNS = ["metric", "case_x", "case_y", "diff", "ci_low", "ci_high", "n_seeds", "n_images", "significant"]
WINNER_COLUMNS = ["case", "wins", "share", "ci_low", "ci_high"]
PAIRWISE = "pairwise.csv"
STUDY_CASE = "c"  # the study's finding: case c keeps the most information (highest max MI)
_CHUNK = 1 << 22  # resampled values held at once (bounds memory: 4M indices, 16 MB)
_GATHER_MAX_COLUMNS = 4  # up to this many value columns, gathering beats counting + a matrix product


class CI(NamedTuple):
    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_images: int  # images per seed (the largest count when seeds differ)


Values = Union[np.ndarray, Sequence[np.ndarray], pd.DataFrame]


# ------------------------------------------------------------------------------------- bootstrap


def _groups(values: Values, value: str | None = None) -> list[np.ndarray]:
    """Per-seed 2-D float arrays (n_images, K) from a 1-D array (one seed), a list of arrays (one per
    seed), or a long frame with a `seed` column (and `value`, or else every other numeric column but
    image_id)."""
    if isinstance(values, pd.DataFrame):
        skip = ("seed", "image_id", "case", "setting")
        cols = [value] if value is not None else [c for c in values.columns if c not in skip and pd.api.types.is_numeric_dtype(values[c])]
        by_seed = values.groupby("seed", sort=True) if "seed" in values.columns else [(0, values)]
        values = [g[cols].to_numpy(dtype=float) for _, g in by_seed]
    if isinstance(values, np.ndarray) and values.dtype != object and values.ndim == 1:
        values = [values]
    groups = [np.asarray(v, dtype=float) for v in values]
    groups = [g[:, None] if g.ndim == 1 else g for g in groups]
    if not groups or any(g.shape[0] == 0 for g in groups):
        raise ValueError("bootstrap needs at least one seed with at least one value")
    if len({g.shape[1] for g in groups}) != 1:
        raise ValueError("every seed must have the same number of columns")
    return groups


def _replicates(groups: list[np.ndarray], n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(point estimate (K,), bootstrap replicates (n_boot, K)) of the mean of the seeds' means. A column
    holding a NaN has a NaN estimate and interval."""
    rng = np.random.default_rng(seed)
    s = len(groups)
    k = groups[0].shape[1]
    drawn = rng.integers(0, s, size=(n_boot, s))  # which seed fills each slot of each replicate
    slots = np.empty((n_boot, s, k))
    for i, g in enumerate(groups):
        where = np.nonzero(drawn == i)
        n = g.shape[0]
        means = np.empty((where[0].size, k))
        cols = np.ascontiguousarray(g.T)
        step = max(1, _CHUNK // n)
        for lo in range(0, means.shape[0], step):
            hi = min(lo + step, means.shape[0])
            idx = rng.integers(0, n, size=(hi - lo, n), dtype=np.int32 if n < 2**31 else np.int64)
            if k <= _GATHER_MAX_COLUMNS:  # few columns: gather each one
                for j in range(k):
                    means[lo:hi, j] = np.take(cols[j], idx).mean(1)
            else:  # many: count each image's draws once, then one matrix product for every column
                rows = np.arange(hi - lo, dtype=np.int64)[:, None] * n
                counts = np.bincount((idx + rows).ravel(), minlength=(hi - lo) * n).reshape(hi - lo, n)
                means[lo:hi] = counts.astype(float) @ g / n
        slots[where] = means
    point = np.mean([g.mean(0) for g in groups], axis=0)
    return point, slots.mean(1)


def _interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    q = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return q[0], q[1]


def _bootstrap(groups: list[np.ndarray], n_boot: int, seed: int, level: float) -> list[CI]:
    """One CI per column of the groups (all columns share the resampling)."""
    point, reps = _replicates(groups, n_boot, seed)
    low, high = _interval(reps, level)
    n_images = max(g.shape[0] for g in groups)
    return [CI(float(m), float(lo), float(hi), len(groups), n_images) for m, lo, hi in zip(point, low, high)]


def bootstrap_ci(values: Values, n_boot: int = 2000, seed: int = 0, level: float = 0.95, value: str | None = None) -> CI:
    """The mean (of the seeds' means) and its `level` hierarchical bootstrap interval.

    `values`: one 1-D array (one seed), a list of 1-D arrays (one per seed), or a long frame with a
    `seed` column and the column `value` (default: its only numeric column other than seed/image_id).
    """
    groups = _groups(values, value)
    if groups[0].shape[1] != 1:
        raise ValueError(f"bootstrap_ci takes one value column, got {groups[0].shape[1]}: name it with value=")
    return _bootstrap(groups, n_boot, seed, level)[0]


# ----------------------------------------------------------------------------------------- tables


def _by_setting(frame: pd.DataFrame):
    """(setting or None, rows) for each setting of the frame (None: the frame has no setting column)."""
    if "setting" not in frame.columns:
        yield None, frame
        return
    for setting, rows in frame.groupby("setting", sort=True):
        yield setting, rows


def _with_setting(rows: list[dict], columns: list[str], has_setting: bool) -> pd.DataFrame:
    cols = (["setting"] if has_setting else []) + columns
    return pd.DataFrame(rows, columns=cols)


def _seed_groups(frame: pd.DataFrame) -> list[np.ndarray]:
    """Rows of a frame indexed by (seed, image_id) -> one array per seed."""
    seeds = frame.index.get_level_values("seed")
    return [frame.to_numpy(dtype=float)[seeds == s] for s in sorted(seeds.unique())]


def _column_cis(columns: dict, n_boot: int, seed: int, level: float) -> dict:
    """{name: CI} for columns {name: Series indexed by (seed, image_id)}. Columns with the same index are
    bootstrapped together (the same resampling of seeds and images, one pass)."""
    out, pending = {}, dict(columns)
    while pending:
        name, first = next(iter(pending.items()))
        same = {k: v for k, v in pending.items() if v.index.equals(first.index)}
        frame = pd.concat(same, axis=1)
        for k, ci in zip(same, _bootstrap(_seed_groups(frame), n_boot, seed, level)):
            out[k] = ci
        pending = {k: v for k, v in pending.items() if k not in same}
    return out


def _keyed(g: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return g.set_index(["seed", "image_id"])[cols].sort_index()


def stats_table(per_image: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per case and metric (mi_mean, mi_max, and the _init controls where present): the mean with its
    bootstrap interval over images and seeds. `per_image`: columns case, seed, image_id and the metrics
    (a `setting` column, when present, comes first in the result and splits the rows)."""
    metrics = [m for m in METRICS if m in per_image.columns]
    has_setting = "setting" in per_image.columns
    rows = []
    for setting, part in _by_setting(per_image):
        part = part.assign(case=part["case"].astype(str))
        columns = {}
        for case, g in part.groupby("case", sort=True):
            t = _keyed(g, metrics)
            columns.update({(case, m): t[m] for m in metrics})
        cis = _column_cis(columns, n_boot, seed, level)
        for (case, metric) in columns:
            ci = cis[case, metric]
            rows.append({**({"setting": setting} if has_setting else {}), "case": case, "metric": metric, **ci._asdict()})
    out = _with_setting(rows, STATS_COLUMNS, has_setting)
    return out.astype({"n_seeds": int, "n_images": int})


def pairwise_table(per_image: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95, metrics: Sequence[str] = PAIRWISE_METRICS) -> pd.DataFrame:
    """For each metric and each pair of cases x < y: the mean difference x - y over the images both
    measured (paired by seed and image_id) with its bootstrap interval; `significant`: the interval
    excludes 0."""
    metrics = [m for m in metrics if m in per_image.columns]
    has_setting = "setting" in per_image.columns
    rows = []
    for setting, part in _by_setting(per_image):
        part = part.assign(case=part["case"].astype(str))
        tables = {case: _keyed(g, metrics) for case, g in part.groupby("case", sort=True)}
        columns = {}
        for x, y in itertools.combinations(sorted(tables), 2):
            both = tables[x].merge(tables[y], how="inner", left_index=True, right_index=True, suffixes=("_x", "_y"))
            if not both.empty:
                columns.update({(metric, x, y): both[f"{metric}_x"] - both[f"{metric}_y"] for metric in metrics})
        cis = _column_cis(columns, n_boot, seed, level)
        for metric in metrics:  # rows: metric by metric, pairs in order
            for m, x, y in columns:
                if m != metric:
                    continue
                ci = cis[m, x, y]
                rows.append({
                    **({"setting": setting} if has_setting else {}), "metric": metric, "case_x": x, "case_y": y,
                    "diff": ci.mean, "ci_low": ci.ci_low, "ci_high": ci.ci_high, "n_seeds": ci.n_seeds,
                    "n_images": ci.n_images, "significant": bool(ci.ci_low > 0 or ci.ci_high < 0),
                })  # fmt: skip
    out = _with_setting(rows, PAIRWISE_COLUMNS, has_setting)
    return out.astype({"n_seeds": int, "n_images": int, "significant": bool})


def winner_shares(comp: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """`case, wins, share` as compare.winners gives them, plus the share's bootstrap interval (over
    images, and over seeds when the comparison has a `seed` column)."""
    cases = [c.removeprefix("mi_max_") for c in comp.columns if c.startswith("mi_max_")]
    wins = comp["winner"].astype(str).value_counts().reindex(cases, fill_value=0)
    out = pd.DataFrame({"case": cases, "wins": wins.to_numpy(dtype=int), "share": wins.to_numpy() / max(len(comp), 1)})
    if comp.empty or not cases:
        return out.assign(ci_low=np.nan, ci_high=np.nan)[WINNER_COLUMNS]
    won = pd.DataFrame({c: (comp["winner"].astype(str) == c).to_numpy(dtype=float) for c in cases})
    unit = [k for k in ("setting", "seed") if k in comp.columns]
    if unit:
        keys = comp[unit].astype(str).agg("|".join, axis=1).to_numpy()
        groups = [won.to_numpy()[keys == k] for k in sorted(set(keys))]
    else:
        groups = [won.to_numpy()]
    cis = _bootstrap(groups, n_boot, seed, level)
    # the share is pooled over every row (compare.winners); the interval is that of the seeds' mean share
    return out.assign(ci_low=[ci.ci_low for ci in cis], ci_high=[ci.ci_high for ci in cis])[WINNER_COLUMNS]


# ---------------------------------------------------------------------------------------- verdict


def ranking_verdict(pairwise: pd.DataFrame, stats: pd.DataFrame, case: str = STUDY_CASE, metric: str = "mi_max", level: float = 0.95) -> str:
    """One sentence: does the study's ranking (case `case` has the highest `metric`) hold at `level`,
    i.e. does `case` beat every other case with a paired interval that excludes 0? With a `setting`
    column, one sentence per setting."""
    if "setting" in stats.columns:
        parts = []
        for setting, s in stats.groupby("setting", sort=True):
            p = pairwise[pairwise["setting"] == setting] if "setting" in pairwise.columns else pairwise
            parts.append(f"[{setting}] " + ranking_verdict(p.drop(columns="setting"), s.drop(columns="setting"), case, metric, level))
        return " ".join(parts)
    pct = f"{level:.0%}"
    what = "max MI" if metric == "mi_max" else metric
    means = stats[stats["metric"] == metric].set_index("case")["mean"].astype(float)
    means.index = means.index.astype(str)
    if len(means) < 2:
        return f"The study's ranking cannot be tested: the sweep holds {len(means)} case(s) with {metric}; it needs case {case} and at least one other."
    best = str(means.idxmax())
    if case not in means.index:
        return f"The study's ranking cannot be tested: case {case} is not in the sweep (best case: {best}, {what} {means[best]:.4f} nats)."
    others = [c for c in means.index if c != case]
    p = pairwise[pairwise["metric"] == metric]
    beaten, tied, lost = [], [], []
    for other in others:
        row = p[((p.case_x == case) & (p.case_y == other)) | ((p.case_x == other) & (p.case_y == case))]
        if row.empty:
            tied.append(other)
            continue
        r = row.iloc[0]
        sign = 1.0 if r.case_x == case else -1.0
        low, high = sorted((sign * float(r.ci_low), sign * float(r.ci_high)))
        (beaten if low > 0 else lost if high < 0 else tied).append(other)
    if best == case and not tied and not lost:
        return (
            f"The study's ranking holds at {pct}: case {case} has the highest {what} "
            f"({means[case]:.4f} nats) and beats {', '.join(beaten)} (intervals exclude 0)."
        )
    reasons = []
    if best != case:
        reasons.append(f"case {best} has the highest {what} ({means[best]:.4f} nats against case {case}'s {means[case]:.4f})")
    else:
        reasons.append(f"case {case} has the highest {what} ({means[case]:.4f} nats)")
    if lost:
        reasons.append(f"{', '.join(lost)} beat{'s' if len(lost) == 1 else ''} case {case} (intervals exclude 0)")
    if tied:
        reasons.append(f"case {case} is not distinguishable from {', '.join(tied)} (intervals include 0)")
    if beaten:
        reasons.append(f"case {case} beats {', '.join(beaten)}")
    return f"The study's ranking does not hold at {pct}: " + "; ".join(reasons) + "."


# ------------------------------------------------------------------------------------------- files


def per_image_frame(jobs) -> pd.DataFrame:
    """The finished jobs' mi_per_image.csv rows with their case and seed (and `setting` when the jobs
    have more than one setting): columns [setting,] case, seed, image_id, metrics."""
    frames = []
    for job in jobs:
        if job.summary is None:
            continue
        head = pd.read_csv(job.path / rundir.MI_PER_IMAGE, nrows=0).columns
        cols = ["image_id", *[m for m in METRICS if m in head]]
        t = pd.read_csv(job.path / rundir.MI_PER_IMAGE, usecols=cols)
        t.insert(0, "seed", int(job.summary.get("seed", 0)))
        t.insert(0, "case", str(job.summary["case"]))
        t.insert(0, "setting", job.setting)
        frames.append(t)
    if not frames:
        raise ValueError("no finished job: nothing to summarise")
    long = pd.concat(frames, ignore_index=True)
    metrics = [m for m in METRICS if m in long.columns and long[m].notna().all()]  # an _init column some jobs lack: left out
    long = long[["setting", "case", "seed", "image_id", *metrics]]
    return long if long["setting"].nunique() > 1 else long.drop(columns="setting")


def write_stats(sweep_dir: Path, jobs, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> str:
    """Write the sweep's stats.csv and pairwise.csv (atomically) from its finished jobs (compare.Job
    objects; unfinished ones are skipped) and return the ranking verdict sentence."""
    per_image = per_image_frame(jobs)
    stats = stats_table(per_image, n_boot, seed, level)
    pairs = pairwise_table(per_image, n_boot, seed, level)
    rundir.write_csv(Path(sweep_dir) / rundir.STATS, stats)
    rundir.write_csv(Path(sweep_dir) / PAIRWISE, pairs)
    return ranking_verdict(pairs, stats, level=level)
