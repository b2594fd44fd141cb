"""Synthetic finished job directories in the run-directory format (no training): for the sweep-level
tests of compare, stats, claims and the report. Every file the contract names and the store checks:
mi_per_image.csv (with `group`, the `_init` control and other alignments' columns), loss.csv (with
`local_mi`, `global_mi`), mi_per_map.csv and summary.json (format 2: with `align`, `alt_aligns`,
`study_examples` and `geometry`); or the same in format 1, or as runs before it (refused)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PHOTOS = ("chelsea", "horse", "astronaut", "camera", "coffee")


def write_job(
    sweep: Path,
    case: str,
    mi_max,
    seed: int = 0,
    *,
    mi_mean=None,
    mi_max_init=None,
    aligns: dict | None = None,
    groups=None,
    labels=None,
    loss_mi=None,
    study_examples=(0, 1),
    old_format: bool = False,
    extra: tuple[str, ...] = ("dataset=samples",),
    finished: bool = True,
    alt_aligns: list[str] | None = None,
    format: int = 2,
    overrides: list[str] | None = None,
    directory: str | None = None,
) -> Path:
    """One job of case `case`: per-image `mi_max` (mi_mean = mi_max / 2 unless given); `aligns`: {A:
    mi_max under alignment A}; `groups`: each image's unit (default: PHOTOS in turn); `loss_mi`: the
    objective's MI estimate per step (default 0.1); `old_format`: the files of runs written before
    2026-11-28 (no groups, nulls or MI estimates: refused); `alt_aligns`: summary.json's list of the
    other alignments measured (default: those of `aligns`); `format` 1: summary.json without `format`,
    `alt_aligns` (its mi_max_<A> keys say which) or `geometry`, mi_per_map.csv without mi_null_sd;
    `overrides`: the job's (its directory's name, joined by commas, unless `directory` names it),
    default case, `extra` and seed."""
    overrides = [f"case={case}", *extra, f"seed={seed}"] if overrides is None else list(overrides)
    d = Path(sweep) / (directory or ",".join(overrides))
    (d / ".hydra").mkdir(parents=True, exist_ok=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    mi_max = np.asarray(mi_max, dtype=float)
    n = len(mi_max)
    mi_mean = mi_max / 2 if mi_mean is None else np.asarray(mi_mean, dtype=float)
    mi_max_init = mi_max * 0.8 if mi_max_init is None else np.asarray(mi_max_init, dtype=float)
    groups = [PHOTOS[i % len(PHOTOS)] for i in range(n)] if groups is None else list(groups)
    labels = groups if labels is None else list(labels)
    t = pd.DataFrame(
        {
            "image_id": range(n),
            "label": labels,
            "group": groups,
            "mi_mean": mi_mean,
            "mi_max": mi_max,
            "best_map": 0,
            "mi_null_mean": 0.02,
            "mi_null_max": 0.03,
            "mi_shuffled_mean": 0.02,
            "mi_mean_above_null": mi_mean - 0.02,
            "mi_max_above_null": mi_max - 0.03,
            "mi_mean_init": mi_max_init / 2,
            "mi_max_init": mi_max_init,
        }
    )
    for a, v in (aligns or {}).items():
        v = np.asarray(v, dtype=float)
        t[f"mi_mean_{a}"], t[f"mi_max_{a}"] = v / 2, v
    if old_format:
        t = t[
            [
                "image_id",
                "label",
                "mi_mean",
                "mi_max",
                "best_map",
                "mi_null_mean",
                "mi_mean_init",
                "mi_max_init",
            ]
        ]
    t.to_csv(d / "mi_per_image.csv", index=False)
    per_map = pd.DataFrame(
        {
            "image_id": np.repeat(np.arange(n), 2),
            "label": np.repeat(labels, 2),
            "map": np.tile([0, 1], n),
            "mi": np.repeat(mi_max, 2),
            "mi_null": 0.02,
            "mi_null_sd": 0.01,
            "mi_shuffled": 0.02,
            "mi_init": np.repeat(mi_max_init, 2),
        }
    )
    if format == 1 or old_format:
        per_map = per_map.drop(columns="mi_null_sd")
    per_map.to_csv(d / "mi_per_map.csv", index=False)
    steps = np.arange(1, 6)
    mi = (
        np.full(len(steps), 0.1)
        if loss_mi is None
        else np.broadcast_to(np.asarray(loss_mi, dtype=float), steps.shape)
    )
    loss = {
        "step": steps,
        "loss": 2.8 - mi,
        "local": 1.386 - mi / 2,
        "global": 1.386 - mi / 2,
        "prior": 0.7,
        "prior_disc": 1.38,
    }
    if not old_format:
        loss.update(local_mi=mi / 2, global_mi=mi / 2)
    pd.DataFrame(loss).to_csv(d / "loss.csv", index=False)
    summary = {
        "format": format,
        "case": case,
        "seed": seed,
        "dataset": "samples",
        "n_images": n,
        "steps": 5,
        "bins": 20,
        "align": "geometry",
        "alt_aligns": list(aligns or {}) if alt_aligns is None else list(alt_aligns),
        "region": [4, 92],
        "geometry": [{"layer": "1", "map_size": 96, "stride": 1, "offset": 0, "radius": 1}],
        **{k: float(t[k].mean()) for k in t.columns if k.startswith("mi_")},
        "study_examples": list(study_examples),
        "final_local_mi": float(mi[-1] / 2),
    }
    if format == 1 or old_format:
        for key in ("format", "alt_aligns", "geometry"):
            summary.pop(key)
    if old_format:
        for key in ("study_examples", "region", "final_local_mi", "mi_null_mean"):
            summary.pop(key, None)
    if finished:
        (d / "summary.json").write_text(json.dumps(summary))
    return d


def two_level(
    means: dict,
    seeds=(0,),
    n_units: int = 20,
    per_unit: int = 4,
    sd_seed: float = 0.05,
    sd_unit: float = 0.2,
    sd_noise: float = 0.05,
    rng_seed: int = 0,
) -> dict:
    """{(case, seed): mi_max per image}: image i belongs to unit i % n_units; a unit effect shared by every
    case and seed (what pairing cancels), a case x unit effect (sd_unit / 4), a case x seed effect
    (sd_seed) and noise."""
    rng = np.random.default_rng(rng_seed)
    n = n_units * per_unit
    unit = np.arange(n) % n_units
    shared = rng.normal(0, sd_unit, n_units)[unit] + rng.normal(0, sd_noise, n)
    out = {}
    for case, mu in means.items():
        case_unit = rng.normal(0, sd_unit / 4, n_units)[unit]
        for s in seeds:
            out[case, s] = (
                mu + shared + case_unit + rng.normal(0, sd_seed) + rng.normal(0, sd_noise, n)
            )
    return out


def units(n_units: int = 20, per_unit: int = 4) -> list[str]:
    return [f"photo{i % n_units:02d}" for i in range(n_units * per_unit)]


def write_sweep(sweep: Path, values: dict, groups=None, **kw) -> Path:
    """A job per (case, seed) of `values` ({(case, seed): mi_max per image})."""
    for (case, seed), v in values.items():
        write_job(sweep, case, v, seed, groups=groups, **kw)
    return Path(sweep)
