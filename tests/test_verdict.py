"""The verdict's error rates, checked from outside: sweeps fabricated from a variance-components model
like the study's (tests/verdict_world.py), vectorised over hundreds of sweeps, run through the same
functions `infomax compare` uses on the same cell tables (verdict.pair_arrays is compare_cases'
arithmetic on complete tables; test_the_vectorised_verdict_is_compare_cases checks it). Claimed: per
claim, holds or fails in at most 5% of sweeps where no case differs; the headline interval covers c
minus the truly strongest other case in >= 93% of sweeps; seeds_needed predicts the half-width; each
case's winner share interval covers in >= 93% of sweeps where seeds matter as in the study."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from verdict_world import CASES, World

from infomax_cli.analysis import stats, verdict
from infomax_cli.analysis.claims import DEFAULT_MARGINS

C = CASES.index("c")
OTHERS = [i for i, k in enumerate(CASES) if k != "c"]
N_SWEEPS = 400
MI_MARGIN, SHARE_MARGIN = DEFAULT_MARGINS["mean_max_mi"], DEFAULT_MARGINS["winner_share"]


def claim_diffs(world: World, rng, n_sweeps: int, n_seeds: int) -> dict:
    """Each claim's paired differences c - o, as its cells make them: {claim: (diffs, margin,
    units_random)}; the image claims from one draw of per-image values, mean MI from another."""
    y = world.images(rng, n_sweeps, n_seeds)  # (n, case, seed, photo, crop)
    y_mean = world.images(rng, n_sweeps, n_seeds)
    shares = stats.win_credit(np.moveaxis(y, 1, -1), MI_MARGIN).mean(-2)  # (n, seed, photo, case)
    shares = np.moveaxis(shares, -1, 1)

    def pairs(cells):  # (n, case, ...) -> (n, K, ...)
        return cells[:, [C]] - cells[:, OTHERS]

    runs = world.runs(rng, n_sweeps, n_seeds)
    # two fixed photographs' first crops; the claim is about them, so the world's true difference on
    # them is mu's: no case x photograph effect there (seed x photograph effects remain)
    fixed = dataclasses.replace(world, sd_case_photo=0.0, photos=2, crops=1)
    examples = fixed.images(rng, n_sweeps, n_seeds)[..., 0].mean(-1)
    return {
        "loss_curves": (pairs(runs), DEFAULT_MARGINS["loss_curves"], False),
        "example_images": (pairs(examples), DEFAULT_MARGINS["example_images"], False),
        "winner_share": (pairs(shares), SHARE_MARGIN, True),
        "mean_max_mi": (pairs(y.mean(-1)), MI_MARGIN, True),
        "mean_mi": (pairs(y_mean.mean(-1)), DEFAULT_MARGINS["mean_mi"], True),
    }


def run_claims(world: World, n_seeds: int, seed: int = 0, n_sweeps: int = N_SWEEPS) -> dict:
    """{claim: (status, headline estimate, low, high, pair seeds_needed, diffs)} over the sweeps."""
    rng = np.random.default_rng(seed)
    out = {}
    for claim, (diffs, margin, units_random) in claim_diffs(world, rng, n_sweeps, n_seeds).items():
        est, low, high, needed = verdict.pair_arrays(diffs, margin, units_random)
        status = verdict.decide(est, low, high, margin, n_seeds)
        out[claim] = (status, *verdict.headline(est, low, high), needed, diffs)
    return out


def mc_bound(rate: float, n: int = N_SWEEPS) -> float:
    """`rate` plus two Monte-Carlo standard errors of a rate near it."""
    return rate + 2 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("n_seeds", [2, 5, 10])
def test_no_claim_holds_or_fails_by_chance_more_than_5_percent(n_seeds):
    """No case differs (every mu equal; seeds, photographs and interactions as in the study): per claim,
    holds or fails, both directions counted, in at most 5% of sweeps (within Monte-Carlo error)."""
    for claim, (status, *_rest) in run_claims(World(), n_seeds, seed=n_seeds).items():
        decided = np.isin(status, [verdict.HOLDS, verdict.FAILS]).mean()
        assert decided <= mc_bound(0.05), (claim, n_seeds, decided)


@pytest.mark.parametrize("n_seeds", [2, 5, 10])
def test_the_headline_interval_covers_c_minus_the_truly_strongest_other(n_seeds):
    """c truly ahead of a by 0.03 nats, of d by 0.05, of b by 0.13 (the shares: whatever that makes
    them): the headline interval covers min_o (c - o) in >= 93% of sweeps, for every claim."""
    world = World(means={"a": 0.92, "b": 0.82, "c": 0.95, "d": 0.90})
    results = run_claims(world, n_seeds, seed=10 + n_seeds)
    for claim, (_status, _est, low, high, _needed, diffs) in results.items():
        if claim == "winner_share":  # the true share differences: the mean over every sweep's cells
            truth = diffs.mean(axis=tuple(range(2, diffs.ndim))).mean(0).min()
        else:
            truth = 0.03
        covered = ((low <= truth) & (truth <= high)).mean()
        assert covered >= 0.93, (claim, n_seeds, covered)


def test_seeds_needed_predicts_the_half_width_it_takes():
    """From 5-seed sweeps, each pair's seeds_needed is where its predicted half-width falls below the
    margin; sweeps run at that many seeds realise a half-width within 25% of the prediction (means over
    sweeps: one 5-seed sweep's own prediction rests on 4 degrees of freedom)."""
    world, margin = World(), MI_MARGIN
    rng = np.random.default_rng(7)
    diffs = claim_diffs(world, rng, N_SWEEPS, 5)["mean_max_mi"][0]
    each = verdict.pair_level(3)
    _, ms_seed, excess = stats.crossed_parts(diffs, verdict.FLOOR * margin)
    seed_var, unit_part = ms_seed / 20, stats.t_quantile(19, each) ** 2 * excess / (5 * 20)
    needed = stats.seeds_needed(seed_var, unit_part, margin, each)  # (sweeps, pairs)
    for k in range(3):  # c - a, c - b, c - d
        target = int(np.nanmedian(needed[:, k]))
        predicted = stats.halfwidth_at(target, seed_var[:, k], unit_part[:, k], each).mean()
        later = claim_diffs(world, rng, 100, target)["mean_max_mi"][0][:, k]
        _, half = stats.crossed_halfwidth(later, each, verdict.FLOOR * margin)
        assert half.mean() == pytest.approx(predicted, rel=0.25), (CASES[OTHERS[k]], target)
        assert predicted < margin * 1.25


@pytest.mark.parametrize("n_seeds", [2, 5, 10])
def test_each_winner_share_interval_covers_small_shares_included(n_seeds):
    """winners.csv's intervals (stats.share_intervals) in a world where seeds matter as in the study
    (its mean max-MI: a = c 0.906, d 0.888, b 0.819; b wins about 3% of the images): each case's
    interval covers its true share in >= 93% of sweeps."""
    world = World(means={"a": 0.906, "b": 0.819, "c": 0.906, "d": 0.888})
    rng = np.random.default_rng(20 + n_seeds)
    y = world.images(rng, N_SWEEPS, n_seeds)
    credit = stats.win_credit(np.moveaxis(y, 1, -1), MI_MARGIN)  # (n, seed, photo, crop, case)
    cells = np.moveaxis(credit.mean(-2), -1, 1)  # (n, case, seed, photo)
    share, half = stats.crossed_halfwidth(cells)
    low, high = stats.share_intervals(share, half, n_seeds * 320, 20)
    truth = share.mean(0)  # every sweep's share, averaged: the true share to 1e-3
    assert truth[CASES.index("b")] < 0.05  # a small share is among them
    covered = ((low <= truth) & (truth <= high)).mean(0)
    assert (covered >= 0.93).all(), dict(zip(CASES, covered))


def cells_frame(diffs_case: np.ndarray) -> pd.DataFrame:
    """Long cells (seed, unit, case, value) of one sweep's (case, seed, unit) array."""
    c, s, g = diffs_case.shape
    idx = pd.MultiIndex.from_product(
        [list(CASES), range(s), range(g)], names=["case", "seed", "unit"]
    )
    return pd.DataFrame({"value": diffs_case.ravel()}, index=idx).reset_index()


def test_the_vectorised_verdict_is_compare_cases():
    """verdict.pair_arrays on a (sweeps, pairs, seeds, units) array gives compare_cases' numbers on
    each sweep's cells: the simulation above tests the code `infomax compare` runs."""
    rng = np.random.default_rng(3)
    y = World(means={"a": 0.9, "b": 0.85, "c": 0.93, "d": 0.91}).images(rng, 3, 4).mean(-1)
    est, low, high, needed = verdict.pair_arrays(y[:, [C]] - y[:, OTHERS], MI_MARGIN)
    status = verdict.decide(est, low, high, MI_MARGIN, 4)
    for i in range(3):
        v = verdict.compare_cases(cells_frame(y[i]), margin=MI_MARGIN)
        assert [v.pairs[CASES[o]].ci_low for o in OTHERS] == pytest.approx(low[i])
        assert [v.pairs[CASES[o]].ci_high for o in OTHERS] == pytest.approx(high[i])
        assert [v.pair_seeds[CASES[o]] for o in OTHERS] == pytest.approx(needed[i], nan_ok=True)
        assert v.status == status[i]


def test_a_zero_width_interval_never_decides():
    """Two seeds gave the same difference to 6 digits (a real 1-step sweep: c - a = -1.65e-5 twice): no
    fails, no equivalent; the seed-to-seed spread is floored at a tenth of the margin."""
    rows = [
        (seed, unit, case, 0.5 + (-1.65e-5 if case == "c" else 0.0) + 0.01 * unit)
        for seed in (0, 1)
        for unit in range(20)
        for case in "ac"
    ]
    cells = pd.DataFrame(rows, columns=["seed", "unit", "case", "value"])
    v = verdict.compare_cases(cells, margin=MI_MARGIN)
    assert v.status == verdict.NOT_ESTABLISHED and v.ci_high - v.ci_low > MI_MARGIN
    five = cells.merge(pd.DataFrame({"seed": range(5)}), how="cross", suffixes=("_", ""))
    v5 = verdict.compare_cases(five.drop(columns="seed_"), margin=MI_MARGIN)
    assert v5.status == verdict.EQUIVALENT and 0 < v5.ci_high - v5.ci_low < MI_MARGIN
