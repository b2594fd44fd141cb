"""`infomax run | compare | report | validate | sensitivity`: the command line.

`infomax run [OVERRIDES]` forwards its arguments to a `@hydra.main` app, so `-m`, `--cfg job`, `--help`
and every Hydra override work as usual. Exit status: 0 done, 2 usage/configuration error, 1 runtime
failure, 130 interrupted (143 on SIGTERM).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
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
from .errors import InfomaxError, Interrupted, first_line

config.register()

USAGE = """usage: infomax COMMAND [ARGS]

commands:
  run [OVERRIDES]      train one encoder case, measure MI, write a run directory
                       (run -m case=a,b,c,d ...: a sweep, then its comparison; run --help: all options)
  compare SWEEP_DIR    (re)build a sweep's comparison files from its job directories
  report DIR           (re)build the visual report of a run or sweep directory
  validate [--quick]   score the MI estimators against distributions with known MI
  sensitivity SWEEP_DIR  re-measure a sweep's trained encoders under other protocols (align, bins, estimator)
"""


class _State:
    started = False  # a job has started: before that, Hydra's SystemExit(1) is a config error
    # the process `infomax run` runs in (a launcher's workers are others)
    main_pid: int | None = None


@hydra.main(version_base="1.3", config_path=str(config.CONF_DIR), config_name="config")
def _app(cfg: DictConfig) -> None:
    """One job. A single run exits with the failure's status. In a sweep a failed job records why in
    failed.json and returns, so the other jobs run (the sweep's exit status says it failed); only an
    interrupt of the process the sweep runs in stops the sweep."""
    from .experiment import run_job

    _State.started = True
    _keep_large_buffers_in_the_heap()  # again here: joblib/submitit workers never run main()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    busy = False
    try:
        run_job(cfg, run_dir)
        return
    # the directory is another run's: no failed.json written there
    except rundir.DirectoryBusy as e:
        code, message, busy = e.exit_code, str(e), True
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
    if not busy:
        rundir.write_failure(run_dir, code, message)
    if not multirun:
        _fail(message, code)
    print(f"infomax: job {hc.job.override_dirname or hc.job.num}: {message}", file=sys.stderr)
    if code >= 128 and os.getpid() == _State.main_pid:
        raise SystemExit(code)  # Ctrl-C in a sweep run by the basic launcher: stop it


def _log_traceback_to_file() -> None:
    """Write the current traceback to the job's log file only (not the console)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.stream.write(traceback.format_exc())
            handler.flush()


def _fail(message: str, code: int) -> None:
    print(f"infomax: {message}", file=sys.stderr)
    raise SystemExit(code)


def _check_output_dir(args: list[str]) -> None:
    """Fail with one line, before Hydra makes any folder, when the output directory cannot be made."""
    target = Path("outputs")
    for a in args:
        key, _, value = a.partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and "${" not in value:
            target = Path(value)
    try:
        rundir.ensure_writable(target)
    except OSError as e:
        raise InfomaxError(
            f"cannot write the output directory {target}: {e.strerror}; choose another with "
            "hydra.run.dir=... (or hydra.sweep.dir=... with -m)."
        ) from None


def _run(args: list[str]) -> int:
    if not any(
        a in ("--help", "-h", "--hydra-help", "--info", "-i") or a.startswith("--cfg") or a == "-c"
        for a in args
    ):
        try:
            _check_output_dir(args)
        except InfomaxError as e:
            print(f"infomax: {e}", file=sys.stderr)
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
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        return 2 if code == 1 and not _State.started else code
    except Exception as e:
        if user_wants_traceback:
            raise
        if _is_config_error(e):
            print(f"infomax: {_config_error_line(e)}", file=sys.stderr)
            return 2
        # raised by a launcher: one of its workers died without reporting (killed, out of memory)
        print(
            f"infomax: a sweep job stopped without reporting back ({type(e).__name__}: "
            f"{first_line(e)}). Finished jobs are "
            "kept: rerun the same command to redo the others; the launcher's logs say why it stopped.",
            file=sys.stderr,
        )
        return 1
    finally:
        if not user_wants_traceback:
            del os.environ["HYDRA_FULL_ERROR"]
    return CompareCallback.exit_code  # a sweep whose jobs did not all finish: not 0


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
            if len(args) != 1 or args[0].startswith("-"):
                print(f"infomax: usage: infomax {cmd} DIR (one directory)", file=sys.stderr)
                return 2
            _setup_console_logging()
            from .analysis import compare

            if cmd == "compare":
                compare.print_found(*compare.compare(Path(args[0])))
            else:
                print(compare.build_report(Path(args[0])))
            return 0
        if cmd == "sensitivity":
            return _sensitivity(args)
        if cmd == "validate":
            from .mi import validate

            return validate.main(args)
    except InfomaxError as e:
        print(f"infomax: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("infomax: interrupted", file=sys.stderr)
        return 130
    print(
        f"infomax: unknown command {cmd!r}: use run, compare, report, validate or sensitivity (infomax --help)",
        file=sys.stderr,
    )
    return 2


def _sensitivity(argv: list[str]) -> int:
    """`infomax sensitivity SWEEP_DIR [--align ...] [--bins ...] [--estimators ...] [--n-images N]
    [--device D] [--grid FILE] [--quiet]`: the sweep's encoders re-measured under the grid's protocols."""
    from . import sensitivity
    from .render import report

    try:
        args = sensitivity.parser().parse_args(argv)
        grid = sensitivity.grid_of(args)
        t0 = time.perf_counter()
        table, per_job = sensitivity.run(Path(args.sweep_dir), grid, show_progress=not args.quiet)
    except InfomaxError as e:
        print(f"infomax sensitivity: {e}", file=sys.stderr)
        return e.exit_code
    if not args.quiet:
        report.print_sensitivity(
            table, f"mean max MI (nats) of each case under each protocol ({args.sweep_dir})"
        )
    for line in sensitivity.summary_lines(table, per_job):
        print(line)
    print(
        f"wrote {Path(args.sweep_dir) / rundir.SENSITIVITY} and {rundir.SENSITIVITY_JOBS} in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return 0


def _setup_console_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, show_time=False)],
    )


if __name__ == "__main__":
    sys.exit(main())
