"""`infomax settle`: its command line, its stopping rule calibrated on fabricated sweeps (the looks the
plan assumes, the sweep stopped when every claim is decided), and end to end on the embedded set: it
stops on the budget, continues after a signal sent during a round, and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY, infomax, warm_infomax
from test_verdict import DOMINANT, LEAD, SYMMETRIC, judge, world_claims
from verdict_world import World, wrong

from infomax_cli import rundir, settle
from infomax_cli.analysis import command, compare, looks, sequential, stats
from infomax_cli.analysis.sweep import Sweep
from infomax_cli.errors import ConfigError
from infomax_cli.settle import loop as settle_loop
from infomax_cli.settle import rounds as settle_rounds
from infomax_cli.store import SweepRecord


# ------------------------------------------------------------------------------ the command line
def test_the_two_forms_and_their_options():
    o = settle.parse(["outputs/s", "--round", "2", "--max-seeds", "10", "--hours", "1.5"])
    assert (o.sweep_dir, o.start, o.round, o.max_seeds, o.hours) == (
        Path("outputs/s"),
        (),
        2,
        10,
        1.5,
    )
    o = settle.parse(["case=a,b,c,d", "dataset=samples", "hydra.sweep.dir=~/s"])
    assert o.sweep_dir == Path.home() / "s" and o.start[0] == "case=a,b,c,d"
    assert (o.round, o.max_seeds, o.hours) == (settle.ROUND, None, None)
    o = settle.parse(["outputs/s", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4"])
    assert o.launcher == ("hydra/launcher=joblib", "hydra.launcher.n_jobs=4")


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], "one sweep directory"),
        (["a", "b"], "one sweep directory"),
        (["case=a,c"], "hydra.sweep.dir=DIR"),
        (["outputs/s", "case=a,c"], "only the launcher's settings"),
        (["outputs/s", "--round", "0"], "--round 0"),
        (["outputs/s", "--max-seeds", "1"], "--max-seeds 1"),
        (["outputs/s", "--hours", "nan"], "--hours nan"),
        (["outputs/s", "--hours", "-1"], "--hours -1"),
        (["outputs/s", "-m"], "unrecognized arguments: -m"),
    ],
)
def test_bad_command_lines_are_one_line(argv, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
        settle.parse(argv)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    """As a user meets it: no arguments, a misspelt option value, a folder that does not exist, one
    that holds no sweep: one line on stderr naming the fix, exit 2, nothing written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, words in [
        ((), "give one sweep directory, or the overrides that start one"),
        ((str(empty), "--round", "x"), "argument --round: invalid int value: 'x'"),
        ((str(tmp_path / "nope"),), "is not a directory"),
        ((str(empty),), f"start one with infomax settle OVERRIDES... hydra.sweep.dir={empty}"),
    ]:
        r = infomax("settle", *args)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and not r.stdout
    assert list(empty.iterdir()) == [] and not (tmp_path / "nope").exists()


def test_a_round_runs_the_recorded_keys_and_only_a_known_launcher(tmp_path):
    """The round's arguments are analysis/command.py's: the tool's keys, the seeds, the directory
    last; a recorded launcher only as a preset's name (another is dropped: the basic launcher), one
    named on settle's command line replacing it, its settings only from there."""
    task = ["case=a,c", "dataset=samples", "seed=0,1", "hydra.job.env_set.X=1"]
    for recorded, expected in [("joblib", "hydra/launcher=joblib"), ("evil.Launcher", None)]:
        args = command.run_args(task, [f"hydra/launcher={recorded}"], tmp_path, [2, 3])
        assert args[:2] == ["case=a,c", "dataset=samples"] and "seed=2,3" in args
        assert args[-1] == f"hydra.sweep.dir={tmp_path.resolve()}"
        assert (expected in args) if expected else not any("launcher" in a for a in args)
        assert not any(a.startswith("hydra.job") for a in args)
    opts = settle.parse([str(tmp_path), "hydra/launcher=slurm", "hydra.launcher.partition=gpu"])
    loop = settle_loop.Settle(opts, settle_rounds.Relay())
    args = loop.with_launcher(command.run_args(task, ["hydra/launcher=joblib"], tmp_path, [2]))
    assert "hydra/launcher=joblib" not in args and args[-3:-1] == list(opts.launcher)
    assert args[-1].startswith("hydra.sweep.dir=")


def test_the_first_round_adds_seeds_and_the_plan_unless_given(tmp_path):
    where = f"hydra.sweep.dir={tmp_path}"
    opts = settle.parse(["case=a,c", where, "--round", "3", "--max-seeds", "12"])
    loop = settle_loop.Settle(opts, settle_rounds.Relay())
    assert loop.first_args() == ["case=a,c", where, "seed=0,1,2", "compare.max_seeds=12"]
    opts = settle.parse(["case=a,c", "seed=4,5", "compare.max_seeds=8", where, "--max-seeds", "9"])
    assert settle_loop.Settle(opts, settle_rounds.Relay()).first_args() == list(opts.start)


