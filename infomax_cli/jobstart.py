"""How a job starts, so that a run that cannot or may not run writes nothing:

1. the config's range checks (config.check), before Hydra makes any directory: for a single run in
   `on_run_start`, for a sweep every job's config in `on_multirun_start` (a config error stops the whole
   sweep before its directory exists); from the geometries these give, a sweep whose cases cover
   different pixels gets its common ones (region.py: pixels.json, before any job runs);
2. the directory's lock (dirlock.lock): a busy directory is left exactly as it was;
3. the config the directory remembers (.hydra/config.yaml) against this run's, when it holds a finished
   or resumable run: a difference in anything that changes results stops the run (resume=force
   overrides);
4. a finished run is skipped when its files are intact (`finished`), done again when they are damaged,
   left alone when of a format this infomax does not read;
5. only then does the job write: Hydra's `.hydra/` files (Hydra's own writing is switched off by
   `hydra.output_subdir: null`), then its work.

Also here: the state of one `infomax run` call (RunState, made per call by `run_state` and shared by
app.py's job function and Hydra's callbacks), and a sweep's end (CompareCallback: the comparison, and
the call's exit status from its jobs' failed.json).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from . import config, region, rundir, store
from .choices import ResumeMode
from .errors import ConfigError, Damaged, InfomaxError, Refused, Stop, printable, sweep_status
from .limits import check_path_part
from .model.geometry import Geometry

log = logging.getLogger("infomax")


class ConfigDiffers(Refused):
    """The directory holds a run made with a config that differs in what changes results."""


# ------------------------------------------------------------------------------- one call's state
@dataclass
class RunState:
    """What one `infomax run` call learns while Hydra runs it: made per call (`run_state`), read and
    written by its job function and Hydra's callbacks in the process the call runs in (a launcher's
    workers have none: `current()` is None there)."""

    pid: int  # the process the call runs in
    # the user asked for Hydra's full tracebacks (HYDRA_FULL_ERROR=1 before the call)
    user_traceback: bool = False
    started: bool = False  # a job has started: before that, Hydra's exit 1 is a usage error
    # a single run: the nearest folder that existed before Hydra made the run directory (a run stopped
    # by a configuration error removes the empty folders it made, up to there)
    existed: Path | None = None
    sweep_status: int = 0  # a sweep: its exit status, from its jobs' failed.json (CompareCallback)


_CURRENT: ContextVar[RunState | None] = ContextVar("infomax_run_state", default=None)


@contextlib.contextmanager
def run_state() -> Iterator[RunState]:
    """A fresh state for one `infomax run` call. Hydra reports an error it catches itself (a traceback
    and exit 1) unless HYDRA_FULL_ERROR=1, its only switch, asks it to raise: set for the call, so
    that the command's own one line says what went wrong, and put back as it was after."""
    state = RunState(os.getpid(), user_traceback=os.environ.get("HYDRA_FULL_ERROR") == "1")
    token = _CURRENT.set(state)
    saved = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield state
    finally:
        _CURRENT.reset(token)
        if saved is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved


def current() -> RunState | None:
    """The state of the `infomax run` call this process runs; None in a launcher's worker (or outside
    a call)."""
    state = _CURRENT.get()
    return state if state is not None and state.pid == os.getpid() else None


def task_config(cfg: DictConfig) -> DictConfig:
    """The job's own config: Hydra's composed config without its `hydra` node."""
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        task.pop("hydra", None)
    return task


