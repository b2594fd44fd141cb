"""How a job starts, so that a run that cannot or may not run writes nothing:

1. the config's range checks (config.check), before Hydra makes any directory: for a single run in
   `on_run_start`, for a sweep every job's config in `on_multirun_start` (a config error stops the whole
   sweep before its directory exists); from the geometries these give, a sweep whose cases cover
   different pixels gets its common ones (region.py: pixels.json, before any job runs);
2. the directory's lock (rundir.lock): a busy directory is left exactly as it was;
3. the config the directory remembers (.hydra/config.yaml) against this run's, when it holds a finished
   or resumable run: a difference in anything that changes results stops the run (resume=force
   overrides);
4. a finished run is skipped when its files are intact (`finished`), done again when they are damaged,
   left alone when of a format this infomax does not read;
5. only then does the job write: Hydra's `.hydra/` files (Hydra's own writing is switched off by
   `hydra.output_subdir: null`), then its work.
"""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from . import config, region, rundir, store
from .choices import ResumeMode
from .errors import ConfigError, Damaged, InfomaxError, Refused, printable
from .limits import check_path_part
from .model.geometry import Geometry

log = logging.getLogger("infomax")


class ConfigDiffers(Refused):
    """The directory holds a run made with a config that differs in what changes results."""


def task_config(cfg: DictConfig) -> DictConfig:
    """The job's own config: Hydra's composed config without its `hydra` node."""
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        task.pop("hydra", None)
    return task


def _stop(message: str) -> None:
    """One line and exit 2, from inside a Hydra callback (which turns an Exception into a warning)."""
    print(f"infomax: {printable(message)}", file=sys.stderr)
    raise SystemExit(2)


class CheckFirst(Callback):
    """The config's range checks before Hydra makes a directory (conf/config.yaml's callbacks)."""

    # a single run's nearest folder that existed before Hydra made its run directory: a run stopped
    # by a configuration error removes the empty folders it made, up to there
    existed: Path | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _check(task_config(config))
        except ConfigError as e:
            _stop(str(e))
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        CheckFirst.existed = next(p for p in (run_dir, *run_dir.parents) if p.exists())

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Every job's checks; then, from the geometries they give, the sweep's common pixels
        (region.py: pixels.json, where its cases cover different pixels)."""
        checked = []
        for overrides, job in _sweep_jobs(config):
            try:
                check_named(overrides)
                task = task_config(job)
                checked.append((overrides, task, _check(task)))
            except ConfigError as e:
                _stop(f"job {printable(' '.join(overrides))}: {e} (nothing was run)")
        try:
            region.write(Path(str(config.hydra.sweep.dir)), region.sweep_windows(checked))
        except ConfigError as e:
            _stop(f"{e} (nothing was run)")
        except InfomaxError as e:
            print(f"infomax: {printable(e)}", file=sys.stderr)
            raise SystemExit(e.exit_code) from None


def check_named(overrides: list[str]) -> None:
    """The overrides that name a sweep job's directory (all but config.name_excluded_keys) hold no
    `/`, `..` or control character: no job writes outside the sweep's directory."""
    excluded = set(config.name_excluded_keys())
    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+~") not in excluded:
            check_path_part(key, value)


def remove_made_folders(run_dir: Path) -> None:
    """Remove `run_dir` and the parents Hydra made for it, as long as they are empty (a single run
    that stopped before writing anything)."""
    stop = CheckFirst.existed
    folder = Path(run_dir).absolute()
    while stop is not None and folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _check(task: DictConfig) -> Geometry | None:
    """config.check: the case's geometry when the measurement aligns by it."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return config.check(task)
    except OmegaConfBaseException:
        return (
            None  # a value Hydra reports better itself (a missing or unresolvable one), when read
        )


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


def check_remembered(cfg: DictConfig, run_dir: Path) -> dict[str, tuple[Any, Any]]:
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
    current = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
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