def test_rounds_finish_left_out_seeds_first_then_add_up_to_the_cap(tmp_path):
    sweep = Sweep(tmp_path, "sweep", [], record=SweepRecord(["case=a,c"], []))
    sweep.jobs = [_job(c, s) for c in "ac" for s in (0, 1, 2)]
    sweep.left_out = [_left_out(3)]
    assert settle.round_target(3, 5, 60) == 8 and settle.round_target(3, 5, 6) == 6
    loop = settle_loop.Settle(settle.parse([str(tmp_path), "--round", "2"]), None)
    r = loop.next_round(sweep, cap=60)
    assert r.seeds == [3, 4] and "seed=3,4" in r.args


def test_a_case_none_of_whose_jobs_finished_keeps_its_seeds_pending(tmp_path):
    """Case a finished at seeds 0 and 1, case c never started (a round stopped early): no seed is
    complete, and the next round runs seeds 0 and 1 (c's jobs; a's skipped), not new ones."""
    sweep = Sweep(tmp_path, "sweep", [_job("a", 0), _job("a", 1)])
    sweep.missing = ["case=c seed=0", "case=c seed=1"]
    assert compare.complete_seeds(sweep) == [] and sweep.pending_seeds == [0, 1]
    assert compare.seeds_to_run(sweep, 2) == [0, 1] and compare.seeds_to_run(sweep, 3) == [0, 1, 2]


def _job(case, seed):
    from infomax_cli.store import Job

    return Job(
        Path(f"case={case},seed={seed}"),
        [f"case={case}", f"seed={seed}"],
        {"case": case, "seed": seed},
    )


def _left_out(seed):
    from infomax_cli.analysis.sweep import LeftOut

    return LeftOut("", seed, ["case c: job case=c,seed=3 has not finished"])


def test_stop_reasons():
    def state(status):
        return looks.ClaimState("", "mean_mi", status, status != "not established", 5, 9, 12, "")

    settled = [state("holds"), state("equivalent"), state("fails")]
    still = [state("holds"), state("not established")]
    assert settle.stop_reason(settled, 5, 60, 60) == settle.SETTLED
    assert settle.stop_reason(still, 5, 60, 60) is None
    assert settle.stop_reason(still, 60, 60, 60) == settle.PLAN_END
    assert settle.stop_reason(still, 10, 60, 10) == settle.CAP
    assert settle.stop_reason([], 1, 60, 60) is None  # nothing decided yet


# ----------------------------------------------------------------------- calibrated: settle's stop
ROUNDS = (2, 4, 6, 8, 10, 12, 14, 16)  # eight rounds of two seeds, a 16-seed plan
PLAN = sequential.Plan(16, sequential.POCOCK)
DECIDED = ("holds", "fails", "equivalent")


def settled_sweeps(found: dict) -> tuple[dict, np.ndarray]:
    """Each claim's (status, est, low, high) at the look where settle stops each sweep: the first
    look after which settle.stop_reason says stop (every claim decided), else the plan's last; and
    that look's index per sweep."""
    per_look = [
        {name: judge(PLAN)(c.first(n), c, ROUNDS[:i], n) for name, c in found.items()}
        for i, n in enumerate(ROUNDS)
    ]
    n_sweeps = next(iter(found.values())).cells.shape[0]
    stop = np.full(n_sweeps, len(ROUNDS) - 1)
    for s in range(n_sweeps):
        for i, n in enumerate(ROUNDS):
            states = [
                looks.ClaimState("", k, str(v[0][s]), str(v[0][s]) in DECIDED, n, 9.0, 9.0, "")
                for k, v in per_look[i].items()
            ]
            if settle.stop_reason(states, n, PLAN.max_seeds, PLAN.max_seeds) is not None:
                stop[s] = i
                break
    rows = np.arange(n_sweeps)
    out = {}
    for name in found:
        parts = [
            np.stack([np.asarray(per_look[i][name][j]) for i in range(len(ROUNDS))])
            for j in range(4)
        ]
        out[name] = tuple(part[stop, rows] for part in parts)
    return out, stop


@pytest.mark.parametrize(
    "world", [World(), SYMMETRIC], ids=["as in the study", "no shared structure"]
)
@pytest.mark.slow
def test_settles_stopping_keeps_each_claims_error_rate(world):
    """No case differs in MI (the example photographs keep their own case x photograph effect): sweeps
    settled in rounds of two seeds (eight looks of a 16-seed plan, one per round), each stopped by
    settle's own rule when every claim is decided: each claim is decided wrongly in at most 5% of them
    (the plan's limits hold at every look at once, so the look the data stop at cannot bias them)."""
    found = world_claims(world, max(ROUNDS), seed=11)
    stopped, _ = settled_sweeps(found)
    for name, claim in found.items():
        rate = wrong(stopped[name][0], claim.truth, claim.margin).mean()
        assert rate <= 0.05, (name, rate)


