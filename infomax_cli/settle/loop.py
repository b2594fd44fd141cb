"""`infomax settle`'s rounds and looks, until the sweep stops (the package's docstring)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table

from .. import rundir, store
from ..analysis import command, compare, looks
from ..errors import ConfigError, PrintableFilter, RunError, printable
from ..render.report import interval_text, margin_text, seeds_text
from ..rundir import SETTING, several_settings
from . import (
    BUDGET,
    CAP,
    PLAN_END,
    SETTLED,
    Options,
    launcher_setting,
    names_launcher,
    round_target,
    stop_reason,
)
from .rounds import Live, Relay, Round, any_finished, any_jobs, open_log, run_round, seeds_of


class Settle:
    """One `infomax settle`: rounds and looks until the sweep stops."""

    def __init__(self, opts: Options, relay: Relay):
        self.opts, self.relay = opts, relay
        self._log_fd: int | None = None
        self.dir = opts.sweep_dir
        self.t0 = time.monotonic()
        self.deadline = None if opts.hours is None else self.t0 + 3600 * opts.hours
        self.rounds: list[Round] = []
        self.gained: list[
            tuple[float, int]
        ] = []  # per round looked at: its seconds, seeds completed
        self.out = Console(highlight=False, soft_wrap=True)
        self.shown: int | None = None  # the look last printed
        start = [o for o in opts.start if launcher_setting(o) and not names_launcher(o)]
        self.launcher = [*start, *opts.launcher]

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    @property
    def log_path(self) -> Path:
        return self.dir / rundir.SETTLE_LOG

    @property
    def log_fd(self) -> int:
        """settle.log, opened for appending when first written (a refused settle writes none)."""
        if self._log_fd is None:
            self._log_fd = open_log(self.dir)
        return self._log_fd

    def close(self) -> None:
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    def say(self, text: str) -> None:
        self.out.print(printable(text), markup=False)

    # -------------------------------------------------------------------------------- rounds
    def first_args(self) -> list[str]:
        """The first round's overrides when settle starts the sweep: the user's, with the first K
        seeds unless they name seeds, and the plan's most seeds when --max-seeds is given."""
        args = list(self.opts.start)
        if not seeds_of(args):
            args.append(command.seed_override(list(range(self.opts.round))))
        if self.opts.max_seeds is not None and not any(
            store.override_key(o) == "compare.max_seeds" for o in args
        ):
            args.append(f"compare.max_seeds={self.opts.max_seeds}")
        return args

    def check_same_sweep(self) -> None:
        """Starting overrides given for a directory that holds a sweep already: it must be theirs."""
        record = store.sweep_record(self.dir)
        if record.task is None:
            return
        mine = sorted(command.tool_overrides(self.first_args()))
        theirs = sorted(command.tool_overrides(record.task))
        if mine != theirs:
            raise ConfigError(
                f"{self.dir} holds a sweep of other overrides ({printable(' '.join(theirs))}, not "
                f"{printable(' '.join(mine))}): continue it with infomax settle {self.dir}, or give "
                "another hydra.sweep.dir."
            )

    def unlooked_round(self) -> Round:
        """A round for a sweep with no finished job: the starting overrides, or its record's."""
        if self.opts.start:
            args = self.first_args()
            return Round(len(self.rounds) + 1, args, seeds_of(args))
        record = store.sweep_record(self.dir)
        if record.task is None:
            raise ConfigError(
                f"{self.dir} holds no finished job and no record of a sweep (multirun.yaml): start "
                f"one with infomax settle OVERRIDES... hydra.sweep.dir={self.dir}."
            )
        seeds = seeds_of(record.task) or list(range(self.opts.round))
        args = command.run_args(record.task, record.hydra, self.dir, seeds)
        return Round(len(self.rounds) + 1, self.with_launcher(args), seeds)

    def next_round(self, sweep, cap: int) -> Round:
        """Left-out seeds first (their unfinished or damaged jobs), then new ones: K more complete
        seeds, at most `cap`; through the sweep's own launcher (a preset's name) and its keys."""
        complete = len(compare.complete_seeds(sweep))
        seeds = compare.seeds_to_run(sweep, round_target(complete, self.opts.round, cap))
        args = self.with_launcher(command.rerun_args(sweep, seeds))
        return Round(len(self.rounds) + 1, args, seeds)

    def with_launcher(self, args: list[str]) -> list[str]:
        """A round's arguments with the launcher settings of settle's own command line (a launcher
        named there replaces the recorded one); the sweep directory stays last."""
        if any(names_launcher(o) for o in self.launcher):
            args = [a for a in args if not names_launcher(a)]
        return [*args[:-1], *self.launcher, args[-1]]

    def run(self, r: Round) -> int | None:
        """Run a round; the exit status to stop with (a signal, a configuration error), or None."""
        seeds = ", ".join(map(str, r.seeds)) or "as recorded"
        self.say(f"round {r.number}: seeds {seeds} (infomax run -m; its output: {self.log_path})")
        with Live(r, self.opts.hours, self.t0) as live:
            run_round(r, self.dir, self.log_fd, self.relay, self.deadline, live.show)
        self.rounds.append(r)
        if r.budget_stopped:  # its jobs' own lines say SIGINT: settle sent it
            self.say(f"  the budget is spent: round {r.number} stopped, its jobs checkpointed.")
        for line in [] if r.budget_stopped else r.errors:
            self.say(f"  {line}")
        if self.relay.name:
            self.say(
                f"interrupted ({self.relay.name}) in round {r.number}: its jobs checkpointed and "
                "what finished is kept; run the same command again to continue."
            )
            return self.relay.code
        if r.rc == 2:
            self.say(f"round {r.number} could not start (above): nothing was run.")
            return 2
        return None

    # --------------------------------------------------------------------------------- the loop
    def loop(self) -> int:
        if self.opts.start and any_jobs(self.dir):
            self.check_same_sweep()
        while not any_finished(self.dir):
            last = self.rounds[-1] if self.rounds else None
            late = self.deadline is not None and time.monotonic() >= self.deadline
            if (last is not None and last.budget_stopped) or (last is None and late):
                self.say(
                    f"the budget ({self.opts.hours:g} h) was spent before any job finished: what "
                    "ran is kept (checkpoints); run the same command again to continue."
                )
                return 0
            if last is not None:
                raise RunError(
                    f"no job of {self.dir} has finished (see {self.log_path}): nothing to look at."
                )
            if (code := self.run(self.unlooked_round())) is not None:
                return code
        before: list[int] | None = None  # the complete seeds before the last round
        while True:
            sweep, found = self.look()
            complete = compare.complete_seeds(sweep)
            states = looks.states(found.claims)
            n = min((s.n_seeds for s in states), default=0)
            last = self.rounds[-1] if self.rounds else None
            if last is not None and before is not None:
                self.gained.append((last.seconds, len(complete) - len(before)))
            plan = found.look.plan
            cap = min(self.opts.max_seeds or plan.max_seeds, plan.max_seeds)
            self.print_look(found, n)
            if self.relay.name:
                return self.relay.code
            reason = stop_reason(states, n, plan.max_seeds, cap)
            spent = self.deadline is not None and time.monotonic() >= self.deadline
            if reason is None and (spent or (last is not None and last.budget_stopped)):
                reason = BUDGET
            failed = last is not None and last.rc == 1 and not last.budget_stopped
            stuck = before is not None and complete == before and reason is None
            if reason is not None or failed or stuck:
                self.print_end(reason, states, n, plan, cap)
                if failed or stuck:
                    what = "failed" if failed else "completed no new seed"
                    self.say(
                        f"round {last.number} {what} (the lines above, {self.log_path}): what "
                        "finished is kept; fix the cause and run the same command again."
                    )
                    return 1
                return 0
            before = complete
            if (code := self.run(self.next_round(sweep, cap))) is not None:
                return code

    def look(self):
        """The sweep's comparison (compare.compare: a look, recorded, when its seeds changed), with
        --max-seeds as the plan when the sweep has no look yet. Its warnings (the jobs a round has
        still to run, seeds left out, a plan kept) go to settle.log, counted in one line here."""
        given = None
        if self.opts.max_seeds is not None and looks.read(self.dir).empty:
            given = {"max_seeds": self.opts.max_seeds}
        with ToLog(lambda: self.log_fd) as notes:
            found = compare.compare(self.dir, None, given)
        if notes.count:
            self.say(
                f"(the comparison's {notes.count} note{'s' if notes.count > 1 else ''}, on the jobs "
                f"still to run or left out: {self.log_path})"
            )
        return found

    # ---------------------------------------------------------------------------------- words
    def print_look(self, found, n: int) -> None:
        """The look: its number, seeds and plan, one line per claim, and the budget."""
        plan, number = found.look.plan, found.look.number
        if number == self.shown:  # the same seeds: the same look, its claims as printed
            self.say(f"look {number} again: no seed completed since, its claims stand (above).")
            if self.opts.hours:
                self.out.print(budget_bar(self.elapsed, self.opts.hours))
            return
        self.shown = number
        history = looks.read(self.dir)
        spent = history.loc[history["look"] == number, "alpha_spent"].max()
        spent = f", {spent:.2%} of 5% spent" if pd.notna(spent) else ""
        self.say(
            f"look {number} at {n} seed{'s' if n != 1 else ''} (plan: at most {plan.max_seeds}, "
            f"{plan.spending}{spent}): status, c minus the strongest other [interval], ±margin; "
            "seeds needed"
        )
        for line in claim_lines(found.claims, found.share_claims):
            self.say(line)
        if self.opts.hours:
            self.out.print(budget_bar(self.elapsed, self.opts.hours))

    def per_seed(self) -> float | None:
        """Seconds per complete seed in this settle's rounds (None before one completed a seed)."""
        seconds, seeds = sum(s for s, _ in self.gained), sum(g for _, g in self.gained)
        return seconds / seeds if seeds > 0 else None

    def print_end(self, reason: str | None, states, n: int, plan, cap: int) -> None:
        hours = f"{self.elapsed / 3600:.2f} h"
        open_ = [s for s in states if not s.decided]
        if reason == SETTLED:
            self.say(f"settled at {n} seeds: every claim is decided ({hours} in this settle).")
            return
        if reason == PLAN_END:
            self.say(
                f"the plan's last look ({plan.max_seeds} seeds, compare.max_seeds): its claims are "
                f"final; no more seeds can decide those open ({hours} in this settle)."
            )
        elif reason == CAP:
            self.say(f"--max-seeds {cap} reached (the plan allows {plan.max_seeds}); {hours}.")
        elif reason == BUDGET:
            self.say(f"the budget ({self.opts.hours:g} h) is spent at {n} seeds ({hours}).")
        self.say("open, and what would settle each:")
        per_seed = self.per_seed()
        more = 0.0
        several = len({s.setting for s in states}) > 1
        for s in open_:
            text, seeds = settle_words(s, plan.max_seeds)
            if seeds is not None and per_seed is not None and reason != PLAN_END:
                extra = max(seeds - n, 0) * per_seed / 3600
                more = max(more, extra)
                text += f", {duration(extra)} more at this settle's {duration(per_seed / 3600)} per seed"
            self.say(f"  {(s.setting + ' ') if several else ''}{s.claim}: {text}")
        if reason in (BUDGET, CAP):
            again = f"infomax settle {self.dir} --round {self.opts.round}"
            if reason == CAP:
                again += f" --max-seeds {plan.max_seeds}"
            if more > 0:
                again += f" --hours {math.ceil(10 * more) / 10:g}"
            elif self.opts.hours:
                again += f" --hours {self.opts.hours:g}"
            self.say(f"to go on: {again}")


