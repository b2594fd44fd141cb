"""One job, as a recipe of named phases:

    prepare -> measure the untrained encoder -> train -> measure -> write tables and pictures
            -> report -> summary (written last: the job has finished)

Each phase is a function of the typed config (config.Config) and what the phases before it made.
runtime.PhaseClock times them; summary.json records the split as `phase_seconds`.
Where and how the job runs (device, threads, signals, progress, provenance) is runtime.py's; the run
directory's names, writes and rules are rundir.py's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from . import config, dirlock, jobstart, region, rundir, runtime, store
from .analysis import compare
from .analysis.sweep import Job, Sweep
from .choices import LoggerKind
from .config import Config
from .errors import ConfigError, Refused
from .infoplane import InfoPlane
from .limits import check_null_partners
from .measure import Hooks, Measurement, NotFinite, Plan, measure, not_finite
from .model.build import BuiltCase, build_case
from .model.geometry import Geometry, Window
from .model.objectives import DeepInfoMax
from .model.probe import Recorder
from .render import figures
from .sources import load_datasets
from .sources.gray import GrayImages
from .tracker import make_tracker, require_tensorboard
from .train import TrainHooks, seed_everything, train

log = logging.getLogger("infomax")


@dataclass
class Parts:
    """What `prepare` makes: the images trained on and measured (their batches on the job's device),
    the networks and the geometry."""

    data: GrayImages  # trained on
    measured: GrayImages  # measured (the same set, or the held-out images)
    encoder: torch.nn.Module
    critics: DeepInfoMax
    geom: Geometry
    batch: int  # images per training step: train.batch_size, or every training image when fewer
    recorder: Recorder  # which layers the information plane records
    # the geometry the tables are measured with: `geom` on the sweep's common pixels (region.py), or
    # `geom` itself; summary.json's `pixels` says which (None: not aligned by geometry)
    measured_geom: Geometry | None = None
    pixels: dict | None = None


# ----------------------------------------------------------------------------------------- phases
def load_data(cfg: Config) -> tuple[GrayImages, GrayImages]:
    """(the images trained on, the images measured), read but nothing written; the settings the data
    cannot serve are a ConfigError here, before the job writes anything."""
    data, measured = load_datasets(cfg.dataset, cfg.train.holdout)
    if len(data) < 2:
        raise ConfigError(
            f"dataset.n_images={len(data)} leaves fewer than 2 images: training needs at least 2."
        )
    batch = min(cfg.train.batch_size, len(data))
    if cfg.train.negatives >= batch:
        raise ConfigError(
            f"train.negatives={cfg.train.negatives} needs batches of more than {cfg.train.negatives} "
            f"images, but there are {len(data)} training images: use train.negatives={batch - 1} or "
            "fewer, or more images."
        )
    check_null_partners(cfg.measure.null_partners, measured.groups, measured.name)
    return data, measured


def networks(cfg: Config) -> tuple[BuiltCase, DeepInfoMax]:
    """The encoder and the Deep InfoMax networks, seeded (same seed, same weights), the encoder's
    geometry probed once (model.build: its own random generator, so the weights and every random draw
    after are those without it); a case that cannot be built or measured is a ConfigError here."""
    seed_everything(cfg.seed)
    built = build_case(cfg)
    critics = DeepInfoMax(
        built.geom.channels[-1],
        cfg.train.hidden,
        cfg.objective,
        cfg.train.negatives,
        cfg.measure.align,
        built.geom,
    )
    return built, critics


def prepare(
    cfg: Config,
    run_dir: Path,
    device: torch.device,
    data: tuple[GrayImages, GrayImages],
    nets: tuple[BuiltCase, DeepInfoMax],
) -> Parts:
    """The networks and the images on the device; dataset=folder writes images.csv, which file each
    image id is."""
    (data, measured), (built, critics) = data, nets
    batch = min(cfg.train.batch_size, len(data))
    if batch < cfg.train.batch_size:
        log.warning(
            f"train.batch_size={cfg.train.batch_size} is more than the {len(data)} training images: "
            f"each step uses all {batch} (summary.json records batch_size={batch})."
        )
    listed = [d for d in dict.fromkeys([data, measured]) if d.files is not None]
    if listed:
        files = pd.concat(
            [
                pd.DataFrame({"image_id": d.image_ids, "label": d.labels, "path": d.files})
                for d in listed
            ]
        )
        files = files.drop_duplicates("image_id").sort_values("image_id")
        rundir.write_csv(run_dir / rundir.IMAGES_CSV, files[rundir.IMAGES_COLUMNS])
    encoder, critics = built.encoder.to(device), critics.to(device)
    if cfg.train.channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
        critics = critics.to(memory_format=torch.channels_last)
    images = data.on(device)
    measured_images = images if measured is data else measured.on(device)
    measured_geom, pixels = region.for_job(cfg, built.geom)
    return Parts(
        images, measured_images, encoder, critics, built.geom, batch, built.recorder,
        measured_geom, pixels,
    )  # fmt: skip


def measure_encoder(
    cfg: Config, parts: Parts, rt: runtime.Runtime, trained: bool
) -> tuple[Measurement, float]:
    """MI of every measured image with each map (trained: with the nulls, the other alignments and
    the example pictures; untrained: the control); returns it and the seconds it took."""
    t0 = time.perf_counter()
    m = parts.measured
    what = "measure" if trained else "measure (untrained)"
    examples = m.example_positions[: cfg.measure.examples] if trained else ()
    plan = Plan.for_job(cfg.measure, cfg.seed, trained, examples)
    with rt.task(f"case {cfg.case.name} {what}", len(m)) as task:
        hooks = Hooks(lambda k: rt.bar.advance(task, k), rt.stop)
        try:
            result = measure(parts.encoder, parts.measured_geom, m, plan, hooks)
        except NotFinite as e:
            when = f"step {cfg.train.steps}, after training" if trained else "step 0, untrained"
            raise not_finite(cfg, e, f"measured ({when})") from None
    return result, time.perf_counter() - t0


def train_encoder(
    cfg: Config, parts: Parts, rt: runtime.Runtime, run_dir: Path, tracker
) -> tuple[pd.DataFrame, float, float]:
    """Train (resuming from the checkpoint when there is one); loss.csv and encoder.pt; the
    information plane along the way. Returns the loss table, the seconds it took and the seconds of
    those the information plane took."""
    t0 = time.perf_counter()
    resuming = rundir.can_resume(run_dir)
    if resuming:
        log.info(f"resuming from {run_dir / rundir.CHECKPOINT}")
    with rt.task(f"case {cfg.case.name} train", cfg.train.steps) as task:
        plane = InfoPlane(run_dir, cfg, parts, resuming)

        def on_step(step: int, row: dict) -> None:
            rt.bar.update(task, completed=step, info=f"loss {row['loss']:.4f}")
            plane.record(step)
            tracker.step(step, row)

        history = train(
            parts.encoder,
            parts.critics,
            parts.data,
            cfg.train,
            cfg.seed,
            checkpoint=run_dir / rundir.CHECKPOINT,
            hooks=TrainHooks(on_step, rt.stop),
        )
    loss = pd.DataFrame(history, columns=rundir.LOSS_COLUMNS)
    rundir.write_csv(run_dir / rundir.LOSS_CSV, loss)
    weights = {k: v.cpu() for k, v in parts.encoder.state_dict().items()}
    rundir.save_torch(run_dir / rundir.ENCODER, weights)
    return loss, time.perf_counter() - t0, plane.seconds


def tables(
    data: GrayImages, trained: Measurement, init: Measurement
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """mi_per_map and mi_per_image (the contract's columns, rundir's lists, then per other alignment
    measured, the protocols after the job's own, `mi_mean_<align>`, `mi_max_<align>`). Per image: the
    mean and max over its maps of the MI, of the null (its maps against other images, the mean over
    the null partners) and of the shuffled null, MI above the null (mean - null mean, max - null
    max) and the untrained control."""
    n, c = trained.mi.shape
    ids, labels = np.asarray(data.image_ids), np.asarray(data.labels, dtype=object)
    per_map = pd.DataFrame(
        {
            "image_id": np.repeat(ids, c),
            "label": np.repeat(labels, c),
            "map": np.tile(np.arange(c), n),
            "mi": trained.mi.ravel(),
            "mi_null": trained.mi_null.ravel(),
            "mi_null_sd": trained.mi_null_sd.ravel(),
            "mi_shuffled": trained.mi_shuffled.ravel(),
            "mi_init": init.mi.ravel(),
        }
    )
    mi, null = trained.mi, trained.mi_null
    per_image = pd.DataFrame(
        {
            "image_id": ids,
            "label": labels,
            "group": np.asarray(data.groups, dtype=object),
            "mi_mean": mi.mean(1),
            "mi_max": mi.max(1),
            "best_map": mi.argmax(1),
            "mi_null_mean": null.mean(1),
            "mi_null_max": null.max(1),
            "mi_shuffled_mean": trained.mi_shuffled.mean(1),
            "mi_mean_above_null": mi.mean(1) - null.mean(1),
            "mi_max_above_null": mi.max(1) - null.max(1),
            "mi_mean_init": init.mi.mean(1),
            "mi_max_init": init.mi.max(1),
        }
    )
    per_image = per_image[rundir.MI_PER_IMAGE_COLUMNS]  # the contract's order, declared once
    for p in trained.protocols[1:]:
        v = trained.by_protocol[p]
        per_image[f"mi_mean_{p.align}"], per_image[f"mi_max_{p.align}"] = v.mean(1), v.max(1)
    return per_map[rundir.MI_PER_MAP_COLUMNS], per_image


def draw_pictures(
    cfg: Config, run_dir: Path, data: GrayImages, loss: pd.DataFrame, m: Measurement
) -> dict:
    """loss.png, infoplane.png, features/<image>.png and features/examples.npz; returns the examples
    {name: (image, maps, mi)}."""
    case = cfg.case.name
    title = f"case {case}: training loss"
    rundir.write_bytes(
        run_dir / rundir.LOSS_PNG,
        figures.png(figures.loss_figure(loss, title, figures.case_color(case))),
    )
    if (run_dir / rundir.INFOPLANE).is_file():
        plane = store.files.read_csv(run_dir, run_dir / rundir.INFOPLANE)
        fig = figures.infoplane_figure(plane, f"case {case}: MI of each layer during training")
        rundir.write_bytes(run_dir / rundir.INFOPLANE_PNG, figures.png(fig))
    examples = {}
    for pos, (image, maps) in sorted(m.examples.items()):
        image_id, label = int(data.image_ids[pos]), data.labels[pos]
        name = f"{image_id:05d}_{label}"
        title = f"case {case}, image {image_id} ({label}): mean MI {m.mi[pos].mean():.3f} nats"
        fig = figures.features_figure(image, maps, m.mi[pos], title, case)
        rundir.write_bytes(run_dir / rundir.FEATURES / f"{name}.png", figures.png(fig))
        examples[name] = (image, maps, m.mi[pos])
    rundir.save_example_maps(run_dir, examples)
    return examples


def summarise(
    cfg: Config,
    parts: Parts,
    rt: runtime.Runtime,
    per_image: pd.DataFrame,
    loss: pd.DataFrame,
    seconds: dict[str, float],
    alt_aligns: list[str],
) -> dict:
    """summary.json's content: the settings (with the other alignments measured, `alt_aligns`), the
    means over images, the timings and provenance."""
    data, measured, geom = parts.data, parts.measured, parts.geom
    means = [c for c in per_image.columns if c.startswith("mi_")]  # in the table's order
    last = loss.iloc[-1]
    return {
        "format": store.FORMAT,
        "case": cfg.case.name,
        "dataset": data.name,
        "split": measured.split,
        "n_images": len(measured),
        "n_train_images": len(data),
        "holdout": bool(cfg.train.holdout),
        "bins": cfg.measure.bins,
        "align": str(cfg.measure.align),
        "alt_aligns": alt_aligns,
        "estimator": str(cfg.measure.estimator),
        "objective": str(cfg.objective),
        "seed": cfg.seed,
        "steps": cfg.train.steps,
        "batch_size": parts.batch,
        "lr": cfg.train.lr,
        "layer_sizes": [data.size, *geom.map_sizes],
        "map_offset": geom.offsets[-1],
        "region": list(parts.measured_geom.region),  # the image pixels measured (`pixels`)
        **({"pixels": parts.pixels} if parts.pixels is not None else {}),
        # each recorded layer's map size, stride, receptive-field offset and radius, as measured
        "geometry": geom.layers(),
        **{k: float(per_image[k].mean()) for k in means},
        "study_examples": [int(measured.image_ids[p]) for p in measured.study_positions],
        "final_loss": float(last["loss"]),
        **{f"final_{c}": float(last[c]) for c in rundir.MI_ESTIMATE_COLUMNS},  # final_local_mi, ...
        **{f"{k}_seconds": round(v, 3) for k, v in seconds.items()},
        "device": str(rt.device),
        "threads": rt.threads,
        **runtime.provenance(),
        **data.info,
    }


# ------------------------------------------------------------------------------------------ the job
def run_job(
    cfg: DictConfig | Config,
    run_dir: Path,
    show_progress: bool = True,
    job_files: dict[str, str] | None = None,
) -> dict:
    """Train one encoder case, measure MI, write the run directory; return the summary.

    Nothing is written into `run_dir` before its lock is held, the config it remembers agrees with this
    one (or resume=force), the data is read and the networks are built: a run refused (busy directory,
    another config) or stopped by a configuration error leaves the directory as it was. Then
    `job_files` (the .hydra/ files, jobstart.hydra_files) are written first."""
    clock = runtime.PhaseClock()
    try:
        cfg = config.typed(cfg)
        config.check(cfg)
    except ConfigError as e:
        raise Refused(str(e)) from None
    run_dir = Path(run_dir)
    with dirlock.lock(run_dir):  # a second run into this directory stops here, with one line
        if diff := jobstart.check_remembered(cfg, run_dir):
            log.warning(
                f"{run_dir}: resume=force: used although made with {config.describe(diff)}."
            )
        if rundir.is_finished(run_dir) and not cfg.overwrite:
            if (summary := jobstart.finished(run_dir)) is not None:
                log.info(
                    f"{run_dir} already holds a finished run (summary.json): skipped; overwrite=true "
                    "redoes it."
                )
                return summary
            rundir.start_over(run_dir)
        with runtime.session(cfg.device, show_progress) as rt:  # device=cuda without one: exit 2
            data = load_data(cfg)  # what the data cannot serve: exit 2, nothing written
            if cfg.logger.kind == LoggerKind.tensorboard:
                require_tensorboard()  # without its package: exit 2, nothing written
            clock.lap("start")  # the lock, the directory's checks, reading the data
            try:
                nets = networks(cfg)
            except ConfigError as e:  # a case that cannot be built or measured: nothing written
                raise Refused(str(e)) from None
            if cfg.overwrite:
                rundir.start_over(run_dir)
            (run_dir / rundir.FAILED).unlink(missing_ok=True)
            rundir.write_job_files(run_dir, job_files or {})
            tracker = make_tracker(cfg.logger, run_dir)
            return _recipe(cfg, run_dir, rt, tracker, data, nets, clock)


def _recipe(
    cfg: Config,
    run_dir: Path,
    rt: runtime.Runtime,
    tracker,
    data: tuple[GrayImages, GrayImages],
    nets: tuple[BuiltCase, DeepInfoMax],
    clock: runtime.PhaseClock,
) -> dict:
    parts = prepare(cfg, run_dir, rt.device, data, nets)
    _log_start(cfg, parts, rt)
    clock.lap("prepare")
    init, init_seconds = measure_encoder(cfg, parts, rt, trained=False)
    clock.lap("measure_init")
    loss, train_seconds, plane_seconds = train_encoder(cfg, parts, rt, run_dir, tracker)
    clock.lap("train")
    clock.split("train", "infoplane", plane_seconds)
    trained, measure_seconds = measure_encoder(cfg, parts, rt, trained=True)
    clock.lap("measure")
    clock.split("measure", "null_partners", trained.null_seconds)
    per_map, per_image = tables(parts.measured, trained, init)
    rundir.write_csv(run_dir / rundir.MI_PER_MAP, per_map)
    rundir.write_csv(run_dir / rundir.MI_PER_IMAGE, per_image)
    clock.lap("tables")
    examples = draw_pictures(cfg, run_dir, parts.measured, loss, trained)
    clock.lap("pictures")
    seconds = {"train": train_seconds, "measure": measure_seconds, "measure_init": init_seconds}
    alt_aligns = [p.align for p in trained.protocols[1:]]  # the job's other alignments
    summary = summarise(cfg, parts, rt, per_image, loss, seconds, alt_aligns)
    tracker.finish(summary, examples)
    clock.lap("logger")
    job = Job.written(run_dir, summary, per_image, per_map, loss)  # the tables in hand, not re-read
    run = Sweep(run_dir, "run", [job])
    compare.write_report(run, compare.analyse(run))
    clock.lap("report")
    summary = {**summary, "phase_seconds": clock.rounded()}
    rundir.write_json(run_dir / rundir.SUMMARY, summary)  # written last: the job has finished
    (run_dir / rundir.CHECKPOINT).unlink(missing_ok=True)
    _log_end(summary)
    return summary


def _log_start(cfg: Config, parts: Parts, rt: runtime.Runtime) -> None:
    geom, data, measured = parts.geom, parts.data, parts.measured
    sizes = " -> ".join(map(str, [data.size, *geom.map_sizes]))
    held = f" (measured on {len(measured)} held out)" if measured is not data else ""
    where = ""
    if parts.pixels is not None:
        p = parts.pixels
        window = Window(p["lo"], p["hi"], p["step"], p["phase"]).text()
        common = f", common to cases {', '.join(p['cases'])}" if len(p["cases"]) > 1 else ""
        where = f" ({window}{common}; map offset {geom.offsets[-1]:+d})"
    log.info(
        f"case {cfg.case.name}: {sizes}, {len(data)} {data.name} images{held}, maps aligned by "
        f"{cfg.measure.align}{where}, device {rt.device}"
    )


def _log_end(s: dict) -> None:
    log.info(
        f"case {s['case']}: mean MI {s['mi_mean']:.4f} nats, max MI {s['mi_max']:.4f} nats "
        f"(null {s['mi_null_mean']:.4f} / {s['mi_null_max']:.4f}; untrained {s['mi_mean_init']:.4f} / "
        f"{s['mi_max_init']:.4f}); objective MI estimates local {s['final_local_mi']:.3f}, global "
        f"{s['final_global_mi']:.3f} nats; {s['train_seconds'] + s['measure_seconds']:.1f} s"
    )
