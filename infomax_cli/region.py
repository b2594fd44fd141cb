"""Which image pixels a job measures under `measure.align=geometry` (`measure.region`).

Cases with different receptive fields cover different image pixels with whole receptive fields (the
study's four: the central 88 x 88; `dilated` 66 x 66; `strided` every second pixel of 82 x 82). With
`measure.region=common` (the default) every case of a sweep is measured on the pixels all of them cover:
the intersection of their regions on the finest grid they share (model/geometry.py's `common_window`),
so their MI is measured on the same pixels. `own` keeps each case on its own region.

A job knows only its own case, so the sweep's windows are found where every job's config is at hand:
when the multirun starts (jobstart.CheckFirst composes and checks each job's config, which gives each
case's geometry: the closed form for the study's stacks, probed on the untrained module for the
others; nothing is trained). Per setting (the jobs' overrides other than case and seed) whose cases'
own windows differ, the common window and the cases it is common to are written to the sweep's
pixels.json; a job reads its setting's entry there and measures its last layer's maps on those pixels
(the critics and the information plane keep the case's own region, so training never depends on which
cases share the sweep). A sweep whose cases cover the same pixels (the study's four) writes nothing and
measures exactly as before. summary.json's `pixels` records what a job measured; compare says which
pixels the cases were compared on (claims.csv's `pixels`) and warns where they differ.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import rundir, store
from .choices import Align, Region
from .errors import ConfigError, Damaged, printable
from .model.geometry import Geometry, Window, common_window

log = logging.getLogger("infomax")

FORMAT = 1


def setting_of(overrides: Iterable[str]) -> str:
    """A job's setting: its overrides other than case and seed (store.Job.setting's)."""
    return ",".join(o for o in overrides if store.override_key(o) not in ("case", "seed"))


def sweep_windows(jobs: Iterable[tuple[list[str], Any, Geometry | None]]) -> dict[str, dict]:
    """The common window of each setting whose jobs (overrides, config, geometry) measure on common
    pixels and whose cases' own windows differ: {setting: {"window": {...}, "cases": [...]}}.
    ConfigError (one line) when those cases share too few pixels."""
    from .config import MIN_REGION

    groups: dict[str, dict[str, Window]] = {}
    for overrides, cfg, geom in jobs:
        if geom is None or cfg.measure.align != Align.geometry:
            continue
        if cfg.measure.region != Region.common:
            continue
        groups.setdefault(setting_of(overrides), {})[str(cfg.case.name)] = geom.own_window()
    out = {}
    for setting, own in groups.items():
        if len(set(own.values())) < 2:
            continue
        common = common_window(list(own.values()))
        if common is None or common.side < MIN_REGION:
            shared = "no pixel" if common is None else f"only {common.text()}"
            raise ConfigError(
                f"cases {', '.join(own)} share {shared} under whole receptive fields (at least "
                f"{MIN_REGION} a side are needed to compare them on common pixels): measure each on "
                "its own region with measure.region=own, or use larger images (dataset.size)."
            )
        out[setting] = {"window": common.as_dict(), "cases": sorted(own)}
    return out


def read(sweep_dir: Path) -> dict[str, dict]:
    """pixels.json's settings ({} when there is none); Damaged (one line) when it is not what write()
    writes."""
    path = Path(sweep_dir) / rundir.PIXELS
    if not os.path.lexists(path):
        return {}
    data = store.files.read_json(Path(sweep_dir), path)
    settings = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(settings, dict) or data.get("format") != FORMAT:
        raise Damaged(f"{path} is damaged (not the settings' common pixels of format {FORMAT})")
    for key, entry in settings.items():
        _window(entry, path)
        if not isinstance(key, str) or not _names(entry.get("cases")):
            raise Damaged(f"{path} is damaged (an entry without its cases)")
    return settings


def _names(value) -> bool:
    return isinstance(value, list) and all(isinstance(c, str) for c in value)


def _window(entry, path: Path) -> Window:
    """An entry's window, checked: four integers, 1 <= step, lo < hi."""
    node = entry.get("window") if isinstance(entry, dict) else None
    keys = ("lo", "hi", "step", "phase")
    if not isinstance(node, dict) or not all(type(node.get(k)) is int for k in keys):
        raise Damaged(f"{path} is damaged (a window is not four integers lo, hi, step, phase)")
    w = Window(*(node[k] for k in keys))
    if w.step < 1 or w.lo < 0 or w.hi <= w.lo:
        raise Damaged(f"{path} is damaged (window {node} holds no pixel)")
    return w


def write(sweep_dir: Path, windows: dict[str, dict]) -> None:
    """The sweep's common windows into pixels.json, the other settings' entries kept (a damaged file
    is replaced, with a warning); nothing written when there are none."""
    if not windows:
        return
    try:
        kept = read(sweep_dir)
    except Damaged as e:
        log.warning(f"{printable(e)}: written again with this sweep's common pixels.")
        kept = {}
    data = {"format": FORMAT, "settings": {**kept, **windows}}
    rundir.write_json(Path(sweep_dir) / rundir.PIXELS, data)


def for_job(cfg, geom: Geometry) -> tuple[Geometry, dict | None]:
    """The geometry a job measures with (its own, or on its sweep's common pixels) and summary.json's
    `pixels` record (None when the measurement does not align by geometry)."""
    if cfg.measure.align != Align.geometry:
        return geom, None
    own = geom.own_window()
    entry = _sweep_entry(cfg) if cfg.measure.region == Region.common else None
    if entry is None:
        return geom, _record(cfg, own, [str(cfg.case.name)])
    window, cases, path = entry
    try:
        measured = geom.on(window)
    except ValueError as e:
        raise ConfigError(
            f"case {cfg.case.name}: {path}'s common pixels do not fit its maps ({e}): delete "
            "the file to measure each case on its own region, or use measure.region=own."
        ) from None
    return measured, _record(cfg, window, cases)


def _record(cfg, window: Window, cases: list[str]) -> dict:
    """summary.json's `pixels`: the region asked for, the window measured, its side, and the cases
    whose common pixels they are (the job's own case alone: its own region)."""
    return {
        "region": str(cfg.measure.region),
        **window.as_dict(),
        "side": window.side,
        "cases": cases,
    }


def _sweep_entry(cfg) -> tuple[Window, list[str], Path] | None:
    """This job's setting's common window in its sweep's pixels.json, when it runs in a multirun whose
    cases cover different pixels and it is one of them (else None: its own region)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hydra = HydraConfig.get()
    sweep_dir = Path(str(hydra.sweep.dir))
    path = sweep_dir / rundir.PIXELS
    try:
        entry = read(sweep_dir).get(setting_of(hydra.overrides.task))
    except Damaged as e:
        raise ConfigError(
            f"{printable(e)}: run the sweep again (its start writes it anew), or measure.region=own."
        ) from None
    if entry is None or str(cfg.case.name) not in entry["cases"]:
        return None
    return _window(entry, path), list(entry["cases"]), path
