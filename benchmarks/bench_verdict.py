"""The verdict's error rates, power and coverage in the fabricated world of tests/verdict_world.py, for
the closing note of issue 30 and the README ("Looking again and again"): this checkout's rule, or
with --before the rule of an older commit (default f189cd4, the fixed-size Bonferroni rule: every look
at the full 5%), run on the same simulated sweeps.

    .venv/bin/python benchmarks/bench_verdict.py [--sweeps 1000] [--before [COMMIT]]

Printed, per claim (loss curves / example images / winner share / mean max-MI / mean MI):
  0. one look at 2, 5, 10 seeds: where no case differs in MI, the share of sweeps decided wrongly;
     where c is 0.03 nats ahead of a (0.05 of d, 0.13 of b), how often the headline covers c minus the
     truly strongest other; where the shares are the study's (a = c 0.35, d 0.28, b 0.03), how often
     each case's winners.csv interval covers its share;
  1. where no case differs in MI (seeds as in the study, or no case sharing structure with another, so
     that the winner shares are equal too), the share of sweeps decided wrongly (holds while c is truly not
     ahead of every case, fails while no case is truly ahead of c, equivalent while a pair truly lies
     at or beyond the margin) when each sweep is looked at at 5, 10, 20, 40 seeds, or every 5 seeds
     up to 60, and stops at its first decision; and the share that hold or fail at all;
  2. where c leads every case by 0.05 nats, how often each claim holds with 10 seeds (one look);
  3. where c leads by 0.1 nats (it wins ~85% of the images), how often each case's winners.csv
     interval and the winner-share claim's pair intervals cover the truth, at 5 and 10 seeds;
  4. where c leads by 0.05 nats, the sweeps looked at every 5 seeds up to 60 (the plan's maximum):
     how often each claim holds by the time they stop, the seeds they used on average, and how often
     a fixed-size sweep of that many seeds holds; and plans of 10, 20, 40 seeds looked at every 5
     against one look at their maximum (this checkout only: the old rule has no plan).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from verdict_world import (  # noqa: E402
    CASES,
    STUDY_FIRST,
    World,
    claims,
    covers,
    run_looks,
    wrong,
)

NULL = World()
# no case differs and none shares structure with another: every share is truly the same (in NULL, a
# and c, one network, split the images they tie on, so c's share is truly 5 points below b's and d's)
SYMMETRIC = World(sd_group=0.0, sd_case_seed=0.035)
LEAD = World(means={"a": 0.9, "b": 0.9, "c": 0.95, "d": 0.9})
DOMINANT = World(means={"a": 0.9, "b": 0.9, "c": 1.0, "d": 0.9})
SCHEDULES = {"5, 10, 20, 40": [5, 10, 20, 40], "every 5 to 60": list(range(5, 61, 5))}
NAMES = ("loss_curves", "example_images", "winner_share", "mean_max_mi", "mean_mi")


def old_rule():
    """The rule of the older commit (its verdict.pair_arrays and decide: every look at the full
    level; shares clipped to [-1, 1] as its compare_cases did) as run_looks' judge, and its winners.csv
    intervals."""
    from infomax_cli.analysis import stats, verdict

    def judge(cells, claim, before, n):
        diffs = cells[:, :1] - cells[:, 1:]
        est, low, high, _ = verdict.pair_arrays(diffs, claim.margin, claim.units_random)
        if claim.share:
            low, high = np.maximum(low, -1.0), np.minimum(high, 1.0)
        return verdict.decide(est, low, high, claim.margin, n), est, low, high

    return judge, stats


def new_rule(plan):
    """This checkout's rule at a plan's levels (None: one look that spends everything)."""
    from infomax_cli.analysis import stats, verdict

    def judge(cells, claim, before, n):
        k = cells.shape[1] - 1
        levels = verdict.Levels.fixed(k) if plan is None else verdict.Levels.at(plan, before, n, k)
        p = verdict.claim_arrays(cells, claim.margin, levels, claim.units_random, claim.share)
        return verdict.decide(p, claim.margin), p.est, p.low, p.high

    return judge, stats


def percent(x) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in x)


AHEAD = World(means={"a": 0.92, "b": 0.82, "c": 0.95, "d": 0.90})  # c 0.03 ahead of a
STUDY_SHARES = World(means={"a": 0.906, "b": 0.819, "c": 0.906, "d": 0.888})  # b wins ~3%


def one_look(judge, stats, n_sweeps):
    """The fixed-size rule (one look) at 2, 5 and 10 seeds: the README's "Intervals" table."""
    for n_seeds in (2, 5, 10):
        null = claims(
            NULL, np.random.default_rng(10 + n_seeds), n_sweeps, n_seeds, stats.win_credit
        )
        bad = [
            wrong(run_looks(c, [n_seeds], judge).status, c.truth, c.margin).mean()
            for c in null.values()
        ]
        ahead = claims(
            AHEAD, np.random.default_rng(20 + n_seeds), n_sweeps, n_seeds, stats.win_credit
        )
        head = []
        for c in ahead.values():
            s = run_looks(c, [n_seeds], judge)
            truth = c.truth.min(-1)
            head.append(((s.low.min(-1) <= truth) & (truth <= s.high.min(-1))).mean())
        shares = claims(
            STUDY_SHARES, np.random.default_rng(30 + n_seeds), n_sweeps, n_seeds, stats.win_credit
        )
        cells = shares["winner_share"].cells
        truth = cells.mean((0, 2, 3))
        p, half = stats.crossed_halfwidth(np.moveaxis(cells, 1, 0))
        lo, hi = stats.share_intervals(p.T, half.T, n_seeds * 320, 20)
        each = ((lo <= truth) & (truth <= hi)).mean(0)
        print(
            f"  {n_seeds} seeds: no case differs, wrong {percent(bad)}%; c 0.03 ahead, the headline "
            f"covers {percent(head)}%; winners.csv covers {percent(each)}% (c, a, b, d)"
        )


