"""`infomax run | compare | report | validate | sensitivity`: the command line.

One argument parser (`parser`) with a subcommand for each command but `run`, whose arguments are
Hydra's (app.py forwards them to a `@hydra.main` app). Every command ends in one exit status
(errors.exit_status): 0 done, 2 usage/configuration error, 1 runtime failure, 130 interrupted (143 on
SIGTERM). Nothing here imports torch: `infomax --help`, `compare` and `report` never load it.
"""

from __future__ import annotations

import argparse
import sys

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
"""
COMMANDS = ("run", "compare", "report", "validate", "sensitivity")
# how each command's one line of error starts (as it always has)
PREFIX = {
    "compare": "infomax",
    "report": "infomax",
    "sensitivity": "infomax sensitivity",
    "validate": "infomax validate",
}


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
        raise ConfigError(message)


def parser() -> argparse.ArgumentParser:
    """The arguments of `compare`, `report`, `sensitivity` and `validate` (`run`'s are Hydra's)."""
    from .sensitivity import add_arguments

    top = _Parser(prog="infomax", usage=USAGE, add_help=False, allow_abbrev=False)
    sub = top.add_subparsers(dest="command", parser_class=_Parser)
    compare = sub.add_parser("compare", prog="infomax compare", allow_abbrev=False)
    compare.add_argument("sweep_dir", metavar="SWEEP_DIR")
    compare.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="CLAIM=VALUE",
        help="a claim's margin (the smallest difference worth reporting), over the sweep's own",
    )
    report = sub.add_parser("report", prog="infomax report", allow_abbrev=False)
    report.add_argument("dir", metavar="DIR")
    add_arguments(
        sub.add_parser(
            "sensitivity",
            prog="infomax sensitivity",
            allow_abbrev=False,
            description="`infomax sensitivity SWEEP_DIR`: does the ranking of the cases survive "
            "another measurement protocol?",
        )
    )
    validate = sub.add_parser(
        "validate",
        prog="infomax validate",
        allow_abbrev=False,
        description="score every MI estimator against distributions whose MI is known",
    )
    validate.add_argument(
        "--out", default="outputs/validate", help="output directory (default: outputs/validate)"
    )
    validate.add_argument("--seeds", type=int, default=5, help="samples per task (default: 5)")
    validate.add_argument(
        "--quick", action="store_true", help="a small run: 2 seeds, n = 1024 only"
    )
    top.commands = sub.choices  # name -> its parser
    return top


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments of a command but `run` (argv[0] its name); ConfigError (one line) on a bad one."""
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:  # said by the command's own parser, as its usage
        top.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


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
            raise ConfigError(
                f"unknown command {cmd!r}: use run, compare, report, validate or sensitivity "
                "(infomax --help)"
            )
        return _command(cmd, argv)
    except KeyboardInterrupt as e:
        print("infomax: interrupted", file=sys.stderr)
        return exit_status(e)
    except InfomaxError as e:
        print(f"infomax: {printable(e)}", file=sys.stderr)
        return exit_status(e)


def _command(cmd: str, argv: list[str]) -> int:
    """compare, report, sensitivity or validate, their errors one line starting as PREFIX says."""
    from . import commands

    try:
        return getattr(commands, cmd)(parse(argv))
    except InfomaxError as e:
        print(f"{PREFIX[cmd]}: {printable(e)}", file=sys.stderr)
        return exit_status(e)


if __name__ == "__main__":
    sys.exit(main())
