"""`infomax run [OVERRIDES]`: Hydra's app around one job.

The arguments are forwarded to a `@hydra.main` app (by rewriting `sys.argv`), so `-m`, `--cfg job`,
`--hydra-help` and every Hydra override work as usual; `--help` is ours (help.py). Each call makes one
run state (jobstart.run_state) that its job function and Hydra's callbacks share, and ends with one
exit status (errors.exit_status): 0 done, 2 usage/configuration error, 1 runtime failure, 128 + the
signal's number when interrupted (130 Ctrl-C, 143 SIGTERM, 140 SIGUSR2).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import re
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from . import config, jobstart, rundir
from .errors import (
    ConfigError,
    InfomaxError,
    Interrupted,
    Refused,
    RunError,
    Stop,
    exit_status,
    first_line,
    printable,
)

config.register()


@hydra.main(version_base="1.3", config_path=str(config.CONF_DIR), config_name="config")
def _app(cfg: DictConfig) -> None:
    job(cfg)


def job(cfg: DictConfig) -> None:
    """One job. A single run stops with the failure's status. In a sweep a failed job records why in
    failed.json and returns, so the other jobs run (the sweep's exit status says it failed); only an
    interrupt of the process the sweep runs in stops the sweep. A run refused before it wrote anything
    (a busy directory, one holding another config's run) records nothing there, nor does a single run
    stopped by a configuration error (the folders Hydra made for it are removed when empty)."""
    from .experiment import run_job

    state = jobstart.current()  # None in a launcher's worker
    if state is not None:
        state.started = True
    keep_large_buffers_in_the_heap()  # again here: joblib/submitit workers never run main()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        if multirun and run_dir.is_symlink():  # a sweep's job writes inside the sweep only
            raise Refused(
                f"{run_dir} is a link: a sweep's job is written only inside the sweep; delete it."
            )
        run_job(cfg, run_dir, job_files=jobstart.hydra_files(cfg))
        return
    except BaseException as e:  # noqa: BLE001 - every way a job stops becomes one line and a status
        error = _failure(e, run_dir, hc.sweep.dir if multirun else None)
    code = exit_status(error)
    # stopped before writing into the directory: nothing recorded there; a single run's config error
    # records nothing either, a sweep's counts in its exit status
    if not isinstance(error, Refused) and (multirun or code != 2):
        rundir.write_failure(run_dir, code, str(error))
        if multirun and not (run_dir / rundir.HYDRA_OVERRIDES).is_file():
            # stopped before its first write: which job this was, for the sweep's account
            with contextlib.suppress(InfomaxError):
                rundir.write_job_files(run_dir, jobstart.hydra_files(cfg))
    if not multirun:
        if code == 2 and state is not None:
            jobstart.remove_made_folders(run_dir, state.existed)
        print(f"infomax: {printable(error)}", file=sys.stderr)
        raise Stop(error, shown=True)
    name = printable(hc.job.override_dirname or hc.job.num)
    print(f"infomax: job {name}: {printable(error)}", file=sys.stderr)
    if code >= 128 and state is not None:
        raise Stop(error, shown=True)  # Ctrl-C in a sweep run by the basic launcher: stop it


def _failure(e: BaseException, run_dir: Path, sweep_dir: str | None) -> InfomaxError:
    """What stopped a job, as the error its line and status come from (a bug: one line here, the
    traceback in the job's log)."""
    if isinstance(e, Interrupted):
        again = f"hydra.sweep.dir={sweep_dir}" if sweep_dir else f"hydra.run.dir={run_dir}"
        return Interrupted(f"{e} To resume, run the same command again with {again}", e.signum)
    if isinstance(e, InfomaxError):
        return e
    if isinstance(e, KeyboardInterrupt):
        return Interrupted(
            f"interrupted: rerun the same command (same run directory {run_dir}) to resume."
        )
    if not isinstance(e, Exception):
        raise e  # SystemExit and the like: not the job's to report
    _log_traceback_to_file()
    where = run_dir / rundir.LOG
    return RunError(f"internal error: {type(e).__name__}: {e} (traceback in {where})")


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
        raise ConfigError(
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
# the modes that only print: they make no output directory
PRINTING = ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c")


def run(args: list[str]) -> int:
    """`infomax run ARGS`: the exit status."""
    args = expand_path_overrides(args)
    if "--help" in args or "-h" in args:
        return _help([a for a in args if not a.startswith("-")])
    modes = sorted({MODES[a.partition("=")[0]] for a in args if a.partition("=")[0] in MODES})
    if len(modes) > 1:  # Hydra raises a bare ValueError for this, which read as a failed sweep job
        return _usage(
            f"{' and '.join(modes)} cannot be combined: run them one at a time "
            "(infomax run --cfg job OVERRIDES shows the config one job of a sweep would use)."
        )
    # a run that trains: its output directory's problems (a file where a folder goes, no write access)
    # are one line before Hydra creates anything there; the modes that only print are left alone
    if not any(a.partition("=")[0] in PRINTING for a in args):
        try:
            _check_output_dir(args)
        except ConfigError as e:
            return _usage(str(e))
    with (
        jobstart.run_state() as state,
        _argv(["infomax run", *args]),
        _mode_from_the_arguments(args),
    ):
        try:
            _app()
        except Stop as stop:
            if not stop.shown:
                print(f"infomax: {printable(stop.error)}", file=sys.stderr)
            return exit_status(stop)
        except SystemExit as e:
            # Hydra exits 1 on its own usage errors, before any job started: a usage error (2)
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            return 2 if code == 1 and not state.started else code
        except Exception as e:
            if state.user_traceback:
                raise
            return _hydra_failure(e, state, multirun="--multirun" in modes)
    return state.sweep_status  # a sweep whose jobs did not all finish: not 0


# what can set hydra.mode besides conf/, which never does: the override itself (+, ++ or ~ before it
# too), or a config of the user's
_MODE_SETTERS = ("hydra.mode", "hydra.searchpath", "--config-dir", "-cd", "--config-name", "-cn")
_MODE_SETTERS += ("--config-path", "-cp")


@contextlib.contextmanager
def _mode_from_the_arguments(args: list[str]):
    """Before a run or sweep Hydra composes the whole config once more only to read hydra.mode
    (Hydra.get_mode: 0.1-0.3 s). conf/ never sets it, so where no argument can set it the answer is
    None (the mode the command line asks for), as that composition would find; Hydra still composes
    (and checks) the config it runs with."""
    from hydra._internal.hydra import Hydra

    if any(a.partition("=")[0].lstrip("+~").startswith(_MODE_SETTERS) for a in args):
        yield
        return
    asked = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = asked


@contextlib.contextmanager
def _argv(argv: list[str]):
    """sys.argv as `@hydra.main` reads it, for the call only."""
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def _usage(message: str) -> int:
    print(f"infomax: {printable(message)}", file=sys.stderr)
    return 2


def _hydra_failure(e: Exception, state: jobstart.RunState, multirun: bool) -> int:
    """One line (and the status) for what Hydra raised around the jobs: a bad override or config (2),
    an output directory it could not make (2), a single run's bug (1), a launcher's worker that died
    without reporting (1)."""
    if isinstance(e, (HydraException, OmegaConfBaseException)):
        return _usage(_config_error_line(e))
    if isinstance(e, OSError) and not state.started:
        # Hydra could not make the run's directory (or its log) before the job started
        where = printable(e.filename or "the output directory")
        return _usage(
            f"cannot write {where}: {(e.strerror or str(e)).lower()}; choose another "
            "directory with hydra.run.dir=... (hydra.sweep.dir=... with -m)."
        )
    if not multirun:  # a single run: what went wrong, as itself
        why = printable(first_line(e))
        print(f"infomax: internal error: {type(e).__name__}: {why}", file=sys.stderr)
        return 1
    print(
        f"infomax: a sweep job stopped without reporting back ({type(e).__name__}: "
        f"{printable(first_line(e))}). Finished jobs are "
        "kept: rerun the same command to redo the others; the launcher's logs say why it stopped.",
        file=sys.stderr,
    )
    return 1


def _help(overrides: list[str]) -> int:
    """`infomax run --help [OVERRIDES]`: the groups and keys with their types and values."""
    from .help import print_help

    try:
        print_help(overrides)
    except (HydraException, OmegaConfBaseException) as e:
        return _usage(_config_error_line(e))
    return 0


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


def keep_large_buffers_in_the_heap() -> None:
    """glibc serves each allocation over 32 MB with a fresh mmap, so every training step page-faults its
    activations in anew (measured here: a CPU step 1.6-2.5x slower). Raising the mmap threshold keeps them
    in the heap for reuse. No-op where glibc's mallopt is absent."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, ctypes.c_int(2**31 - 1))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass
