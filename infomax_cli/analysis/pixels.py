"""Which image pixels a sweep's cases were measured on (each job's summary.json), and whether they are
the same: claims.csv's `pixels` column, and the line the terminal and the report print (region.py says
how a job chooses them)."""

from __future__ import annotations

import logging

from ..choices import Align
from ..errors import printable
from ..model.geometry import Window
from .sweep import Sweep

log = logging.getLogger("infomax")


def measured_window(summary: dict) -> Window | None:
    """The pixels a job measured: summary.json's `pixels`, else (a job from before it) its `region` on
    its last layer's grid, its own; None when it aligned otherwise or says neither."""
    if summary.get("align") != Align.geometry:
        return None
    p = summary.get("pixels")
    keys = ("lo", "hi", "step", "phase")
    if isinstance(p, dict) and all(type(p.get(k)) is int for k in keys) and p["step"] >= 1:
        return Window(*(p[k] for k in keys))
    region, layers = summary.get("region"), summary.get("geometry")
    if not (isinstance(region, list) and len(region) == 2 and isinstance(layers, list) and layers):
        return None
    last = layers[-1] if isinstance(layers[-1], dict) else {}
    step, offset = last.get("stride") or 1, last.get("offset") or 0
    if not all(type(v) is int for v in (*region, step, offset)) or step < 1:
        return None
    return Window(region[0], region[1], step, offset % step)


def compared(sweep: Sweep) -> dict[str, str]:
    """Per setting, the pixels its cases were compared on, in words; a warning where they differ
    though the jobs asked for common pixels (jobs from before measure.region, or a sweep whose
    cases changed since its first jobs)."""
    out = {}
    for setting in dict.fromkeys(j.setting for j in sweep.jobs):
        jobs = [j for j in sweep.jobs if j.setting == setting]
        align = {str(j.summary.get("align")) for j in jobs}
        if align != {Align.geometry}:
            out[setting] = f"as measure.align={'/'.join(sorted(align))} takes them"
            continue
        per_case: dict[str, set[Window | None]] = {}
        for j in jobs:
            per_case.setdefault(j.case, set()).add(measured_window(j.summary))
        windows = set().union(*per_case.values())
        if len(windows) == 1 and None not in windows:
            w = windows.pop()
            out[setting] = f"the same for every case: {w.text()}"
            continue
        words = "; ".join(
            f"{case} {' or '.join(w.text() if w else 'not recorded' for w in ws)}"
            for case, ws in per_case.items()
        )
        out[setting] = f"not the same: {words}"
        if any(_asked_common(j.summary) for j in jobs):
            where = (
                f" ({printable(setting)})" if len(set(j.setting for j in sweep.jobs)) > 1 else ""
            )
            log.warning(
                f"the cases were measured on different image pixels{where}: {words}. Their MI is "
                "not compared like with like: jobs made before measure.region, or a sweep whose "
                "cases changed after its first jobs, keep their own; run the sweep into a new "
                "directory to measure every case on the pixels all of them cover."
            )
    return out


def lines(compared: dict[str, str]) -> list[str]:
    """`compared` as the terminal and the report print it: one line per setting."""
    several = len(compared) > 1
    return [f"pixels compared{f' ({s})' if several else ''}: {t}" for s, t in compared.items()]


def _asked_common(summary: dict) -> bool:
    """Whether a job's measurement asked for the sweep's common pixels (a job from before
    measure.region asked for nothing: its own region, which this version would not choose)."""
    p = summary.get("pixels")
    return not isinstance(p, dict) or p.get("region") != "own"
