"""`infomax run | compare | report | validate | sensitivity`: the command line.

`infomax run [OVERRIDES]` forwards its arguments to a `@hydra.main` app, so `-m`, `--cfg job`, `--help`
and every Hydra override work as usual. Exit status: 0 done, 2 usage/configuration error, 1 runtime
failure, 130 interrupted (143 on SIGTERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import logging
import os
import re
import sys
import time
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException
from rich.logging import RichHandler

from . import config, rundir
from .errors import (
    ConfigError,
    InfomaxError,
    Interrupted,
    PrintableFilter,
    Refused,
    first_line,
    printable,
)

config.register()

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


class _State:
    started = False  # a job has started: before that, Hydra's SystemExit(1) is a config error
    # the process `infomax run` runs in (a launcher's workers are others)
    main_pid: int | None = None


@hydra.main(version_base="1.3", config_path=str(config.CONF_DIR), config_name="config")
def _app(cfg: DictConfig) -> None:
    """One job. A single run exits with the failure's status. In a sweep a failed job records why in
    failed.json and returns, so the other jobs run (the sweep's exit status says it failed); only an
    interrupt of the process the sweep runs in stops the sweep. A run refused before it wrote anything
    (a busy directory, one holding another config's run) records nothing there, nor does a single run
    stopped by a configuration error (its directory is removed when it left it empty)."""
    from .experiment import run_job
    from .jobstart import hydra_files, remove_made_folders

    _State.started = True
    _keep_large_buffers_in_the_heap()  # again here: joblib/submitit workers never run main()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    record = True
    try:
        if (
            multirun and run_dir.is_symlink()
        ):  # a sweep's job writes inside the sweep, not elsewhere
            raise Refused(
                f"{run_dir} is a link: a sweep's job is written only inside the sweep; delete it."
            )
        run_job(cfg, run_dir, job_files=hydra_files(cfg))
        return
    except Refused as e:  # stopped before writing into the directory: nothing recorded there
        code, message, record = e.exit_code, str(e), False
    except Interrupted as e:
        again = f"hydra.sweep.dir={hc.sweep.dir}" if multirun else f"hydra.run.dir={run_dir}"
        code, message = e.exit_code, f"{e} To resume, run the same command again with {again}"
    except InfomaxError as e:
        code, message = e.exit_code, str(e)
    except KeyboardInterrupt:
        code = 130
        message = f"interrupted: rerun the same command (same run directory {run_dir}) to resume."
    except Exception as e:  # a bug, not the user's mistake: one line here, the traceback in the log
        _log_traceback_to_file()
        log_file = run_dir / rundir.LOG
        code, message = 1, f"internal error: {type(e).__name__}: {e} (traceback in {log_file})"
    if record and (multirun or code != 2):  # a sweep's config errors count in its exit status
        rundir.write_failure(run_dir, code, message)
        if multirun and not (run_dir / rundir.HYDRA_OVERRIDES).is_file():
            # stopped before its first write: which job this was, for the sweep's account
            with contextlib.suppress(InfomaxError):
                rundir.write_job_files(run_dir, hydra_files(cfg))
    if not multirun:
        if record and code == 2:
            remove_made_folders(run_dir)  # the folders Hydra made for a run that could not start
        _fail(message, code)
    job = printable(hc.job.override_dirname or hc.job.num)
    print(f"infomax: job {job}: {printable(message)}", file=sys.stderr)
    if code >= 128 and os.getpid() == _State.main_pid:
        raise SystemExit(code)  # Ctrl-C in a sweep run by the basic launcher: stop it


def _log_traceback_to_file() -> None:
    """Write the current traceback to the job's log file only (not the console), opening the file when
    no line has been logged yet (its handler opens it at the first line); best effort."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            try:
                if handler.stream is None:
                    handler.stream = handler._open()
                handler.stream.write(traceback.format_exc())
                handler.flush()
            except OSError:
                pass


def _fail(message: str, code: int) -> None:
    print(f"infomax: {printable(message)}", file=sys.stderr)
    raise SystemExit(code)


def _check_output_dir(args: list[str]) -> None:
    """Fail with one line, before Hydra makes any folder, when the output directory cannot be made
    (checked without making or writing anything)."""
    target = Path("outputs")
    for a in args:
        key, _, value = a.partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and "${" not in value:
            target = Path(value)
    try:
        rundir.check_can_create(target)
    except OSError as e:
        raise InfomaxError(
            f"cannot write the output directory {target}: {e.strerror}; choose another with "
            "hydra.run.dir=... (or hydra.sweep.dir=... with -m)."
        ) from None


# One element of an override's value: a quoted string or a run of characters up to a comma (a sweep).
_ELEMENT = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,]+")
# Characters Hydra's grammar takes in an unquoted value (`~` and non-ASCII letters are not among them)
_UNQUOTED = re.compile(r"[\w/\-+.%@:$*?|\\]+", re.ASCII)


def expand_path_overrides(args: list[str]) -> list[str]:
    """The overrides with `~` and environment variables expanded in the values of path keys
    (`config.PATH_KEYS`), before Hydra reads them: its grammar rejects `~`, and it makes the run
    directory itself. `dataset.root=~/photos` and `hydra.sweep.dir='$SCRATCH/sweep'` then work as
    a shell user expects; a sweep's comma list is expanded element by element."""
    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or key.lstrip("+") not in config.PATH_KEYS or not {"~", "$"} & set(value):
            out.append(arg)
        elif "(" in value or "[" in value:  # a sweep function or a list: Hydra's own syntax
            out.append(arg)
        else:
            elements = _ELEMENT.findall(value)
            expanded = [_expand_element(e) for e in elements]
            out.append(arg if expanded == elements else f"{key}={','.join(expanded)}")
    return out


def _expand_element(element: str) -> str:
    quoted = len(element) >= 2 and element[0] == element[-1] and element[0] in "'\""
    text = element[1:-1] if quoted else element.strip()
    path = config.expand_path(text)
    if path == text:
        return element
    if _UNQUOTED.fullmatch(path):
        return path
    return "'" + path.replace("'", "\\'") + "'"


# Hydra's modes of `infomax run`: at most one per command
MODES = {
    "-m": "--multirun",
    "--multirun": "--multirun",
    "-c": "--cfg",
    "--cfg": "--cfg",
    "-i": "--info",
    "--info": "--info",
    "-r": "--run",
    "--run": "--run",
}


def _run(args: list[str]) -> int:
    args = expand_path_overrides(args)
    if "--help" in args or "-h" in args:
        return _help([a for a in args if not a.startswith("-")])
    modes = sorted({MODES[a.partition("=")[0]] for a in args if a.partition("=")[0] in MODES})
    if len(modes) > 1:  # Hydra raises a bare ValueError for this, which read as a failed sweep job
        print(
            f"infomax: {' and '.join(modes)} cannot be combined: run them one at a time "
            "(infomax run --cfg job OVERRIDES shows the config one job of a sweep would use).",
            file=sys.stderr,
        )
        return 2
    # a run that trains: its output directory's problems (a file where a folder goes, no write access)
    # are one line before Hydra creates anything there; the modes that only print are left alone
    if not any(
        a in ("--help", "-h", "--hydra-help", "--info", "-i") or a.startswith("--cfg") or a == "-c"
        for a in args
    ):
        try:
            _check_output_dir(args)
        except InfomaxError as e:
            print(f"infomax: {printable(e)}", file=sys.stderr)
            return 2
    from .analysis.compare import CompareCallback

    sys.argv = ["infomax run", *args]
    _State.main_pid = os.getpid()
    CompareCallback.exit_code = 0
    user_wants_traceback = bool(os.environ.get("HYDRA_FULL_ERROR"))
    # Hydra re-raises instead of printing: the line below is ours
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _app()
    except SystemExit as e:
        # Hydra exits 1 on its own usage errors, before any job started: that is a usage error (2)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        return 2 if code == 1 and not _State.started else code
    except Exception as e:
        if user_wants_traceback:
            raise
        if _is_config_error(e):
            print(f"infomax: {printable(_config_error_line(e))}", file=sys.stderr)
            return 2
        if isinstance(e, OSError) and _State.main_pid == os.getpid() and not _State.started:
            # Hydra could not make the run's directory (or its log) before the job started
            where = printable(e.filename or "the output directory")
            print(
                f"infomax: cannot write {where}: {(e.strerror or str(e)).lower()}; choose another "
                "directory with hydra.run.dir=... (hydra.sweep.dir=... with -m).",
                file=sys.stderr,
            )
            return 2
        if "--multirun" not in modes:  # a single run: what went wrong, as itself
            why = printable(first_line(e))
            print(f"infomax: internal error: {type(e).__name__}: {why}", file=sys.stderr)
            return 1
        # raised by a launcher: one of its workers died without reporting (killed, out of memory)
        print(
            f"infomax: a sweep job stopped without reporting back ({type(e).__name__}: "
            f"{printable(first_line(e))}). Finished jobs are "
            "kept: rerun the same command to redo the others; the launcher's logs say why it stopped.",
            file=sys.stderr,
        )
        return 1
    finally:
        if not user_wants_traceback:
            del os.environ["HYDRA_FULL_ERROR"]
    return CompareCallback.exit_code  # a sweep whose jobs did not all finish: not 0


def _help(overrides: list[str]) -> int:
    """`infomax run --help [OVERRIDES]`: the groups and keys with their types and values."""
    from .help import print_help

    try:
        print_help(overrides)
    except (HydraException, OmegaConfBaseException) as e:
        print(f"infomax: {printable(_config_error_line(e))}", file=sys.stderr)
        return 2
    return 0


def _is_config_error(e: BaseException) -> bool:
    return isinstance(e, (HydraException, OmegaConfBaseException))


def _config_error_line(e: BaseException) -> str:
    """Hydra's and OmegaConf's messages about a bad override or config, on one line."""
    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        options = [o for o in e.options or [] if not o.startswith("schema_")]
        group = e.missing_cfg_file.rpartition("/")[0]
        choose = (
            f": choose one of {', '.join(options)} ({group}=...)"
            if options and group
            else ": check the name"
        )
        return f"Could not find '{e.missing_cfg_file}'{choose}."
    # the cause says it best
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    skip = ("full_key:", "reference_type=", "object_type=")
    lines = list(
        dict.fromkeys(
            line.strip()
            for line in str(cause).splitlines()
            if line.strip() and not line.strip().startswith(skip)
        )
    )
    key = getattr(cause, "full_key", None)
    hint = " (infomax run --help lists every key with its type and values)"
    text = " ".join(line if line.endswith((".", ":", ";")) else line + "." for line in lines)
    return (f"{key}: " if key else "") + text + hint


def _keep_large_buffers_in_the_heap() -> None:
    """glibc serves each allocation over 32 MB with a fresh mmap, so every training step page-faults its
    activations in anew (measured here: a CPU step 1.6-2.5x slower). Raising the mmap threshold keeps them
    in the heap for reuse. No-op where glibc's mallopt is absent."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, ctypes.c_int(2**31 - 1))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _keep_large_buffers_in_the_heap()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    try:
        if cmd == "run":
            return _run(args)
        if cmd in ("compare", "report"):
            folder, margins = _compare_args(cmd, args)
            _setup_console_logging()
            from .analysis import compare

            if cmd == "compare":
                compare.print_found(*compare.compare(folder, margins))
            else:
                print(printable(compare.build_report(folder)))
            return 0
        if cmd == "sensitivity":
            return _sensitivity(args)
        if cmd in ("validate", "settle"):  # mi/validate.py; settle/: rounds until the claims decide
            module = {"validate": ".mi.validate", "settle": ".settle"}[cmd]
            return importlib.import_module(module, __package__).main(args)
    except InfomaxError as e:
        print(f"infomax: {printable(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("infomax: interrupted", file=sys.stderr)
        return 130
    print(
        f"infomax: unknown command {cmd!r}: use run, compare, report, validate, sensitivity or settle (infomax --help)",
        file=sys.stderr,
    )
    return 2


def _compare_args(cmd: str, args: list[str]) -> tuple[Path, dict[str, float]]:
    """`compare DIR [--margin CLAIM=VALUE ...]` (report: DIR alone): the folder and the margins given;
    a ConfigError (exit 2, one line) on anything else."""
    usage = (
        "infomax: usage: infomax compare SWEEP_DIR [--margin CLAIM=VALUE ...]"
        if cmd == "compare"
        else f"infomax: usage: infomax {cmd} DIR (one directory)"
    )
    folders, margins, rest = [], {}, list(args)
    while rest:
        a = rest.pop(0)
        if cmd == "compare" and (a == "--margin" or a.startswith("--margin=")):
            value = (
                a.partition("=")[2] if a.startswith("--margin=") else (rest.pop(0) if rest else "")
            )
            margins.update(_margin(value))
        elif a.startswith("-"):
            raise ConfigError(f"{usage.removeprefix('infomax: ')} ({a} is not an option)")
        else:
            folders.append(a)
    if len(folders) != 1:
        raise ConfigError(usage.removeprefix("infomax: ") + " (one directory)")
    return Path(folders[0]), margins


def _margin(text: str) -> dict[str, float]:
    """CLAIM=VALUE of --margin, checked: a claim of claims.csv and a number > 0."""
    import dataclasses

    claims = [f.name for f in dataclasses.fields(config.MarginConfig)]
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
    return {name: number}


def _sensitivity(argv: list[str]) -> int:
    """`infomax sensitivity SWEEP_DIR [--align ...] [--bins ...] [--estimators ...] [--n-images N]
    [--device D] [--grid FILE] [--quiet]`: the sweep's encoders re-measured under the grid's protocols."""
    from . import sensitivity
    from .render import report

    try:
        args = sensitivity.parser().parse_args(argv)
        grid = sensitivity.grid_of(args)
        t0 = time.perf_counter()
        sweep_dir, quiet = Path(args.sweep_dir), args.quiet
        table, per_job = sensitivity.run(sweep_dir, grid, not quiet, tuple(args.encoder))
    except InfomaxError as e:
        print(f"infomax sensitivity: {printable(e)}", file=sys.stderr)
        return e.exit_code
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


def _setup_console_logging() -> None:
    handler = RichHandler(show_path=False, show_time=False)
    handler.addFilter(
        PrintableFilter()
    )  # names from files reach the terminal without control codes
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler])


if __name__ == "__main__":
    sys.exit(main())
