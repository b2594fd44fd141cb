"""The commands besides `infomax run` (app.py), each a function of the arguments cli.py's parser read,
returning the exit status: `compare`, `report`, `sensitivity`, `settle`, `validate`. Their work is done below
(analysis/, sensitivity.py, settle/, mi/validate.py); here it is started and its result printed. Errors
propagate as InfomaxError: cli.py prints the one line and returns errors.exit_status."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from . import rundir
from .errors import ConfigError, RunError, printable


def compare(args: argparse.Namespace) -> int:
    """`infomax compare SWEEP_DIR [--margin CLAIM=VALUE ...]`: the sweep's comparison files rebuilt."""
    margins = dict(_margin(text) for text in args.margin)
    _console_logging()
    from .analysis import compare

    compare.print_found(*compare.compare(Path(args.sweep_dir), margins))
    return 0


def _margin(text: str) -> tuple[str, float]:
    """CLAIM=VALUE of --margin, checked: a claim of claims.csv and a number > 0."""
    import dataclasses

    from .config import MarginConfig

    claims = [f.name for f in dataclasses.fields(MarginConfig)]
    name, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if name not in claims or not number > 0:
        raise ConfigError(
            f"--margin {text!r}: give CLAIM=VALUE with CLAIM one of {', '.join(claims)} and VALUE a "
            "number > 0 in the claim's unit (nats; winner_share: a share, 0.05 = 5 points)."
        )
    return name, number


def report(args: argparse.Namespace) -> int:
    """`infomax report DIR`: a run's or sweep's report.html rebuilt."""
    _console_logging()
    from .analysis import compare

    print(printable(compare.build_report(Path(args.dir))))
    return 0


def sensitivity(args: argparse.Namespace) -> int:
    """`infomax sensitivity SWEEP_DIR [flags]`: the sweep's encoders re-measured under the grid's
    protocols; sensitivity.csv and sensitivity_jobs.csv."""
    from . import sensitivity
    from .app import keep_large_buffers_in_the_heap
    from .render import report

    keep_large_buffers_in_the_heap()
    grid = sensitivity.grid_of(args)
    t0 = time.perf_counter()
    sweep_dir = Path(args.sweep_dir)
    table, per_job = sensitivity.run(sweep_dir, grid, not args.quiet, tuple(args.encoder))
    if not args.quiet:
        where = printable(args.sweep_dir)
        report.print_sensitivity(
            table, f"mean max MI (nats) of each case under each protocol ({where})"
        )
    for line in sensitivity.summary_lines(table, per_job):
        print(printable(line))
    print(
        f"wrote {printable(sweep_dir / rundir.SENSITIVITY)} and {rundir.SENSITIVITY_JOBS} in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return 0


def settle(args: argparse.Namespace) -> int:
    """`infomax settle SWEEP_DIR | OVERRIDES... [--round K] [--max-seeds N] [--hours H]`: the sweep
    continued in rounds of seeds until its claims are decided or the budget is spent (settle/)."""
    from . import settle

    opts = settle.options(args)
    _console_logging()  # the comparison's warnings on stderr, as compare shows them
    return settle.run(opts)


def validate(args: argparse.Namespace) -> int:
    """`infomax validate [--out DIR] [--seeds N] [--quick]`: every estimator scored against known MI;
    validation.csv and validation.png."""
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    from .mi.validate import ESTIMATORS, STUDY_N, run_validation
    from .render.validation import print_validation, validation_figure

    sizes, seeds = ((1024,), min(args.seeds, 2)) if args.quick else ((STUDY_N, 1024), args.seeds)
    df = run_validation(sizes, seeds)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot write to {out}: {e}") from None
    rundir.atomic_write(
        out / rundir.VALIDATION_CSV, lambda tmp: df.to_csv(tmp, index=False, float_format="%.6g")
    )
    fig = validation_figure(df, [(name, options) for name, options, _ in ESTIMATORS])
    rundir.atomic_write(
        out / rundir.VALIDATION_PNG, lambda tmp: fig.savefig(tmp, dpi=120, format="png")
    )
    print_validation(df)
    gauss = df[
        df.task.str.startswith("gaussian") & (df.n == max(sizes)) & (df.options != "bins=20")
    ]
    print(
        f"wrote {out / rundir.VALIDATION_CSV} and {out / rundir.VALIDATION_PNG}; "
        f"largest |bias| on the Gaussian tasks at n={max(sizes)} (plain histogram aside): "
        f"{gauss.bias.abs().max():.4f} nats"
    )
    return 0


def _console_logging() -> None:
    from rich.logging import RichHandler

    from .errors import PrintableFilter

    handler = RichHandler(show_path=False, show_time=False)
    # names from files reach the terminal without control codes
    handler.addFilter(PrintableFilter())
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler])
