"""The run directory's layout as a version, and the contract's checks of what a job wrote.

`FORMAT` is written into every summary.json (`format`) and sweep.json, and raised whenever a file's
layout changes. Reading a job, `summary` checks its summary.json and brings an older format to this one
(`_from_1`, the one place older runs are read differently), or refuses it in one line naming the version
and the way out; `tables` checks its tables against the contract once (the columns, one row per image of
`n_images`, numbers where numbers go, no NaN), so nothing after the door asks what a job has.

Format 1: summary.json without `format`, written by infomax from aea3729 (2026-11-28) until the format
was versioned: the contract's columns, except `mi_null_sd` (one null partner, so no spread), and the
summary without `alt_aligns` (its `mi_max_<align>` keys say which) or `geometry` (not measured).
Runs written before 2026-11-28 (no image units, nulls or MI estimates) are refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import rundir
from ..choices import Align
from ..errors import Damaged

FORMAT = 2
OLDEST = 1
RERUN = "rerun the job with overwrite=true to write it again"
# what format 1 holds since aea3729 and a run written before it lacks
SINCE_AEA3729 = ("study_examples", "final_local_mi", "mi_null_mean", "region")


class FormatRefused(Damaged):
    """A file of a format this infomax does not read (newer, or too old to migrate): never rewritten."""


def version(data: dict, path: Path) -> int:
    """The format of a summary (1 when it has no `format`); FormatRefused when it is not one infomax
    reads."""
    v = data.get("format", OLDEST)
    if not _int(v) or v < OLDEST:
        raise FormatRefused(f"{path} names format {v!r}, not a format of infomax's: {RERUN}")
    if v > FORMAT:
        raise FormatRefused(
            f"{path} is format {v}, newer than this infomax reads (format {FORMAT}): update infomax "
            "(pip install -U infomax, or git pull in its checkout) to read it"
        )
    return int(v)


def summary(data: Any, path: Path) -> tuple[dict, int]:
    """A job's summary.json, checked and brought to FORMAT, and the format it was written in; Damaged
    (one line) when it cannot be."""
    if not isinstance(data, dict):
        raise Damaged(f"{path} is damaged (not a JSON object): {RERUN}")
    v = version(data, path)
    if v == 1:
        data = _from_1(data, path)
    _check_summary(data, path)
    return data, v


def _from_1(data: dict, path: Path) -> dict:
    """Format 1 -> 2: `alt_aligns` from the summary's own `mi_max_<align>` keys, `geometry` empty (it
    was not measured); a run from before aea3729 is refused."""
    if lacks := [k for k in SINCE_AEA3729 if k not in data]:
        raise FormatRefused(
            f"{path} was written by infomax before 2026-11-28 (format 1 without {', '.join(lacks)}: "
            f"no image units, nulls or MI estimates), too old to read: {RERUN}"
        )
    out = {**data, "format": FORMAT}
    own = str(data.get("align", ""))
    out.setdefault(
        "alt_aligns",
        [a.value for a in Align if a.value != own and f"mi_max_{a.value}" in data],
    )
    out.setdefault("geometry", [])
    return out


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# summary.json's keys the readers use, each with its check and what it must be
_KEYS = {
    "case": (lambda v: isinstance(v, str) and v != "", "a case name"),
    "seed": (_int, "an integer"),
    "dataset": (lambda v: isinstance(v, str), "a dataset name"),
    "n_images": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "steps": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "align": (lambda v: isinstance(v, str), "an alignment"),
    "alt_aligns": (lambda v: isinstance(v, list) and all(a in set(Align) for a in v), "alignments"),
    "study_examples": (lambda v: isinstance(v, list) and all(map(_int, v)), "image ids"),
    "geometry": (lambda v: isinstance(v, list) and all(map(_layer, v)), "measured layers"),
}


def _layer(g: Any) -> bool:
    """One layer of summary.json's `geometry`: its stride and offset numbers, its radius one or null."""
    return (
        isinstance(g, dict)
        and all(_finite(g.get(k)) for k in ("stride", "offset"))
        and (g.get("radius") is None or _finite(g.get("radius")))
    )