def error_rates(judge, stats, n_sweeps):
    for world, words in ((NULL, "as in the study"), (SYMMETRIC, "no structure shared")):
        for label, looks in SCHEDULES.items():
            found = claims(world, np.random.default_rng(1), n_sweeps, max(looks), stats.win_credit)
            bad, decided = [], []
            for name in NAMES:
                s = run_looks(found[name], looks, judge)
                bad.append(wrong(s.status, found[name].truth, found[name].margin).mean())
                decided.append(np.isin(s.status, ["holds", "fails"]).mean())
            print(
                f"  {words}, looks at {label}: wrong {percent(bad)}%; hold or fail "
                f"{percent(decided)}%"
            )


def power(judge, stats, n_sweeps, plans=()):
    found = claims(LEAD, np.random.default_rng(2), n_sweeps, 10, stats.win_credit)
    held = [(run_looks(found[n], [10], judge).status == "holds").mean() for n in NAMES]
    print(f"  c ahead by 0.05 nats, 10 seeds, one look: holds {percent(held)}%")
    for label, looks, rule in plans:
        held = [(run_looks(found[n], looks, rule).status == "holds").mean() for n in NAMES]
        print(f"  the same, {label}: holds {percent(held)}%")


def share_coverage(judge, stats, n_sweeps):
    for n_seeds in (5, 10):
        share = claims(DOMINANT, np.random.default_rng(3), n_sweeps, n_seeds, stats.win_credit)
        share = share["winner_share"]
        truth = share.cells.mean((0, 2, 3))
        p, half = stats.crossed_halfwidth(np.moveaxis(share.cells, 1, 0))
        lo, hi = stats.share_intervals(p.T, half.T, n_seeds * 320, 20)
        each = ((lo <= truth) & (truth <= hi)).mean(0)
        s = run_looks(share, [n_seeds], judge)
        pairs = ((s.low <= share.truth) & (share.truth <= s.high)).mean(0)
        together = covers(s.low, s.high, share.truth).mean()
        cases = ", ".join(f"{CASES[i]} {100 * c:.1f}" for i, c in zip(STUDY_FIRST, each))
        print(
            f"  c wins {100 * truth[0]:.0f}% of images, {n_seeds} seeds: winners.csv covers {cases}%;"
            f" pairs c-a, c-b, c-d {percent(pairs)}% (together {100 * together:.1f}%)"
        )


