"""The run directory: every file name and column list of the contract, atomic writes, the finished and
resume rules. The lock that keeps one run per directory is `dirlock`'s; reading a directory back is
`store`'s.

A job's directory holds its files (`loss.csv`, `mi_per_map.csv`, `mi_per_image.csv`, pictures,
`summary.json`, ...); a sweep's directory holds one job directory per job and the comparison files.
Rules:
* finished: `summary.json` exists (written last). A finished job is not run again unless overwrite.
* resumable: `checkpoint.pt` exists without `summary.json`: training continues from it.
* busy: `.infomax.lock` names a live process: a second run into the directory stops with one line.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import RunError

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
# the job's composed config (as Hydra writes it; written by the job once it holds the lock): the config
# that made the run, which a rerun into the directory is compared with
HYDRA_CONFIG = ".hydra/config.yaml"
HYDRA_OVERRIDES = ".hydra/overrides.yaml"
HYDRA_FILE = ".hydra/hydra.yaml"  # Hydra's own settings for the job
MULTIRUN = "multirun.yaml"  # a sweep's own record of what it was asked to run
# the sweep's comparison's own record: its format, the seeds every table uses, those left out and why
SWEEP_JSON = "sweep.json"
VALIDATION_CSV = "validation.csv"  # infomax validate's
VALIDATION_PNG = "validation.png"

# The objective's loss terms, named once: what model/objectives computes, train.py weights and loss.csv,
# the pictures and TensorBoard name. MI_TERMS are the (negated) MI bounds, each with its own estimate
# in nats (zero at chance) in the column `<term>_mi`; PRIOR_DISC is the prior discriminator's own loss.
TERMS = ("local", "global", "prior")
MI_TERMS = ("local", "global")
PRIOR_DISC = "prior_disc"
MI_ESTIMATE_COLUMNS = [f"{term}_mi" for term in MI_TERMS]
# the loss curves' statistic (claims.csv's (i)): the MI terms' estimates summed, in words
LOSS_MI = " + ".join(MI_ESTIMATE_COLUMNS) + " (nats)"
# the step, the total loss, its terms, the discriminator's loss and the MI terms' estimates
LOSS_COLUMNS = ["step", "loss", *TERMS, PRIOR_DISC, *MI_ESTIMATE_COLUMNS]
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
# numbers that may be left empty: the spread of one null partner (measure.null_partners=1) is undefined
MAY_BE_EMPTY = ("mi_null_sd",)
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
CLAIMS_PAIRS = "claims_pairs.csv"
CLAIMS_PNG = "claims.png"
LOOKS = "looks.csv"
PIXELS = "pixels.json"  # a sweep's common pixels per setting (measure.region=common; region.py)
SETTLE_LOG = "settle.log"  # infomax settle: the output of its rounds (`infomax run -m`)
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
# A sweep's tables carry, in memory, the setting of each row (its jobs' overrides other than case and
# seed: "" for a run); the files have the column first, and only when the sweep has several settings.
SETTING = "setting"
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
    "margin",
    "seeds_needed",
    "status",
]
# claims_pairs.csv: each claim's pre-specified pairs c - o; `level`: the coverage of [ci_low, ci_high]
# (its lower limit one-sided 97.5%, its upper one corrected for the pairs); `decision`: beats | loses |
# within margin | undecided; then the 90% equivalence interval and seeds_needed_high
CLAIM_PAIR_COLUMNS = [
    "claim",
    "study_case",
    "other_case",
    "estimate",
    "ci_low",
    "ci_high",
    "level",
    "n_seeds",
    "n_units",
    "margin",
    "seeds_needed",
    "decision",
    "equiv_low",
    "equiv_high",
    "seeds_needed_high",
]
# looks.csv: one row per look at the sweep's claims (and setting): its number, the seeds it had (their
# count and list), the claim's status then, the error its plan had spent by then and the nominal
# one-sided level of its lower limit; the plan (max_seeds, spending) it was made under
LOOK_COLUMNS = [
    "look",
    "n_seeds",
    "claim",
    "status",
    "alpha_spent",
    "level",
    "seeds",
    "max_seeds",
    "spending",
]


# ------------------------------------------------------------------------------------ atomic writes
# a run directory's own folders: a link there (from whoever made the directory) is not written through
SUBFOLDERS = (".hydra", FEATURES)
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`. A write the disk
    refuses (full, read-only, ...) is one RunError naming the file; the old file stays as it was."""
    path = Path(path)
    if path.parent.name in SUBFOLDERS and path.parent.is_symlink():
        raise RunError(
            f"{path.parent} is a link: infomax writes no file through a link out of a run directory; "
            "delete it (or give the run another directory)."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_error(path: Path, e: OSError) -> RunError:
    """One line for a write the disk refused: the file, the reason (\"no space left on device\") and
    the way out."""
    reason = (
        "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e)).lower()
    )
    return RunError(
        f"cannot write {path}: {reason}; free some space (or choose another directory) and rerun the "
        "same command: what was finished is kept and the job resumes from its last checkpoint."
    )


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))


