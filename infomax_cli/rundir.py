"""The run directory: every file name and column list of the contract, atomic writes, the finished and
resume rules, and the lock that keeps one run per directory.

A job's directory holds its files (`loss.csv`, `mi_per_map.csv`, `mi_per_image.csv`, pictures,
`summary.json`, ...); a sweep's directory holds one job directory per job and the comparison files.
Rules:
* finished: `summary.json` exists (written last). A finished job is not run again unless overwrite.
* resumable: `checkpoint.pt` exists without `summary.json`: training continues from it.
* busy: `.infomax.lock` names a live process: a second run into the directory stops with one line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, RunError, first_line

log = logging.getLogger("infomax")

# ------------------------------------------------------------------------ a job's files (the contract)
LOSS_CSV = "loss.csv"
LOSS_PNG = "loss.png"
MI_PER_MAP = "mi_per_map.csv"
MI_PER_IMAGE = "mi_per_image.csv"
SUMMARY = "summary.json"
FEATURES = "features"  # features/<image>.png, one per example image, and features/examples.npz
EXAMPLES_NPZ = "examples.npz"  # the example images' maps, for the report
ENCODER = "encoder.pt"
CHECKPOINT = "checkpoint.pt"
INFOPLANE = "infoplane.csv"
INFOPLANE_PNG = "infoplane.png"
IMAGES_CSV = "images.csv"  # dataset=folder: which file each image id is
REPORT = "report.html"
# only while a job has stopped without finishing: its exit status and message
FAILED = "failed.json"
LOCK = ".infomax.lock"  # the PID and host of the run using the directory
LOG = "infomax.log"  # the job's log (Hydra's file handler)
HYDRA_CONFIG = ".hydra/config.yaml"  # the job's composed config, as Hydra wrote it
HYDRA_OVERRIDES = ".hydra/overrides.yaml"
MULTIRUN = "multirun.yaml"  # a sweep's own record of what it was asked to run
VALIDATION_CSV = "validation.csv"  # infomax validate's
VALIDATION_PNG = "validation.png"

# the step, the total loss, its terms, the prior discriminator's own loss, and each MI term's own
# estimate in nats (zero at chance)
LOSS_COLUMNS = ["step", "loss", "local", "global", "prior", "prior_disc", "local_mi", "global_mi"]
MI_PER_MAP_COLUMNS = [
    "image_id",
    "label",
    "map",
    "mi",
    "mi_null",
    "mi_null_sd",
    "mi_shuffled",
    "mi_init",
]
# then mi_mean_<align>, mi_max_<align> for each other alignment measured
MI_PER_IMAGE_COLUMNS = [
    "image_id",
    "label",
    "group",
    "mi_mean",
    "mi_max",
    "best_map",
    "mi_null_mean",
    "mi_null_max",
    "mi_shuffled_mean",
    "mi_mean_above_null",
    "mi_max_above_null",
    "mi_mean_init",
    "mi_max_init",
]
INFOPLANE_COLUMNS = ["step", "layer", "mi"]
IMAGES_COLUMNS = ["image_id", "label", "path"]

# --------------------------------------------------------------------- a sweep's files (the contract)
COMPARISON = "comparison.csv"  # image_id, label, group, mi_max_<case>..., mi_mean_<case>..., winner
WINNERS_CSV = "winners.csv"
WINNERS_PNG = "winners.png"
LOSS_CURVES = "loss_curves.png"
STATS = "stats.csv"
PAIRWISE = "pairwise.csv"
CLAIMS = "claims.csv"
SENSITIVITY = "sensitivity.csv"
SENSITIVITY_JOBS = "sensitivity_jobs.csv"

STATS_COLUMNS = ["case", "metric", "mean", "ci_low", "ci_high", "n_seeds", "n_images", "n_units"]
PAIRWISE_COLUMNS = [
    "metric",
    "case_x",
    "case_y",
    "diff",
    "ci_low",
    "ci_high",
    "n_seeds",
    "n_images",
    "significant",
    "n_units",
]
WINNER_COLUMNS = ["case", "wins", "share", "ci_low", "ci_high", "n_units"]
# then sentence, notes, value_<case>, init_*, <align>_*
CLAIM_COLUMNS = [
    "claim",
    "statistic",
    "study_case",
    "best_case",
    "estimate",
    "ci_low",
    "ci_high",
    "n_seeds",
    "n_units",
    "status",
]


# ------------------------------------------------------------------------------------ atomic writes
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: Path, data: dict[str, Any]) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_torch(path: Path, obj: Any) -> Path:
    import torch  # not at import: the sweep's readers (compare, report) never need torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: Path, map_location: Any = "cpu") -> Any:
    """A checkpoint or encoder file; a damaged one (truncated, not torch's) stops with one line that
    names it and the way out."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as e:
        if Path(path).name == CHECKPOINT:
            fix = "delete it to start this job's training again from step 0"
        else:
            fix = "rerun the job with overwrite=true to train it again"
        raise RunError(
            f"{path} is damaged and cannot be read ({first_line(e)[:200]}): {fix}."
        ) from e


def ensure_writable(folder: Path) -> Path:
    """Make `folder` (and its parents) and check a file can be written there; raises OSError otherwise."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".infomax_write_test"
    probe.write_text("")
    probe.unlink()
    return folder


# ------------------------------------------------------------------------- finished and resume rules
def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The job's summary, or None when the job has not finished."""
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / SUMMARY).is_file()