class ToLog(logging.Handler):
    """While open: the package's log records (warnings and above) appended to settle.log instead of
    the terminal, counted."""

    def __init__(self, fd: Callable[[], int]):
        super().__init__(logging.WARNING)
        self.fd, self.count = fd, 0
        self.setFormatter(logging.Formatter("look: %(levelname)s %(message)s"))
        self.addFilter(PrintableFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        os.write(self.fd(), (self.format(record) + "\n").encode(errors="replace"))

    def __enter__(self) -> ToLog:
        logger = logging.getLogger("infomax")
        self._propagate, logger.propagate = logger.propagate, False
        logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logger = logging.getLogger("infomax")
        logger.removeHandler(self)
        logger.propagate = self._propagate


def settle_words(s: looks.ClaimState, plan_max: int) -> tuple[str, int | None]:
    """What would settle an open claim, in words, and the seeds it takes (None: not seeds)."""
    if s.why == "units":
        return "more photographs (image units), not seeds", None
    if s.why == "plan":
        return f"more seeds than the plan's {plan_max} (compare.max_seeds)", None
    if s.n_seeds == 0:
        return "a first seed of every case (no seed has every case finished yet)", 2
    if s.why == "one seed" or not math.isfinite(s.seeds_needed):
        return "a second seed first", 2
    high = s.seeds_needed_high
    if not math.isfinite(high):
        span = f"{s.seeds_needed:.0f} (with the few seeds' spread, up to more than the plan's {plan_max})"
    else:
        span = f"{s.seeds_needed:.0f}" + (f"–{high:.0f}" if high != s.seeds_needed else "")
    return f"about {span} seeds", int(s.seeds_needed)


def duration(hours: float) -> str:
    """A time in words: minutes below an hour, else hours."""
    return f"about {hours * 60:.0f} min" if hours < 1 else f"about {hours:.1f} h"


def claim_lines(claims: pd.DataFrame, share_claims) -> list[str]:
    """One line per claim: status, c minus the strongest other [interval] unit, ±margin; seeds."""
    several = several_settings(claims)
    names = [
        f"{r[SETTING]} {r['claim']}" if several else str(r["claim"]) for _, r in claims.iterrows()
    ]
    width = max(map(len, names), default=0)
    status_width = max((len(str(s)) for s in claims["status"]), default=0)
    out = []
    for name, (_, r) in zip(names, claims.iterrows()):
        share = r["claim"] in share_claims
        estimate = interval_text(r, share)
        unit = (" points" if share else " nats") if estimate != "—" else ""
        out.append(
            f"  {name:<{width}}  {str(r['status']):<{status_width}}  {estimate}{unit}  "
            f"{margin_text(r, share)}; seeds {seeds_text(r)}"
        )
    return out


def budget_bar(elapsed: float, hours: float) -> Table:
    """The budget as a bar: hours spent of those given."""
    grid = Table.grid(padding=(0, 1))
    total = 3600 * hours
    grid.add_row(
        "budget",
        ProgressBar(total=total, completed=min(elapsed, total), width=40),
        f"{elapsed / 3600:.2f} of {hours:g} h",
    )
    return grid
