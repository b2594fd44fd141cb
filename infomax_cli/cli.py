"""`infomax run | compare | report | validate | sensitivity | settle`: the command line.

One argument parser (`parser`) with a subcommand for each command but `run`, whose arguments are
Hydra's (app.py forwards them to a `@hydra.main` app). Every command ends in one exit status
(errors.exit_status): 0 done, 2 usage/configuration error, 1 runtime failure, 128 + the signal's
number when interrupted (130 Ctrl-C, 143 SIGTERM). Nothing here imports torch: `infomax --help`,
`compare` and `report` never load it.

A command besides `run` is one entry of COMMANDS (its name, how its error line starts, its
arguments) and one function of commands.py of the same name (its body), and a line of USAGE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .choices import Align, DeviceKind, Estimator
from .errors import ConfigError, InfomaxError, exit_status, printable

USAGE = """usage: infomax COMMAND [ARGS]

commands:
  run [OVERRIDES]      train one encoder case, measure MI, write a run directory
                       (run -m case=a,b,c,d ...: a sweep, then its comparison; run --help: all options)
  compare SWEEP_DIR [--margin CLAIM=VALUE ...]
                       (re)build a sweep's comparison files from its job directories (a claim's
                       margin: the smallest difference worth reporting; default: the sweep's own)
  report DIR           (re)build the visual report of a run or sweep directory
  validate [--quick]   score the MI estimators against distributions with known MI
  sensitivity SWEEP_DIR  re-measure a sweep's trained encoders under other protocols (align, bins, estimator)
  settle SWEEP_DIR [--round K] [--max-seeds N] [--hours H]
                       continue a sweep in rounds of seeds until its claims are decided or the budget
                       is spent (settle OVERRIDES... hydra.sweep.dir=DIR starts one; settle --help)
"""


class _Parser(argparse.ArgumentParser):
    """A parser whose errors are a ConfigError (one line, exit 2), never argparse's exit."""

    def error(self, message: str):
        name = self.prog.split()[-1]
        if name in ("compare", "report"):
            usage = " ".join(self.format_usage().split()[1:])
            rest = message.removeprefix("unrecognized arguments: ")
            if rest != message:
                first = rest.split()[0]
                message = f"{first} is not an option" if first.startswith("-") else "one directory"
            elif message.startswith("the following arguments are required"):
                message = "one directory"
            raise ConfigError(f"usage: {usage} ({message})")
        if name == "settle":
            raise ConfigError(f"{message}; {SETTLE_USAGE}")
        raise ConfigError(message)


# ------------------------------------------------------------------------ each command's arguments
def _compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="CLAIM=VALUE",
        help="a claim's margin (the smallest difference worth reporting), over the sweep's own",
    )


def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR")


def _validate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", default="outputs/validate", help="output directory (default: outputs/validate)"
    )
    p.add_argument("--seeds", type=int, default=5, help="samples per task (default: 5)")
    p.add_argument("--quick", action="store_true", help="a small run: 2 seeds, n = 1024 only")