def several_settings(frame: pd.DataFrame) -> bool:
    """Whether the rows of `frame` come from more than one setting (and the setting is worth showing)."""
    return SETTING in frame.columns and frame[SETTING].nunique() > 1


def write_table(path: Path, frame: pd.DataFrame) -> Path:
    """A sweep table as the contract has it: its `setting` column dropped when it holds one value."""
    if SETTING in frame.columns and not several_settings(frame):
        frame = frame.drop(columns=SETTING)
    return write_csv(path, frame)


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: Path, data: dict[str, Any]) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_torch(path: Path, obj: Any) -> Path:
    """Tensors and plain values (dicts, lists, numbers, strings) only: what load_torch reads back. The
    file is serialised in memory first, so a full disk is an OSError of the write, named in one line
    (torch's own writer reports it as an 'enforce fail')."""
    import torch  # not at import: the sweep's readers (compare, report) never need torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getvalue())


def check_can_create(folder: Path) -> None:
    """Raise OSError when `folder` could not be made (or written into) by this user, without making
    or writing anything: its nearest existing ancestor must be a directory one may write into."""
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(existing))


# ------------------------------------------------------------------------- finished and resume rules
def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / SUMMARY).is_file()


def can_resume(run_dir: Path) -> bool:
    return (Path(run_dir) / CHECKPOINT).is_file() and not is_finished(run_dir)


def is_job_dir(path: Path) -> bool:
    """A folder a job has written to (its `.hydra/`, a summary, a checkpoint, or only the failed.json
    of a sweep job that stopped on a configuration error before writing anything else)."""
    return any((Path(path) / m).exists() for m in (".hydra", SUMMARY, CHECKPOINT, FAILED))


def start_over(run_dir: Path) -> None:
    """overwrite=true: forget the finished run and its checkpoint, so the job runs from step 0."""
    for name in (SUMMARY, CHECKPOINT, FAILED):
        (Path(run_dir) / name).unlink(missing_ok=True)


def write_failure(run_dir: Path, exit_code: int, message: str) -> None:
    """Record why a job stopped (best effort: the directory may be the problem)."""
    try:
        write_json(Path(run_dir) / FAILED, {"exit_code": int(exit_code), "message": message})
    except RunError:
        pass


def write_job_files(run_dir: Path, files: dict[str, str]) -> None:
    """The job's own record (.hydra/: config.yaml, hydra.yaml, overrides.yaml), as Hydra writes it."""
    for name, text in files.items():
        write_text(Path(run_dir) / name, text)


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


class JobLogHandler(logging.FileHandler):
    """The job's log file (conf/hydra/job_logging), opened without following a link and only as a
    regular file: a link or FIFO put there by whoever made the directory gets no line (one warning)."""

    def _open(self):
        try:
            fd = os.open(
                self.baseFilename,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                0o666 & ~_UMASK,
            )
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(errno.EINVAL, "not a regular file")
        except OSError as e:
            print(
                f"infomax: {self.baseFilename} is not a file infomax writes into ({e.strerror}): "
                "the job's log goes to the terminal only.",
                file=sys.stderr,
            )
            return open(os.devnull, "a", encoding=self.encoding)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)
