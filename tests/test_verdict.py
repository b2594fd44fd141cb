"""The verdict's error rates and coverage, checked from outside: sweeps fabricated from a variance-
components model like the study's (tests/verdict_world.py), vectorised over hundreds of sweeps, run
through the same arithmetic `infomax compare` uses (rule.claim_arrays is compare_cases' on complete
tables: test_the_vectorised_verdict_is_compare_cases checks it), looked at again and again by a plan
(sequential.py) and stopped at the first decision. Claimed (README, "Intervals" and "Looking again and
again"): per claim, a wrong decision in at most 5% of sweeps however often they are looked at; the
intervals where the sweeps stop cover the truth in >= 93%; the plan's boundaries are the published
ones; seeds_needed decides with about 80% probability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from verdict_world import CASES, MARGINS, OTHERS, STUDY_FIRST, World, claims, run_looks, wrong

from infomax_cli.analysis import planning, sequential, stats, verdict

N_SWEEPS = 400
LOOKS = (2, 3, 4, 5, 7, 10, 15, 20)  # eight looks, the sweep's plan ending at the last
PLAN = sequential.Plan(20, sequential.POCOCK)
LEAD = World(means={"a": 0.9, "b": 0.9, "c": 0.95, "d": 0.9})  # c ahead of every case by 0.05 nats
DOMINANT = World(means={"a": 0.9, "b": 0.9, "c": 1.0, "d": 0.9})  # c wins about 85% of the images


def judge(plan: sequential.Plan | None):
    """A look at n seeds after looks at `before` (run_looks' judge): the rule at the plan's levels."""

    def look(cells, claim, before, n):
        k = cells.shape[1] - 1
        levels = verdict.Levels.fixed(k) if plan is None else verdict.Levels.at(plan, before, n, k)
        p = verdict.claim_arrays(cells, claim.margin, levels, claim.units_random, claim.share)
        return verdict.decide(p, claim.margin), p.est, p.low, p.high

    return look


def world_claims(world: World, n_seeds: int, seed: int, n_sweeps: int = N_SWEEPS) -> dict:
    return claims(world, np.random.default_rng(seed), n_sweeps, n_seeds, stats.win_credit)


# ------------------------------------------------------------------------------------- the plan
def test_the_boundaries_are_the_published_ones():
    """Lan-DeMets spending, five equally spaced looks, one-sided 2.5% (Jennison and Turnbull; gsDesign's
    sfLDOF and sfLDPocock give the same to 3 decimals)."""
    five = [0.2, 0.4, 0.6, 0.8, 1.0]
    obf = sequential.boundaries(five, 0.025, sequential.OBRIEN_FLEMING)
    pocock = sequential.boundaries(five, 0.025, sequential.POCOCK)
    assert obf == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    assert pocock == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=2e-3)


@pytest.mark.parametrize("kind", sequential.SPENDING)
def test_uneven_looks_cross_at_most_the_error_spent(kind):
    """Brownian paths looked at 2, 3, 5, 10, 11, 11 (no new information), 25 and 40 seeds of a 40-seed
    plan: the chance of crossing some boundary is the error spent, 2.5% (200 000 paths, within 3
    Monte-Carlo standard errors), and no look beyond the first one at the plan's end spends any."""
    seeds = np.array([2, 3, 5, 10, 11, 11, 25, 40])
    t = seeds / 40
    bounds = sequential.boundaries(t, 0.025, kind)
    assert bounds[5] == bounds[4]  # no new information, the same boundary
    rng = np.random.default_rng(0)
    steps = rng.normal(size=(200_000, len(t))) * np.sqrt(np.diff(np.r_[0, t]))
    z = np.cumsum(steps, 1) / np.sqrt(t)
    crossed = (z >= bounds).any(1).mean()
    assert crossed == pytest.approx(0.025, abs=3 * math.sqrt(0.025 * 0.975 / 200_000))
    assert sequential.Plan(40, kind).spent([5, 40, 60], 0.025) == pytest.approx(0.025)


# ----------------------------------------------------------------------- looks, calibrated
# no case differs and none shares structure with another, so the winner shares are equal too
SYMMETRIC = World(sd_group=0.0, sd_case_seed=0.035)


@pytest.mark.parametrize(
    "world", [World(), SYMMETRIC], ids=["as in the study", "no shared structure"]
)
@pytest.mark.slow
def test_no_claim_is_decided_wrongly_in_more_than_5_percent_of_sweeps_however_often_looked_at(
    world,
):
    """No case differs in MI (the example photographs keep their own case x photograph effect; in the
    study's world a and c, one network, split images, so the winner share's truth is c 5 points behind
    b and d): looked at 8 times between 2 and 20 seeds and stopped at the first decision, each claim is
    decided wrongly (holds, fails or equivalent against its truth) in at most 5% of sweeps. The
    fixed-size rule looked at the same way decides wrongly more often: the looks are what the plan pays
    for."""
    null = world_claims(world, max(LOOKS), seed=1)
    for name, claim in null.items():
        stopped = run_looks(claim, LOOKS, judge(PLAN))
        rate = wrong(stopped.status, claim.truth, claim.margin).mean()
        assert rate <= 0.05, (name, rate)
    fixed = run_looks(null["mean_mi"], LOOKS, judge(None))
    planned = run_looks(null["mean_mi"], LOOKS, judge(PLAN))
    truth, margin = null["mean_mi"].truth, MARGINS["mean_mi"]
    assert wrong(fixed.status, truth, margin).mean() > wrong(planned.status, truth, margin).mean()


@pytest.mark.parametrize("world", [LEAD, DOMINANT], ids=["c ahead by 0.05", "c wins most images"])
@pytest.mark.slow
def test_the_intervals_where_sweeps_stop_cover_the_truth(world):
    """Where c is ahead (by 0.05 nats, and by 0.1 so that it wins ~85% of the images), sweeps looked at
    8 times stop at their first decision: each pair's interval (c - a, c - b, c - d) and the headline
    (c minus the truly strongest other) cover their truths in >= 93% of sweeps, winner shares
    included, and so does each case's winners.csv share interval at the look where the sweep stopped."""
    found = world_claims(world, max(LOOKS), seed=2)
    for name, claim in found.items():
        s = run_looks(claim, LOOKS, judge(PLAN))
        pairs = ((s.low <= claim.truth) & (claim.truth <= s.high)).mean(0)
        low, high, truth = s.low.min(-1), s.high.min(-1), claim.truth.min(-1)
        head = ((low <= truth) & (truth <= high)).mean()
        assert (pairs >= 0.93).all() and head >= 0.93, (name, pairs, head)
    share = found["winner_share"]
    stop = np.array(LOOKS)[run_looks(share, LOOKS, judge(PLAN)).look]
    truth = share.cells.mean((0, 2, 3))  # each case's population share (cases: c, a, b, d)
    covered = np.zeros(len(CASES))
    for n in np.unique(stop):
        cells = share.cells[stop == n, :, :n]
        p, half = stats.crossed_halfwidth(np.moveaxis(cells, 1, 0))
        lo, hi = stats.share_intervals(p.T, half.T, n * 320, 20)
        covered += ((lo <= truth) & (truth <= hi)).sum(0)
    assert (covered / len(stop) >= 0.93).all(), dict(zip(np.array(CASES)[STUDY_FIRST], covered))


def test_the_fixed_size_rule_tests_each_pair_at_its_own_level():
    """One look at 10 seeds where c truly leads every case by 0.05 nats: holds (an intersection-union
    test, each pair at one-sided 2.5%) in most sweeps of each MI claim, where the Bonferroni rule it
    replaces held in about a quarter; where nothing differs, holds or fails, together, in <= 5%."""
    lead, null = world_claims(LEAD, 10, seed=3), world_claims(World(), 10, seed=4)
    for name in ("loss_curves", "mean_max_mi", "mean_mi"):
        status = run_looks(lead[name], [10], judge(None)).status
        assert (status == verdict.HOLDS).mean() >= 0.55, (name, (status == verdict.HOLDS).mean())
    for name, claim in null.items():
        status = run_looks(claim, [10], judge(None)).status
        assert wrong(status, claim.truth, claim.margin).mean() <= 0.05, name


# ------------------------------------------------------------------------ one claim's arithmetic
def cells_frame(values: np.ndarray) -> pd.DataFrame:
    """Long cells (seed, unit, case, value) of one sweep's (case (study first), seed, unit) array."""
    c, s, g = values.shape
    names = [CASES[i] for i in STUDY_FIRST]
    idx = pd.MultiIndex.from_product([names, range(s), range(g)], names=["case", "seed", "unit"])
    return pd.DataFrame({"value": values.ravel()}, index=idx).reset_index()


@pytest.mark.parametrize("name", ["mean_max_mi", "winner_share"])
def test_the_vectorised_verdict_is_compare_cases(name):
    """rule.claim_arrays on (sweeps, cases, seeds, units) gives compare_cases' numbers on each sweep's
    cells at the same look: the simulations above test the code `infomax compare` runs."""
    claim = world_claims(World(means={"a": 0.9, "b": 0.85, "c": 0.93, "d": 0.91}), 6, 5, 3)[name]
    look = verdict.Look(PLAN, (2, 4))
    levels = look.levels(6, 3)
    p = verdict.claim_arrays(claim.cells, claim.margin, levels, share=claim.share)
    status = verdict.decide(p, claim.margin)
    for i in range(3):
        v = verdict.compare_cases(
            cells_frame(claim.cells[i]), margin=claim.margin, share=claim.share, look=look
        )
        others = [CASES[o] for o in OTHERS]
        assert [v.pairs[o].ci_low for o in others] == pytest.approx(p.low[i])
        assert [v.pairs[o].ci_high for o in others] == pytest.approx(p.high[i])
        assert [v.pairs[o].equiv_high for o in others] == pytest.approx(p.equiv_high[i])
        assert v.status == status[i] and v.levels == levels


def test_identical_seeds_are_no_certainty_and_one_seed_decides_nothing():
    """Seeds that gave the same difference to six digits (a real 1-step sweep: c - a = -1.65e-5 every
    time): the seed-to-seed spread is floored at a fifth of the margin, so two such seeds never
    decide at the fixed size's holds / fails levels (their half-width is 1.8 margins) and by the
    default plan decide nothing at all; five are within the margin (at the fixed size and by the
    plan's look at 5). One seed decides no pair, whatever its interval over images."""

    def cells(n_seeds):
        rows = [
            (seed, unit, case, 0.5 + (-1.65e-5 if case == "c" else 0.0) + 0.01 * unit)
            for seed in range(n_seeds)
            for unit in range(20)
            for case in "ac"
        ]
        return pd.DataFrame(rows, columns=["seed", "unit", "case", "value"])

    margin, plan = MARGINS["mean_max_mi"], sequential.Plan(60)
    two = verdict.compare_cases(cells(2), margin=margin)
    assert two.ci_high - two.ci_low == pytest.approx(
        2 * 12.706 * 0.2 * margin / math.sqrt(2), rel=1e-3
    )
    assert verdict.compare_cases(cells(2), margin=margin, look=verdict.Look(plan)).status == (
        verdict.NOT_ESTABLISHED
    )
    for look in (verdict.Look(), verdict.Look(plan, (2,))):
        assert (
            verdict.compare_cases(cells(5), margin=margin, look=look).status == verdict.EQUIVALENT
        )
    one = verdict.compare_cases(cells(1), margin=margin)
    assert one.decisions == {"a": verdict.UNDECIDED} and one.ci_high - one.ci_low < margin


# ------------------------------------------------------------------------------ seeds_needed
def undecided(est, seed_var, unit_var, n_seeds=5, n_units=20) -> verdict.Pairs:
    """Pairs with these parts whose limits decide nothing yet."""
    k = len(est)
    wide = (np.full(k, -1.0), np.full(k, 1.0), np.full(k, -1.0), np.full(k, 1.0))
    return verdict.Pairs(np.asarray(est), *wide, seed_var, unit_var, n_seeds, n_units)


@pytest.mark.slow
def test_seeds_needed_decides_with_80_percent_when_the_estimate_is_the_truth():
    """Pairs of mean max-MI whose truth and variance parts are the world's own (c ahead of every case
    by 0.035 nats; c - d's seed-to-seed SD 0.05): seeds_needed after a first look at 5 seeds of a
    60-seed plan is where sweeps of that many seeds, looked at at 5 and then there, decide c - d in
    about 80% (70-90%) of sweeps; the range's upper end, from 5 seeds' variance, is no smaller."""
    world, plan = World(means={"a": 0.9, "b": 0.9, "c": 0.935, "d": 0.9}), sequential.Plan(60)
    big = world_claims(world, 5, seed=6, n_sweeps=2000)["mean_max_mi"]
    _, ms_seed, excess = stats.crossed_parts(big.cells[:, :1] - big.cells[:, 1:])
    seed_var, unit_var = ms_seed.mean(0) / 20, excess.mean(0) / (5 * 20)  # the truth, to 2%
    pairs = undecided(np.full(3, 0.035), seed_var, unit_var)
    needed, high, why = planning.seeds_needed(pairs, MARGINS["mean_max_mi"], plan)
    assert list(why) == ["", "", ""] and (np.nan_to_num(high, nan=np.inf) >= needed).all()
    n = int(needed[2])  # c - d
    assert 5 < n <= plan.max_seeds
    sweeps = world_claims(world, n, seed=7)["mean_max_mi"]
    decided = np.zeros(N_SWEEPS, dtype=bool)
    for before, m in (((), 5), ((5,), n)):
        levels = verdict.Levels.at(plan, before, m, 3)
        p = verdict.claim_arrays(sweeps.first(m), sweeps.margin, levels)
        decided |= verdict.pair_decisions(p, sweeps.margin)[:, 2] != verdict.UNDECIDED
    assert 0.7 <= decided.mean() <= 0.9, (n, decided.mean())


def test_seeds_needed_says_when_photographs_not_seeds_are_missing_or_the_plan_is_too_small():
    """A pair whose image units alone keep its interval across 0 (units part 0.02 nats SD at an
    estimate of 0.025) has no seed count (`units`); one that would take more seeds than the plan has
    none either (`plan`)."""
    pairs = undecided([0.025, 0.021], np.array([0.0004, 0.01]), np.array([0.0004, 0.0]))
    needed, _, why = planning.seeds_needed(pairs, 0.02, sequential.Plan(60))
    assert np.isnan(needed).all() and list(why) == [planning.UNITS, planning.PLAN]


def test_after_the_plans_last_look_no_seed_count_is_given():
    """A sweep at (or past) its plan's maximum: its undecided pairs have no seed count, `plan`."""
    pairs = undecided([0.03, 0.0], np.full(2, 1e-4), np.zeros(2), n_seeds=20)
    needed, high, why = planning.seeds_needed(pairs, 0.02, sequential.Plan(20))
    assert np.isnan(needed).all() and np.isnan(high).all() and list(why) == [planning.PLAN] * 2