def settled_power(n_sweeps):
    from infomax_cli.analysis import sequential, stats

    looks = SCHEDULES["every 5 to 60"]
    for kind in sequential.SPENDING:
        plan = sequential.Plan(60, kind)
        found = claims(LEAD, np.random.default_rng(4), n_sweeps, 60, stats.win_credit)
        parts = []
        for name in NAMES:
            s = run_looks(found[name], looks, new_rule(plan)[0])
            used = np.array(looks)[s.look]
            fixed_n = int(round(used.mean()))
            fixed = run_looks(found[name], [fixed_n], new_rule(None)[0])
            parts.append(
                f"{name} {100 * (s.status == 'holds').mean():.1f}% at {used.mean():.1f} seeds "
                f"(fixed {fixed_n}: {100 * (fixed.status == 'holds').mean():.1f}%)"
            )
        print(f"  {kind}, c ahead by 0.05, looks every 5 to 60: " + "; ".join(parts))
    for kind in sequential.SPENDING:  # the cost of looking: a plan of N seeds against one look at N
        for top in (10, 20, 40):
            plan, looks = sequential.Plan(top, kind), list(range(5, top + 1, 5))
            found = claims(LEAD, np.random.default_rng(5), n_sweeps, top, stats.win_credit)
            seq = [
                (run_looks(found[n], looks, new_rule(plan)[0]).status == "holds").mean()
                for n in NAMES
            ]
            one = [
                (run_looks(found[n], [top], new_rule(None)[0]).status == "holds").mean()
                for n in NAMES
            ]
            print(
                f"  {kind}, plan of {top} seeds looked at every 5: holds {percent(seq)}%; "
                f"one look at {top}: {percent(one)}%"
            )


def before(commit: str, n_sweeps: int) -> int:
    """Run this script on the older commit's code (its infomax_cli, this world)."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "infomax_cli"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": tmp}
        args = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--sweeps",
            str(n_sweeps),
            "--old-code",
            commit,
        ]
        return subprocess.run(args, env=env, cwd=tmp).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--before", nargs="?", const="f189cd4", default=None)
    parser.add_argument("--old-code", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.before:
        return before(args.before, args.sweeps)
    start = time.perf_counter()
    if args.old_code:
        judge, stats = old_rule()
        print(f"the rule at {args.old_code} (every look at the full 5%), {args.sweeps} sweeps")
        rules = [("", judge)]
    else:
        from infomax_cli.analysis import sequential

        judge, stats = new_rule(None)
        print(f"this checkout's rule, {args.sweeps} sweeps")
        rules = [
            (f"{kind}, plan of 60 seeds: ", new_rule(sequential.Plan(60, kind))[0])
            for kind in sequential.SPENDING
        ] + [("fixed-size rule at every look: ", judge)]
    print("per claim: " + " / ".join(NAMES))
    print("0. one look (the fixed-size rule):")
    one_look(judge, stats, args.sweeps)
    print("1. no case differs in MI:")
    for label, rule in rules:
        print(f" {label}")
        error_rates(rule, stats, args.sweeps)
    print("2. power:")
    plans = []
    if not args.old_code:
        plan = new_rule(sequential.Plan(60))[0]
        plans = [
            ("one look at 10 of the default plan (60 seeds)", [10], plan),
            ("looks at 5 and 10 of the default plan", [5, 10], plan),
        ]
    power(judge, stats, args.sweeps, plans)
    print("3. winner shares where c dominates (one look):")
    share_coverage(judge, stats, args.sweeps)
    if not args.old_code:
        print("4. a sequentially settled sweep against a fixed-size sweep of its seeds:")
        settled_power(args.sweeps)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
