"""`infomax sensitivity SWEEP_DIR`: does the ranking of the cases survive another measurement protocol?

The trained encoders of a finished sweep (each job's `encoder.pt` and `.hydra/config.yaml`) are
re-measured, without retraining, under every combination of alignment (`resize`, `crop`), estimator
(`histogram`, `ksg`, `gcmi`) and histogram bins (the bins only matter to the histogram: ksg and gcmi run
once per alignment). The jobs are found by `analysis.sweep.load`, and measured by `measure.measure`
with the grid as its list of protocols: each batch of images goes through the encoder once, its maps
are aligned once per alignment and fed to every estimator. The grid's defaults are
config.SensitivityConfig's, written once; a grid file (`--grid`) and the flags (cli.py's parser)
replace them; the command's body is commands.py's.

A job's stored config is data: read through the store as plain values, never instantiated. The
built-in cases are rebuilt from the package (the study's stacks by its Encoder, the cases beyond the
study by the class the package's own preset names); a module of your own only from a target the user
names with `--encoder`, and then through the module builder (an nn.Module subclass, no nested
`_target_`). Nothing is downloaded (the stored `dataset.download` is set off).

Writes to the sweep directory:
- `sensitivity.csv`: one row per protocol: `align, bins, estimator, mi_max_<case>..., mi_mean_<case>...,
  best, ranking, own_protocol, same_ranking`: the cases' mean max-MI and mean-MI (over images and seeds),
  the case with the highest mean max-MI, the order of the cases by it (`c>a>b`), whether the row is the
  sweep's own protocol, and whether its ranking equals the one under the sweep's own protocol. A sweep
  with several settings (overrides other than case and seed) gets a leading `setting` column.
- `sensitivity_jobs.csv`: one row per job and protocol: `job, case, seed, align, bins, estimator,
  n_images, mi_mean, mi_max, seconds` (seconds in the estimator; 0 where the maps already have the
  image's size, cases c and d, and the other alignment's result is reused).

Runtime (2 busy CPU cores, per image-map pair): the histogram about 0.03 ms per bin count, gcmi about
0.2 ms, ksg (numba kNN on `measure.ksg_samples` = 1024 pixels) about 1 ms, so the default grid on a
4-case STL-10 sweep (5000 images, 32 maps; a and b measured under both alignments, c and d once) costs
about 15 minutes of ksg per seed; `--estimators histogram gcmi` or `--n-images` keep it to minutes.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import config, rundir, store
from .analysis.pixels import measured_window
from .analysis.sweep import Job, load, warn_left_out
from .choices import Estimator
from .config import SensitivityConfig
from .errors import ConfigError, Damaged, RunError, first_line, printable
from .measure import Hooks, Plan, Protocol, measure
from .model.encoders import build_encoder
from .model.probe import Recorder, probe_geometry
from .runtime import pick_device, progress
from .sources import load_datasets

log = logging.getLogger("infomax")

PROTOCOL = ["align", "bins", "estimator"]
JOB_COLUMNS = ["job", "case", "seed", *PROTOCOL, "n_images", "mi_mean", "mi_max", "seconds"]


def grid(aligns, bins, estimators) -> list[Protocol]:
    """Every protocol of the grid: the histogram at each bin count, ksg and gcmi once per alignment."""
    out = []
    for a in aligns:
        for e in estimators:
            for b in sorted(set(int(x) for x in bins)) if e == "histogram" else [None]:
                out.append(Protocol(str(a), str(e), b))
    return list(dict.fromkeys(out))


def load_grid(path: Path | None = None, **overrides: Any) -> SensitivityConfig:
    """The grid: SensitivityConfig's defaults, then the grid file's keys (`--grid`), then the given keys
    (non-None: the flags), checked against the schema."""
    try:
        cfg = OmegaConf.structured(SensitivityConfig)
        if path is not None:
            cfg = OmegaConf.merge(cfg, OmegaConf.load(path))
        given = {k: v for k, v in overrides.items() if v is not None}
        if given:
            cfg = OmegaConf.merge(cfg, given)
        out = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        where = f"{path} and the flags" if path is not None else "the flags"
        raise ConfigError(
            f"the sensitivity grid ({where}) is not valid: {str(e).splitlines()[0]}"
        ) from None
    if any(b < 2 for b in out.bins):
        raise ConfigError(f"bins must all be >= 2, got {list(out.bins)}")
    if out.n_images is not None and out.n_images < 1:
        raise ConfigError(f"--n-images must be >= 1 (or left out for all), got {out.n_images}")
    if (
        not out.align
        or not out.estimators
        or (Estimator.histogram in out.estimators and not out.bins)
    ):
        raise ConfigError(
            "the grid is empty: give at least one align, one estimator and (for the histogram) one bin count"
        )
    return out


def package_cases() -> dict[str, dict]:
    """The built-in cases as the package defines them (conf/case/*.yaml, `custom` aside): name -> node."""
    out = {}
    for path in sorted((config.CONF_DIR / "case").glob("*.yaml")):
        node = yaml.safe_load(path.read_text())
        node.pop("defaults", None)
        if path.stem != "custom":
            out[str(node["name"])] = node
    return out


def _case_node(job: Job, stored: dict, targets: tuple[str, ...]) -> dict:
    """The job's case, to be built: a built-in case's code as the package has it (its data, such as a
    stack's layers, as stored); a module of your own only when its `_target_` is one of `targets`
    (given on the command line). Nothing the file names is imported otherwise."""
    case = stored.get("case")
    if not isinstance(case, dict):
        raise ConfigError(
            f"job {job.name}'s .hydra/config.yaml has no case: cannot rebuild its encoder."
        )
    encoder, builtin = case.get("encoder"), package_cases().get(str(case.get("name")))
    if encoder is None and builtin is not None and builtin.get("encoder") is None:
        return {**case, "encoder": None}  # the study's stack of layers: the package's Encoder
    target = encoder.get("_target_") if isinstance(encoder, dict) else None
    if builtin is not None and builtin.get("encoder") and target == builtin["encoder"]["_target_"]:
        return case  # a built-in beyond the study: the package's own class
    if target in targets:
        return case
    raise ConfigError(
        f"job {job.name} was trained with a module named by its .hydra/config.yaml "
        f"({printable(target)!r}): infomax builds no code a file names; if you trust it, name it "
        f"on the command line: --encoder {printable(target)} (with its module on the path: "
        "PYTHONPATH=...)."
    )


def job_config(job: Job, targets: tuple[str, ...] = ()) -> config.Config:
    """The job's composed config (.hydra/config.yaml), read as data, on the schema, as run_job saw it;
    its case rebuilt as `_case_node` says (`targets`: the modules the user named with --encoder), and
    nothing downloaded (dataset.download off)."""
    try:
        stored = store.remembered_config(job.path, job.root)
    except Damaged as e:
        raise RunError(f"{e}: cannot rebuild its encoder.") from None
    if stored is None:
        raise ConfigError(
            f"job {job.name} has no .hydra/config.yaml: cannot rebuild its encoder; "
            "re-measuring needs the job's config."
        )
    stored = {**stored, "case": _case_node(job, stored, targets)}
    config.register()
    try:
        merged = OmegaConf.merge(OmegaConf.structured(config.Config), OmegaConf.create(stored))
        merged.dataset.download = False
        return config.typed(merged)
    except OmegaConfBaseException as e:
        path = printable(job.path / rundir.HYDRA_CONFIG)
        raise ConfigError(f"{path} does not match the schema: {str(e).splitlines()[0]}") from None


def own_protocol(cfg: config.Config) -> Protocol:
    """The protocol the job measured its tables with."""
    return Protocol.of(cfg.measure)


def remeasure(
    job: Job,
    cfg: config.Config,
    protocols: list[Protocol],
    device: torch.device,
    n_images: int | None = None,
    hooks: Hooks | None = None,
) -> list[dict]:
    """The job's trained encoder re-measured under each protocol (`measure.measure`, no nulls): one row
    per protocol with the means over images of the per-image mean and max MI (as summary.json has
    them), and the seconds its estimator took."""
    weights = job.path / rundir.ENCODER
    if not os.path.lexists(weights):
        raise RunError(f"job {job.name} has no {rundir.ENCODER}: rerun the sweep to finish it.")
    data = load_datasets(cfg.dataset, bool(cfg.train.holdout))[1]  # the images the job measured
    encoder = build_encoder(cfg.case, cfg.encoder)
    # the geometry is the architecture's: probed on the module as built, before its weights load
    geom = probe_geometry(encoder, data.size, Recorder.of(encoder, cfg.case.record_layers))
    window = measured_window(job.summary)  # the job's pixels: its sweep's common ones, or its own
    if window is not None and geom.problem is None and window != geom.own_window():
        try:
            geom = geom.on(window)
        except ValueError as e:
            raise RunError(
                f"job {job.name}'s recorded pixels do not fit its encoder: {e}."
            ) from None
    try:
        # weights_only, a regular file inside the sweep: runs no code
        encoder.load_state_dict(store.load_torch(weights, root=job.root))
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise RunError(
            f"{printable(weights)} does not fit job {job.name}'s encoder ({first_line(e)[:200]}): "
            "rerun the job with overwrite=true to train it again."
        ) from None
    encoder.to(device).eval()
    n = len(data) if n_images is None else min(int(n_images), len(data))
    images = (data if n == len(data) else data.subset(range(n))).on(device)
    plan = Plan(cfg.measure, int(cfg.seed), tuple(protocols))
    m = measure(encoder, geom, images, plan, hooks)
    rows = []
    for p in protocols:
        values = m.by_protocol[p]
        rows.append(
            {
                "job": job.path.name,  # a table's cell, not a terminal's
                "case": str(cfg.case.name),
                "seed": int(cfg.seed),
                "align": p.align,
                "bins": p.bins,
                "estimator": p.estimator,
                "n_images": n,
                "mi_mean": float(pd.Series(values.mean(1)).mean()),
                "mi_max": float(pd.Series(values.max(1)).mean()),
                "seconds": round(m.seconds[p], 3),
            }
        )
    return rows


def _ranking(means: pd.Series) -> str:
    """Cases by decreasing mean max-MI (ties by name): 'c>a>b'."""
    order = sorted(means.index, key=lambda c: (-means[c], c))
    return ">".join(order)


def sensitivity_table(per_job: pd.DataFrame, own: dict) -> pd.DataFrame:
    """One row per (setting,) protocol from the per-job rows; `own`: {setting or None: Protocol}."""
    has_setting = "setting" in per_job.columns
    keys = (["setting"] if has_setting else []) + PROTOCOL
    # -1: no bins (group keys cannot be NA)
    frame = per_job.assign(bins=per_job["bins"].astype("Int64").fillna(-1))
    cases = sorted(frame["case"].astype(str).unique())
    wide = frame.groupby([*keys, "case"], sort=False)[["mi_max", "mi_mean"]].mean().unstack("case")
    wide.columns = [f"{metric}_{case}" for metric, case in wide.columns]
    wide = wide.reset_index()
    wide["bins"] = wide["bins"].astype("Int64").mask(wide["bins"] < 0)
    wide = wide[[*keys, *[f"mi_max_{c}" for c in cases], *[f"mi_mean_{c}" for c in cases]]]
    max_cols = [f"mi_max_{c}" for c in cases]
    wide["best"] = wide[max_cols].idxmax(axis=1).str.removeprefix("mi_max_")
    wide["ranking"] = [_ranking(pd.Series(r, index=cases)) for r in wide[max_cols].to_numpy()]

    def is_own(row) -> bool:
        p = own[row["setting"] if has_setting else None]
        bins = None if pd.isna(row["bins"]) else int(row["bins"])
        return (row["align"], row["estimator"], bins) == (p.align, p.estimator, p.bins)

    wide["own_protocol"] = wide.apply(is_own, axis=1).astype(bool)
    reference = {
        (r["setting"] if has_setting else None): r["ranking"]
        for _, r in wide[wide.own_protocol].iterrows()
    }
    wide["same_ranking"] = [
        reference.get(s) == r
        for s, r in zip(wide["setting"] if has_setting else [None] * len(wide), wide["ranking"])
    ]
    if has_setting:  # otherwise the grid's order (the rows come in it)
        wide = wide.sort_values("setting", kind="stable")
    return wide.reset_index(drop=True)


def run(
    sweep_dir: Path,
    grid_cfg: SensitivityConfig,
    show_progress: bool = True,
    targets: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-measure every job the sweep's tables use (or the run's) under the grid; write sensitivity.csv
    and sensitivity_jobs.csv; return (table, per-job rows). `targets`: the modules of your own the user
    named (--encoder), the only ones built."""
    sweep = load(Path(sweep_dir))  # a ConfigError (one line) when nothing has finished
    warn_left_out(sweep)
    device = pick_device(grid_cfg.device)
    base = grid(list(grid_cfg.align), grid_cfg.bins, list(grid_cfg.estimators))
    cfgs = {j.path: job_config(j, tuple(targets)) for j in sweep.jobs}
    multi = len({j.setting for j in sweep.jobs}) > 1
    own = {}
    for j in sweep.jobs:
        own.setdefault(j.setting if multi else None, own_protocol(cfgs[j.path]))
    # the sweep's own protocol is the reference
    protocols = list(dict.fromkeys([*base, *own.values()]))
    # how many images each job measured, from its summary: nothing is loaded to count them
    counts = [int(j.summary["n_images"]) for j in sweep.jobs]
    total = sum(
        counts if grid_cfg.n_images is None else (min(grid_cfg.n_images, n) for n in counts)
    )
    rows = []
    with progress(show_progress) as bar:
        task = bar.add_task("re-measure", total=total, info="")
        hooks = Hooks(on_batch=lambda k: bar.advance(task, k))
        for j in sweep.jobs:
            cfg = cfgs[j.path]
            bar.update(task, info=f"case {cfg.case.name} seed {cfg.seed}")
            for r in remeasure(j, cfg, protocols, device, grid_cfg.n_images, hooks):
                rows.append({**({"setting": j.setting} if multi else {}), **r})
    per_job = pd.DataFrame(rows, columns=(["setting"] if multi else []) + JOB_COLUMNS).astype(
        {"bins": "Int64"}
    )
    table = sensitivity_table(per_job, own)
    rundir.write_csv(sweep.path / rundir.SENSITIVITY_JOBS, per_job)
    rundir.write_csv(sweep.path / rundir.SENSITIVITY, table)
    return table, per_job


def summary_lines(table: pd.DataFrame, per_job: pd.DataFrame) -> list[str]:
    """What the table says, in sentences: the reference ranking, how many protocols keep it, timings."""
    lines = []
    parts = table.groupby("setting", sort=True) if "setting" in table.columns else [(None, table)]
    for setting, t in parts:
        ref = t[t.own_protocol].iloc[0]
        where = f"[{setting}] " if setting is not None else ""
        kept = int(t.same_ranking.sum())
        best = t.best.value_counts()
        lines.append(
            f"{where}ranking under the sweep's own protocol ({_label(ref)}): {ref.ranking.replace('>', ' > ')}; "
            f"{kept} of {len(t)} protocols give the same ranking; best case: "
            + ", ".join(f"{c} in {k}" for c, k in best.items())
        )
    secs = per_job.groupby("estimator")["seconds"].sum()
    lines.append(
        "estimator time (all jobs): "
        + ", ".join(f"{e} {s:.1f} s" for e, s in secs.sort_values().items())
    )
    return lines


def _label(row) -> str:
    return f"{row['align']}, {row['estimator']}" + (
        f", {int(row['bins'])} bins" if not pd.isna(row["bins"]) else ""
    )


def grid_of(args: argparse.Namespace) -> SensitivityConfig:
    """The grid the parsed flags ask for: the defaults, the grid file's keys, the flags given."""
    if args.grid is not None and not args.grid.is_file():
        raise ConfigError(f"--grid {args.grid}: no such file")
    return load_grid(
        args.grid,
        align=args.align,
        bins=args.bins,
        estimators=args.estimators,
        n_images=args.n_images,
        device=args.device,
    )
