"""A claim's cells (seed, unit, case, value) from a sweep's per-image rows: the mean of a column per
(seed, image unit), or the share of each unit's images a case wins; and the other alignments the
jobs measured."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from . import stats

# mi_max_<suffix> columns that are not another alignment (when the caller lists no alignments)
NOT_ALIGNMENTS = ("init", "above_null")


def alignments(per_image: pd.DataFrame, listed: Sequence[str] | None = None) -> list[str]:
    """The other alignments the jobs were measured under, as their summaries list them (`listed`:
    summary.json's `alt_aligns`, which the store gives every job), or when the caller lists none, read
    off the columns mi_max_<A> and mi_mean_<A>; only those every image has both columns of."""
    cols = list(per_image.columns)
    if listed is None:
        found = [c.removeprefix("mi_max_") for c in cols if c.startswith("mi_max_")]
        listed = [a for a in found if a not in NOT_ALIGNMENTS]
    return [
        a
        for a in listed
        if f"mi_mean_{a}" in cols
        and f"mi_max_{a}" in cols
        and per_image[f"mi_max_{a}"].notna().all()
    ]


def has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and frame[column].notna().all()


def mean_cells(per_image: pd.DataFrame, column: str, unit: str = "group") -> pd.DataFrame:
    """seed, unit, case, value: the mean of `column` over the images of each (seed, unit, case)."""
    g = per_image.groupby(["seed", unit, "case"], sort=True)[column].mean()
    return g.rename("value").reset_index().rename(columns={unit: "unit"})


def winner_cells(
    per_image: pd.DataFrame, column: str = "mi_max", tie: float = stats.TIE_NATS
) -> pd.DataFrame:
    """seed, unit, case, value: per (seed, unit) the fraction of its images on which the case has the
    highest `column` among the cases (images every case measured; k cases within `tie` of the top get
    1/k each)."""
    wide = per_image.pivot_table(
        index=["seed", "image_id", "group"], columns="case", values=column, aggfunc="first"
    ).dropna()
    if wide.empty:
        return pd.DataFrame(columns=["seed", "unit", "case", "value"])
    won = stats.winner_credit(wide, tie)
    cells = won.groupby(level=["seed", "group"]).mean()
    cells.columns.name = "case"
    return cells.stack().rename("value").reset_index().rename(columns={"group": "unit"})
