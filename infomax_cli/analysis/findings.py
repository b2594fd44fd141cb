"""What the statistics of a run or sweep found, computed once by `compare.analyse` and handed to the
renderers (report page, terminal) as one record. Nothing here computes: the record only carries.

Every table keeps its `setting` column in memory (one value for a sweep of one setting, "" for a run);
the writer drops it when it holds one value (rundir.write_table), as the contract's files have it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from .looks import LookState


@dataclass
class Findings:
    """Every statistic of a run or sweep (a run has no comparison, winners, claims or look)."""

    stats: pd.DataFrame  # stats.csv
    pairwise: pd.DataFrame  # pairwise.csv
    over: str  # what the intervals are over, in words
    # the estimator's bias per (setting, case): the mean over images of mi_shuffled_mean, when measured
    shuffled: dict[tuple[str, str], float] = field(default_factory=dict)
    comparison: pd.DataFrame | None = None  # comparison.csv
    winners: pd.DataFrame | None = None  # winners.csv
    claims: pd.DataFrame | None = None  # claims.csv
    claim_pairs: pd.DataFrame | None = None  # claims_pairs.csv: each claim's pairs c - o
    # claim -> the smallest difference worth reporting (the defaults, the sweep's, the command's)
    margins: dict[str, float] = field(default_factory=dict)
    claim_lines: list[str] = field(default_factory=list)  # the claims in words (page, terminal)
    share_claims: frozenset[str] = frozenset()  # claims whose unit is a share (shown in points)
    # which seeds every table uses and which were left out, and why (complete seeds only), in words
    seeds: list[str] = field(default_factory=list)
    # what would settle the claims not settled: the commands that add the seeds they need, or that
    # they need more image units (compare.seed_advice; empty: nothing to add)
    advice: list[str] = field(default_factory=list)
    look: LookState | None = None  # a sweep's look at its claims
    # which image pixels the cases were compared on, a line per setting (analysis/pixels.py)
    pixels: list[str] = field(default_factory=list)