class CheckFirst(Callback):
    """The config's checks before Hydra makes a directory (conf/config.yaml's callbacks): a single
    run's range checks (its module, if of your own, is built and probed once, by the job), every job's
    of a sweep (each module of your own built and probed once, whatever the seeds): a config error
    stops the whole sweep before its directory exists. Hydra turns an Exception raised here into a
    warning: the error travels as errors.Stop. From the geometries a sweep's checks give, its common
    pixels (region.py: pixels.json, where its cases cover different pixels)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _check(task_config(config), build=False)
        except ConfigError as e:
            raise Stop(e) from None
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        if (state := current()) is not None:
            state.existed = next(p for p in (run_dir, *run_dir.parents) if p.exists())

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _local_jobs_report_at_once(config)
        _compose_each_job_once(GlobalHydra.instance().config_loader())
        built: dict[str, Geometry | None] = {}
        checked = []
        for overrides, job in _sweep_jobs(config):
            try:
                check_named(overrides)
                cfg, geom = _check(task_config(job), build=built)
            except ConfigError as e:
                what = f"job {printable(' '.join(overrides))}: {e} (nothing was run)"
                raise Stop(ConfigError(what)) from None
            if cfg is not None:
                checked.append((overrides, cfg, geom))
        try:
            region.write(Path(str(config.hydra.sweep.dir)), region.sweep_windows(checked))
        except ConfigError as e:
            raise Stop(ConfigError(f"{e} (nothing was run)")) from None
        except InfomaxError as e:  # pixels.json not writable (a link, a full disk)
            raise Stop(e) from None


# How long a finished submitit_local job's result file is waited for (submitit's own wait is 15 s).
LOCAL_RESULT_WAIT_S = 1


def _local_jobs_report_at_once(config: DictConfig) -> None:
    """submitit waits up to 15 s for a finished job's result file, for a cluster's network filesystem
    to show it; a submitit_local job writes it to this machine's disk before its process exits, so a
    job killed outright (out of memory, SIGKILL) is reported once its process is gone, not 15 s later.
    SLURM's jobs keep submitit's wait."""
    target = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
    if target.endswith("submitit_launcher.LocalLauncher"):
        from submitit.local.local import LocalJob

        LocalJob._results_timeout_s = LOCAL_RESULT_WAIT_S


def check_named(overrides: list[str]) -> None:
    """The overrides that name a sweep job's directory (all but config.name_excluded_keys) hold no
    `/`, `..` or control character: no job writes outside the sweep's directory."""
    excluded = set(config.name_excluded_keys())
    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+~") not in excluded:
            check_path_part(key, value)


def remove_made_folders(run_dir: Path, existed: Path | None) -> None:
    """Remove `run_dir` and the parents Hydra made for it up to `existed` (the nearest folder that
    existed before), as long as they are empty (a single run that stopped before writing anything)."""
    folder = Path(run_dir).absolute()
    while existed is not None and folder != existed and existed in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _check(
    task: DictConfig, build: bool | dict[str, Geometry | None]
) -> tuple[config.Config | None, Geometry | None]:
    """config.check on the typed task config, and the case's own checks (model.build): a stack's
    geometry always; a module of your own built and probed when `build` maps the modules already
    checked to their geometries (added to it), never when False. Returns the typed config (None when
    Hydra reports it better) and the case's geometry when the measurement aligns by it."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = config.typed(task)
    except OmegaConfBaseException:
        return None, None  # a value Hydra reports better itself (missing, unresolvable) when read
    config.check(cfg)
    from .model.build import check_case, check_stack

    if cfg.case.encoder is None:
        return cfg, check_stack(cfg)
    if build is False:
        return cfg, None
    if (key := _case_key(cfg)) not in build:
        build[key] = check_case(cfg)
    return cfg, build[key]


def _case_key(cfg: config.Config) -> str:
    """What a module's checks depend on: the case, the encoder node, the images, the alignments, the
    batches and the device."""
    m = cfg.measure
    parts = (cfg.case, cfg.encoder, cfg.dataset.size, m.align, m.alt_aligns, m.batch_size)
    return repr((*parts, cfg.train.batch_size, cfg.device))


def _sweep_jobs(cfg: DictConfig) -> list[tuple[list[str], DictConfig]]:
    """Every job of a sweep as (its overrides, its composed config), expanded as Hydra's basic sweeper
    does; [] when another sweeper expands them or they do not compose (Hydra then says why)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if "BasicSweeper" not in str(OmegaConf.select(cfg, "hydra.sweeper._target_", default="")):
        return []
    loader = GlobalHydra.instance().config_loader()
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += list(OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False))
    try:
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, None)
        jobs = [list(o) for batch in batches for o in batch]
        return [(o, loader.load_sweep_config(cfg, o)) for o in jobs]
    except Exception:  # noqa: BLE001 - Hydra reports a sweep it cannot compose, in its own words
        return []


def _compose_each_job_once(loader: Any) -> None:
    """Hydra composes each job's config of a sweep up to three times before the job runs (the checks
    here, the basic sweeper's validation of the batch, the launcher), 0.1-0.3 s each: this call's config
    loader (one per `infomax run`, Hydra's) keeps the first composition of each job's overrides and
    hands out copies (the launcher writes the job's number into its own), each with the sweep's
    resolved values as they are when it is asked for (Hydra's own copy of them: the `${now:...}` of
    the sweep's directory resolved once for every job)."""
    compose = loader.load_sweep_config
    if getattr(compose, "composes_once", False):
        return
    composed: dict[tuple[tuple[str, ...], tuple[str, ...]], DictConfig] = {}

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        hydra_overrides = tuple(OmegaConf.to_container(master_config.hydra.overrides.hydra))
        key = (hydra_overrides, tuple(sweep_overrides))
        if key not in composed:
            composed[key] = compose(master_config, list(sweep_overrides))
        job = copy.deepcopy(composed[key])
        OmegaConf.copy_cache(from_config=master_config, to_config=job)
        return job

    load_sweep_config.composes_once = True
    loader.load_sweep_config = load_sweep_config