def can_resume(run_dir: Path) -> bool:
    return (Path(run_dir) / CHECKPOINT).is_file() and not is_finished(run_dir)


def is_job_dir(path: Path) -> bool:
    """A folder a job has written to (its `.hydra/`, a summary or a checkpoint)."""
    return any((Path(path) / m).exists() for m in (".hydra", SUMMARY, CHECKPOINT))


def start_over(run_dir: Path) -> None:
    """overwrite=true: forget the finished run and its checkpoint, so the job runs from step 0."""
    for name in (SUMMARY, CHECKPOINT, FAILED):
        (Path(run_dir) / name).unlink(missing_ok=True)


def write_failure(run_dir: Path, exit_code: int, message: str) -> None:
    """Record why a job stopped (best effort: the directory may be the problem)."""
    try:
        write_json(Path(run_dir) / FAILED, {"exit_code": int(exit_code), "message": message})
    except OSError:
        pass


def read_failure(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / FAILED
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------- the lock
# A lock file without a PID younger than this is being written; older, it was left by a crash.
LOCK_WRITE_SECONDS = 2.0


class DirectoryBusy(ConfigError):
    """Another live run holds the directory: this run stops before touching any of its files."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _holder(path: Path) -> tuple[int, str] | None:
    try:
        pid, _, host = path.read_text().strip().partition(" ")
        return int(pid), host
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def lock(run_dir: Path) -> Iterator[None]:
    """Hold DIR/.infomax.lock while a job runs in DIR. A lock of a live process: DirectoryBusy, one
    line naming the directory and the other run's PID. A stale lock (its process has died, on this
    host) is taken over. The lock is removed when the job ends, however it ends."""
    path = Path(run_dir) / LOCK
    me, host = os.getpid(), socket.gethostname()
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            # being written (look again shortly), or garbage / left empty by a crash
            if holder is None:
                try:
                    age = time.time() - path.stat().st_mtime
                except FileNotFoundError:
                    continue  # its run just ended
                if age < LOCK_WRITE_SECONDS:
                    time.sleep(0.05)
                    continue
                log.warning(f"{path} is unreadable: taken over.")
                path.unlink(missing_ok=True)
                continue
            pid, other = holder
            if pid == me and other == host:
                break  # this process holds it already (a job run twice in one process)
            if other == host and not _alive(pid):
                log.warning(f"{run_dir}: the run that locked it (PID {pid}) has died: taken over.")
                path.unlink(missing_ok=True)
                continue
            where = "" if other == host else f" on {other}"
            raise DirectoryBusy(
                f"{run_dir} is in use by another infomax run (PID {pid}{where}): wait for it to end, "
                f"or give this run another directory (hydra.run.dir=... or hydra.sweep.dir=...); if that "
                f"run is gone, delete {path}."
            ) from None
        else:
            with os.fdopen(fd, "w") as f:
                f.write(f"{me} {host}\n")
            break
    try:
        yield
    finally:
        if _holder(path) == (me, host):
            path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------- example maps
def save_example_maps(
    run_dir: Path, examples: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> Path:
    """Write features/examples.npz: for each example name (as its features/NAME.png), the image (S, S),
    its maps (C, S, S) and their MI (C,) in nats. Maps are kept as float16 (pictures, not measurements)."""
    arrays = {}
    for name, (image, maps, mi) in examples.items():
        arrays[f"{name}.image"] = np.asarray(image, dtype=np.float16)
        arrays[f"{name}.maps"] = np.asarray(maps, dtype=np.float16)
        arrays[f"{name}.mi"] = np.asarray(mi, dtype=np.float64)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
            np.savez_compressed(f, **arrays)

    return atomic_write(Path(run_dir) / FEATURES / EXAMPLES_NPZ, write)


def load_example_maps(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The example maps save_example_maps wrote (name -> (image, maps, mi), float32), {} when none."""
    path = Path(run_dir) / FEATURES / EXAMPLES_NPZ
    if not path.is_file():
        return {}
    with np.load(path) as z:
        names = sorted({k.rsplit(".", 1)[0] for k in z.files})
        return {
            n: (z[f"{n}.image"].astype(np.float32), z[f"{n}.maps"].astype(np.float32), z[f"{n}.mi"])
            for n in names
        }