@pytest.mark.parametrize("world", [LEAD, DOMINANT], ids=["c ahead by 0.05", "c wins most images"])
@pytest.mark.slow
def test_where_c_leads_the_settled_intervals_cover_the_truth(world):
    """c ahead of every case (by 0.05 nats; by 0.1, winning ~85% of the images): at the look settle
    stops at, each pair's interval and the headline's (c minus the truly strongest other) cover their
    truths in >= 93% of sweeps, winner shares included, and so does each case's winners.csv share
    interval; and some sweeps settle before the plan's end (the rule stops on the data)."""
    found = world_claims(world, max(ROUNDS), seed=12)
    stopped, stop = settled_sweeps(found)
    for name, claim in found.items():
        _, _, low, high = stopped[name]
        pairs = ((low <= claim.truth) & (claim.truth <= high)).mean(0)
        lo, hi, truth = low.min(-1), high.min(-1), claim.truth.min(-1)
        head = ((lo <= truth) & (truth <= hi)).mean()
        assert (pairs >= 0.93).all() and head >= 0.93, (name, pairs, head)
    share = found["winner_share"]
    truth = share.cells.mean((0, 2, 3))  # each case's population share (cases: c, a, b, d)
    covered = np.zeros(len(truth))
    for i in np.unique(stop):
        n = ROUNDS[i]
        p, half = stats.crossed_halfwidth(np.moveaxis(share.cells[stop == i, :, :n], 1, 0))
        lo, hi = stats.share_intervals(p.T, half.T, n * 320, 20)
        covered += ((lo <= truth) & (truth <= hi)).sum(0)
    assert (covered / len(stop) >= 0.93).all(), covered / len(stop)
    assert np.mean(stop < len(ROUNDS) - 1) > 0.1


# ---------------------------------------------------------------------------------- end to end
def finished_jobs(sweep: Path) -> dict[str, bytes]:
    """Each finished job's name and summary.json: what a settle must never lose or redo."""
    return {
        d.name: (d / rundir.SUMMARY).read_bytes()
        for d in sorted(sweep.iterdir())
        if rundir.is_finished(d)
    }


@pytest.mark.long
def test_settle_end_to_end_interrupted_out_of_budget_and_continued(tmp_path):
    """On the embedded set, tiny jobs, cases a and c, a plan of two seeds, rounds of two: settle starts
    the sweep and is interrupted (SIGINT, as Ctrl-C) during its first round once a job has finished
    (exit 130, nothing lost); the same command with a budget spent before any round stops on the
    budget (exit 0), saying which claims are open and what would settle them; the same command again
    finishes the round (the finished job skipped, not redone) and stops at the plan's last look."""
    sweep = tmp_path / "sweep"
    start = ["settle", "case=a,c", *TINY, f"hydra.sweep.dir={sweep}", "--round", "2"]
    start += ["--max-seeds", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}
    cmd = [*warm_infomax(), *start]  # forked: the client passes the SIGINT on
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 300
        while not (sweep.is_dir() and finished_jobs(sweep)) and proc.poll() is None:
            assert time.monotonic() < deadline, "no job finished"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = (b.decode() for b in proc.communicate(timeout=300))
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err[-3000:])
    assert "interrupted (SIGINT) in round 1" in out and "Traceback" not in out + err
    kept = finished_jobs(sweep)
    assert len(kept) == 1 and not (sweep / rundir.LOOKS).exists()  # the round never looked

    r = infomax(*start, "--hours", "0.0001")  # 0.36 s: spent before any round
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "the budget (0.0001 h) is spent at 0 seeds" in r.stdout and "round 1:" not in r.stdout
    assert "open, and what would settle each:" in r.stdout
    assert (
        "mean_mi: a first seed of every case" in r.stdout and "to go on: infomax settle" in r.stdout
    )
    assert finished_jobs(sweep) == kept and "Traceback" not in r.stderr

    r = infomax(*start)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "round 1: seeds 0, 1" in r.stdout and "look 2 at 2 seeds" in r.stdout, r.stdout
    assert "the plan's last look (2 seeds" in r.stdout or "settled at 2 seeds" in r.stdout
    now = finished_jobs(sweep)
    assert len(now) == 4 and {k: now[k] for k in kept} == kept  # kept, not run again
    history = pd.read_csv(sweep / rundir.LOOKS)
    assert history.groupby("look").n_seeds.max().tolist() == [0, 2]
    log = (sweep / rundir.SETTLE_LOG).read_text()
    assert log.count("=== infomax settle, round 1") == 2 and "Traceback" not in log
