"""`infomax settle`: a sweep continued in rounds of seeds, through its own launcher, until every claim is
decided or the budget is spent.

    infomax settle SWEEP_DIR [--round K] [--max-seeds N] [--hours H] [LAUNCHER SETTINGS]
    infomax settle OVERRIDES... hydra.sweep.dir=DIR [--round K] [--max-seeds N] [--hours H]

The first form continues a sweep; the second starts one (its first round is `infomax run -m OVERRIDES`,
with `seed=0..K-1` unless a seed is given and `compare.max_seeds=N` with --max-seeds) or, when DIR holds
that sweep already, continues it. A round is one `infomax run -m` in a process group of its own, its
output appended to DIR/settle.log: the seeds left out of the tables first (their unfinished or damaged
jobs run again), then new seeds, to K more complete seeds; the comparison at the end of that multirun is
the round's look (looks.csv). Settle then reads that look (a comparison on the same seeds is the same
look, not another), prints one line per claim and the budget, and stops when every claim is decided
(holds, fails, equivalent), when the sweep has as many seeds as its plan allows (compare.max_seeds, or
fewer with --max-seeds: the plan's last look), or when the budget is spent: a round still running then
is stopped as Ctrl-C stops it (its jobs checkpoint), its finished seeds looked at once more.

The looks are those the plan assumes: one per round, each recorded, their seed counts set by --round,
the plan and the clock, never by the claims' numbers; the status of a claim is that of the look where the
sweep stopped, which the plan's repeated limits keep wrong in at most 5% of sweeps however that look is
chosen (tests/test_settle.py checks settle's own stopping rule on fabricated sweeps).

What is read from the sweep directory is data: each round's command is built by analysis/command.py
from the tool's own keys, the launcher only as the name of one of the package's presets (its settings,
`hydra.launcher.KEY=VALUE`, only from settle's own command line). SIGINT (Ctrl-C) and SIGTERM reach the
round's processes once each (their jobs checkpoint and stop); settle then exits 130 (143), and the same
command continues. A sweep directory is settled by one settle at a time (its .infomax.lock).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from .. import config, dirlock, rundir
from ..analysis import command, looks
from ..cli import SETTLE_ROUND, SETTLE_USAGE
from ..errors import ConfigError

ROUND = SETTLE_ROUND  # seeds per round by default
SETTLED, PLAN_END, CAP, BUDGET = "settled", "plan", "cap", "budget"


@dataclass(frozen=True)
class Options:
    """What settle was asked: the sweep directory; the overrides that start it (empty: continue it);
    the launcher settings given on settle's own command line; seeds per round; the most seeds
    (None: the plan's); the budget in hours (None: none)."""

    sweep_dir: Path
    start: tuple[str, ...] = ()
    launcher: tuple[str, ...] = ()
    round: int = ROUND
    max_seeds: int | None = None
    hours: float | None = None


def parse(argv: list[str]) -> Options:
    """settle's command line (module docstring), read by cli.py's parser; ConfigError (one line)."""
    from ..cli import parse as parse_command

    return options(parse_command(["settle", *argv]))


def options(a: argparse.Namespace) -> Options:
    """What cli.py's parser read, checked: the numbers in range, one sweep directory or the
    overrides that start one (ConfigError, one line, naming the fix)."""
    if a.round < 1:
        raise ConfigError(f"--round {a.round}: give the seeds per round, an integer >= 1.")
    if a.max_seeds is not None and a.max_seeds < 2:
        raise ConfigError(
            f"--max-seeds {a.max_seeds}: give an integer >= 2 (one seed decides nothing)."
        )
    if a.hours is not None and not (math.isfinite(a.hours) and a.hours > 0):
        raise ConfigError(f"--hours {a.hours}: give the budget in hours, a number > 0.")
    overrides = [t for t in a.targets if "=" in t]
    folders = [t for t in a.targets if "=" not in t]
    common = {"round": a.round, "max_seeds": a.max_seeds, "hours": a.hours}
    if len(folders) > 1 or not a.targets:
        raise ConfigError(
            f"give one sweep directory, or the overrides that start one; {SETTLE_USAGE}"
        )
    if folders:
        if other := [o for o in overrides if not launcher_setting(o)]:
            raise ConfigError(
                f"{other[0]}: with a sweep directory only the launcher's settings "
                "(hydra/launcher=NAME, hydra.launcher.KEY=VALUE) may be given: its other overrides "
                "are the sweep's own (start a new sweep with OVERRIDES... hydra.sweep.dir=DIR)."
            )
        return Options(Path(config.expand_path(folders[0])), (), tuple(overrides), **common)
    where = [o.partition("=")[2] for o in overrides if o.partition("=")[0] == "hydra.sweep.dir"]
    if not where or not where[-1] or "${" in where[-1]:
        raise ConfigError(
            "give hydra.sweep.dir=DIR with the overrides: the directory the sweep is kept and "
            "continued in (infomax settle DIR continues it later)."
        )
    return Options(Path(config.expand_path(where[-1])), tuple(overrides), (), **common)


def launcher_setting(override: str) -> bool:
    key = override.partition("=")[0]
    return key == command.LAUNCHER or key.startswith("hydra.launcher.")


# --------------------------------------------------------------------------------- what comes next
def decided(states: list[looks.ClaimState]) -> bool:
    return bool(states) and all(s.decided for s in states)


def stop_reason(
    states: list[looks.ClaimState], n_seeds: int, plan_max: int, cap: int
) -> str | None:
    """Why the sweep stops after a look at n_seeds (None: another round): every claim decided, the
    plan's last look, or the most seeds settle was given (--max-seeds). The budget is the clock's."""
    if decided(states):
        return SETTLED
    if n_seeds >= plan_max:
        return PLAN_END
    if n_seeds >= cap:
        return CAP
    return None


def round_target(n_seeds: int, per_round: int, cap: int) -> int:
    """The complete seeds the next round brings the sweep to."""
    return min(n_seeds + per_round, cap)


def names_launcher(override: str) -> bool:
    return override.partition("=")[0] == command.LAUNCHER


# ------------------------------------------------------------------------------------ the command
def run(opts: Options) -> int:
    """`infomax settle ...` (commands.settle): the exit status (0 done: settled, the plan's end,
    --max-seeds or the budget; 1 a round failed or completed nothing; 2 a usage or configuration
    error; 130 / 143 interrupted, resumable). Errors propagate as InfomaxError."""
    from .loop import Settle
    from .rounds import Relay

    where = opts.sweep_dir
    if not opts.start and not where.is_dir():
        raise ConfigError(
            f"{where} is not a directory: give the directory of a sweep (infomax run -m)."
        )
    if rundir.is_job_dir(where):
        raise ConfigError(
            f"{where} is a run directory: settle takes a sweep directory (infomax run -m)."
        )
    with dirlock.lock(where), Relay() as relay:
        settle = Settle(opts, relay)
        try:
            return settle.loop()
        finally:
            settle.close()