def _check_summary(data: dict, path: Path) -> None:
    for key, (ok, what) in _KEYS.items():
        if key not in data:
            raise Damaged(f"{path} is damaged (no {key}): {RERUN}")
        if not ok(data[key]):
            raise Damaged(f"{path} is damaged ({key} is {data[key]!r}, not {what}): {RERUN}")
    bad = [k for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise Damaged(f"{path} is damaged ({bad[0]} is {data[bad[0]]}, not a number): {RERUN}")


# ------------------------------------------------------------------------------------------ tables
TEXT = {
    rundir.MI_PER_IMAGE: ("label", "group"),
    rundir.MI_PER_MAP: ("label",),
    rundir.LOSS_CSV: (),
}
# the columns the contract names (docs: contract.md); the others infomax writes are checked when there
COLUMNS = {
    rundir.MI_PER_IMAGE: rundir.MI_PER_IMAGE_COLUMNS[:6],  # image_id, label, group, ... best_map
    rundir.MI_PER_MAP: rundir.MI_PER_MAP_COLUMNS,
    rundir.LOSS_CSV: [c for c in rundir.LOSS_COLUMNS if c != rundir.PRIOR_DISC],
}


def table(name: str, frame: pd.DataFrame, data: dict, written: int, path: Path) -> pd.DataFrame:
    """One of a job's tables (mi_per_image.csv, mi_per_map.csv, loss.csv) checked against the contract
    and its summary `data` (the contract's columns, one row per image or step, numbers where numbers
    go in every column: no NaN, no text; `mi_null_sd` may be empty) and brought to FORMAT from the
    format it was `written` in; Damaged (naming the file and what is wrong) otherwise."""
    frame = _table_from_1(name, frame) if written == 1 else frame
    if missing := [c for c in COLUMNS[name] if c not in frame.columns]:
        raise Damaged(f"{path} lacks the column(s) {', '.join(missing)}")
    if len(frame) == 0:
        raise Damaged(f"{path} has no rows")
    n = data["n_images"]
    if name == rundir.MI_PER_IMAGE and len(frame) != n:
        raise Damaged(
            f"{path} has {len(frame)} rows but summary.json says n_images={n} (truncated?)"
        )
    if name == rundir.MI_PER_MAP and len(frame) % n:
        raise Damaged(f"{path} has {len(frame)} rows, not n_images={n} times the maps")
    if name == rundir.LOSS_CSV and len(frame) != data["steps"]:
        steps = data["steps"]
        raise Damaged(
            f"{path} has {len(frame)} rows but summary.json says steps={steps} (truncated?)"
        )
    for c in frame.columns:
        if c in TEXT[name]:
            continue
        values = pd.to_numeric(frame[c], errors="coerce")
        wrong = ~np.isfinite(values.to_numpy(dtype=float))
        if c in rundir.MAY_BE_EMPTY:  # empty by the contract is no damage; text there is
            wrong &= frame[c].notna().to_numpy()
        if wrong.any():
            raise Damaged(f"{path} has {int(wrong.sum())} NaN or non-numeric value(s) in {c}")
    if name == rundir.MI_PER_IMAGE:
        if frame["image_id"].duplicated().any():
            raise Damaged(f"{path} lists an image twice")
        frame = frame.assign(group=frame["group"].astype(str))
    return frame


def _table_from_1(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Format 1 -> 2 of a table: mi_per_map.csv without `mi_null_sd` measured one null partner, whose
    spread is empty."""
    if name == rundir.MI_PER_MAP and "mi_null_sd" not in frame.columns and "mi_null" in frame:
        frame = frame.copy()
        frame.insert(frame.columns.get_loc("mi_null") + 1, "mi_null_sd", np.nan)
    return frame