# ------------------------------------------------------------------------------ the job's own files
def hydra_files(cfg: DictConfig) -> dict[str, str]:
    """The .hydra/ files Hydra would have written for this job (config.yaml, hydra.yaml,
    overrides.yaml), as text, from inside the job (HydraConfig set)."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.instance().cfg
    return {
        rundir.HYDRA_CONFIG: OmegaConf.to_yaml(cfg),
        rundir.HYDRA_FILE: OmegaConf.to_yaml(hydra_cfg),
        rundir.HYDRA_OVERRIDES: OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task),
    }


def check_remembered(cfg: config.Config, run_dir: Path) -> dict[str, tuple[Any, Any]]:
    """When `run_dir` holds a finished or resumable run, compare the config it remembers with this
    run's: ConfigDiffers (one line naming the differing keys) unless resume=force; returns the
    differences (empty when none, or when the directory remembers nothing)."""
    if not (rundir.is_finished(run_dir) or rundir.can_resume(run_dir)) or cfg.overwrite:
        return {}
    force = cfg.resume == ResumeMode.force
    try:
        stored = store.remembered_config(run_dir)
    except Damaged as e:
        if force:
            return {}
        raise Refused(
            f"{e}: it cannot tell whether this run's config is the one that made {run_dir}; "
            "overwrite=true starts the run again, resume=force uses it anyway."
        ) from None
    if stored is None:
        return {}
    current = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)
    diff = config.differing_keys(stored, current)
    if diff and not force:
        what = "finished" if rundir.is_finished(run_dir) else "resumable"
        raise ConfigDiffers(
            f"{run_dir} holds a {what} run made with another config ({config.describe(diff)}): "
            "rerun with its settings, give this run another directory (hydra.run.dir=... or "
            "hydra.sweep.dir=...), overwrite=true to start it again, or resume=force to "
            f"{'skip' if what == 'finished' else 'continue'} it anyway."
        )
    return diff


def finished(run_dir: Path) -> dict | None:
    """The summary of the finished run in `run_dir` when it is intact (skipped); None when its files
    are damaged (the run is done again, with a warning: its files cannot be used as they are); a
    Refused when it is of a format this infomax does not read (nothing in it is touched)."""
    try:
        store.read_summary(run_dir)
    except store.FormatRefused as e:
        raise Refused(f"{e}; or give this run another directory.") from None
    except Damaged:
        pass  # the Job says what
    job = store.Job.read(run_dir)
    problem = job.problem or job.damage()
    if problem is None:
        return job.summary
    log.warning(
        f"{printable(run_dir)} holds a damaged run ({printable(problem)}): running it again."
    )
    return None


# -------------------------------------------------------------------------------- a sweep's end
class CompareCallback(Callback):
    """Writes the sweep's comparison when a multirun ends, whatever the launcher, and sets the call's
    exit status from its jobs (they write failed.json when they stop without finishing)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from .analysis import compare
        from .analysis.sweep import load

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            sweep = load(sweep_dir)  # the sweep's jobs, looked up once
            unfinished = sweep.unfinished
            n_jobs = len(sweep.jobs) + len(unfinished) + len(sweep.damaged)
            n_jobs += sum(len(x.set_aside) for x in sweep.left_out)
        except InfomaxError as e:  # nothing finished: no comparison, but the exit status
            sweep, error = None, e
            unfinished = store.job_dirs(sweep_dir) if sweep_dir.is_dir() else []
            n_jobs = len(unfinished)
        failures = [f for j in unfinished if (f := store.read_failure(j.path))]
        if (state := current()) is not None:
            state.sweep_status = sweep_status([int(f["exit_code"]) for f in failures])
        try:
            if sweep is None:
                raise error
            # the margins this multirun was started with (compare.margin=...), over those its
            # earlier jobs were run with
            node = config.get("compare", {})
            margin = node.get("margin")
            margins = {str(k): float(v) for k, v in margin.items()} if margin else None
            given = {k: node[k] for k in ("tie", "max_seeds", "spending") if k in node}
            sweep, found = compare.compare(sweep, margins, given)
        except InfomaxError as e:
            log.error(printable(e))
            return
        compare.print_found(sweep, found)
        if failures:
            log.error(
                f"{len(failures)} of {n_jobs} jobs did not finish (see above): the comparison covers "
                "the seeds at which every case finished. Rerun the same command to redo the others."
            )