def _sensitivity(p: argparse.ArgumentParser) -> None:
    """The grid's flags, their defaults config.SensitivityConfig's (None: not given)."""
    from .config.schema import SensitivityConfig

    defaults = SensitivityConfig()

    def default(values) -> str:
        return " ".join(map(str, values))

    p.add_argument(
        "sweep_dir",
        metavar="SWEEP_DIR",
        help="a finished sweep (the directory of an `infomax run -m` multirun)",
    )
    p.add_argument(
        "--align",
        nargs="+",
        choices=[a.value for a in Align],
        help=f"alignments (default: {default(defaults.align)})",
    )
    p.add_argument(
        "--bins",
        nargs="+",
        type=int,
        help=f"histogram bins per axis (default: {default(defaults.bins)})",
    )
    p.add_argument(
        "--estimators",
        nargs="+",
        choices=[e.value for e in Estimator],
        help=f"MI estimators (default: {default(defaults.estimators)})",
    )
    p.add_argument(
        "--n-images",
        type=int,
        help="re-measure only each job's first N images (faster; then the own-protocol row no "
        "longer equals the jobs' summaries; default: all the job measured)",
    )
    p.add_argument(
        "--device",
        choices=[d.value for d in DeviceKind],
        help=f"where to measure (default: {defaults.device})",
    )
    p.add_argument(
        "--grid",
        type=Path,
        help="a YAML file of the grid's keys (align, bins, estimators, n_images, device) over the "
        "defaults; the flags given replace its keys",
    )
    p.add_argument(
        "--encoder",
        nargs="+",
        default=[],
        metavar="TARGET",
        help="a module of your own (case.encoder._target_, e.g. mynet.Net) that jobs were trained "
        "with: infomax imports and builds only what you name here, never what a job's config names "
        "(its module on the path: PYTHONPATH=...); the built-in cases need none",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table")


def _settle(p: argparse.ArgumentParser) -> None:
    """settle's two forms (settle/__init__.py): a sweep directory and the launcher's settings, or the
    overrides that start a sweep with hydra.sweep.dir=DIR; settle.options checks what argparse cannot."""
    p.add_argument(
        "targets",
        nargs="*",
        metavar="SWEEP_DIR | OVERRIDE",
        help="the sweep to continue (with hydra/launcher=NAME, hydra.launcher.KEY=VALUE), or the "
        "overrides that start one (with hydra.sweep.dir=DIR)",
    )
    p.add_argument("--round", type=int, default=SETTLE_ROUND, help="seeds per round (default 5)")
    p.add_argument("--max-seeds", type=int, help="the most seeds (default: the sweep's plan)")
    p.add_argument("--hours", type=float, help="the wall-time budget (default: none)")


SETTLE_ROUND = 5  # seeds per round by default: make study's five
SETTLE_USAGE = (
    "usage: infomax settle SWEEP_DIR [--round K] [--max-seeds N] [--hours H] "
    "[hydra/launcher=NAME hydra.launcher.KEY=VALUE ...], or infomax settle OVERRIDES... "
    "hydra.sweep.dir=DIR [--round K] [--max-seeds N] [--hours H]"
)


class Command(NamedTuple):
    prefix: str  # how its one line of error starts (as it always has)
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]


# Every command but `run`, its body commands.<name>.
COMMANDS = {
    "compare": Command("infomax", "rebuild a sweep's comparison files", _compare),
    "report": Command("infomax", "rebuild a run's or sweep's report.html", _report),
    "validate": Command(
        "infomax validate",
        "score every MI estimator against distributions whose MI is known",
        _validate,
    ),
    "sensitivity": Command(
        "infomax sensitivity",
        "`infomax sensitivity SWEEP_DIR`: does the ranking of the cases survive another "
        "measurement protocol?",
        _sensitivity,
    ),
    "settle": Command(
        "infomax settle",
        "continue a sweep in rounds of seeds, through its own launcher, until every claim is "
        "decided (holds, fails, equivalent) or the budget is spent; rerun to continue",
        _settle,
    ),
}


def parser() -> argparse.ArgumentParser:
    """The arguments of every command but `run` (whose are Hydra's)."""
    top = _Parser(prog="infomax", usage=USAGE, add_help=False, allow_abbrev=False)
    sub = top.add_subparsers(dest="command", parser_class=_Parser)
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name, prog=f"infomax {name}", description=command.description, allow_abbrev=False
        )
        command.arguments(p)
    top.commands = sub.choices  # name -> its parser
    return top


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments of a command but `run` (argv[0] its name); ConfigError (one line) on a bad one."""
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:  # said by the command's own parser, as its usage
        top.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    cmd = argv[0]
    try:
        if cmd == "run":
            from .app import keep_large_buffers_in_the_heap, run

            keep_large_buffers_in_the_heap()
            return run(argv[1:])
        if cmd not in COMMANDS:
            names = ", ".join(["run", *COMMANDS][:-1]) + f" or {[*COMMANDS][-1]}"
            raise ConfigError(f"unknown command {cmd!r}: use {names} (infomax --help)")
        return _command(cmd, argv)
    except KeyboardInterrupt as e:
        print("infomax: interrupted", file=sys.stderr)
        return exit_status(e)
    except InfomaxError as e:
        print(f"infomax: {printable(e)}", file=sys.stderr)
        return exit_status(e)


def _command(cmd: str, argv: list[str]) -> int:
    """A command but `run`: its body (commands.py), its errors one line starting as its prefix says."""
    from . import commands

    try:
        return getattr(commands, cmd)(parse(argv))
    except InfomaxError as e:
        print(f"{COMMANDS[cmd].prefix}: {printable(e)}", file=sys.stderr)
        return exit_status(e)


if __name__ == "__main__":
    sys.exit(main())
