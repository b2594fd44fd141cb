"""What the statistics of a run or sweep found, computed once by `compare.analyse` and handed to the
renderers (report page, terminal) as one record. Nothing here computes: the record only carries.

Every table keeps its `setting` column in memory (one value for a sweep of one setting, "" for a run);
the writer drops it when it holds one value (rundir.write_table), as the contract's files have it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Findings:
    """Every statistic of a run or sweep (a run has no comparison, winners or claims)."""

    stats: pd.DataFrame  # stats.csv
    pairwise: pd.DataFrame  # pairwise.csv
    over: str  # what the intervals are over, in words
    # the estimator's bias per (setting, case): the mean over images of mi_shuffled_mean, when measured
    shuffled: dict[tuple[str, str], float] = field(default_factory=dict)
    comparison: pd.DataFrame | None = None  # comparison.csv
    winners: pd.DataFrame | None = None  # winners.csv
    claims: pd.DataFrame | None = None  # claims.csv
    claim_lines: list[str] = field(
        default_factory=list
    )  # the claims in words, for the page and terminal
    share_claims: frozenset[str] = frozenset()  # claims whose unit is a share (shown in points)
    # which seeds every table uses and which were left out, and why (complete seeds only), in words
    seeds: list[str] = field(default_factory=list)
    look: Any = None  # a sweep's look at its claims (looks.LookState)
    # which image pixels the cases were compared on, a line per setting (analysis/pixels.py)
    pixels: list[str] = field(default_factory=list)
