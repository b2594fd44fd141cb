"""One job: data -> encoder -> measure (untrained) -> train -> measure -> the run directory's files."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import config, rundir
from .data import DECODE_ONCE_BYTES, GrayImages, load_datasets
from .encoders import build_encoder
from .errors import ConfigError, RunError
from .logger import make_logger
from .measure import Measurement, enum_value, layer_mi, measure
from .objectives import DeepInfoMax
from .train import LOSS_COLUMNS, seed_everything, train

log = logging.getLogger("infomax")
# Keep a dataset on the device for training when its gray uint8 pixels fit in this many bytes.
ON_DEVICE_BYTES = 1 << 30
IMAGES_CSV = "images.csv"  # dataset=folder: image_id, label, path (relative to dataset.root)


def pick_device(kind: str) -> torch.device:
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device=cuda but no CUDA device is visible: use device=cpu or device=auto."
        )
    if not torch.cuda.is_available():
        return torch.device("cpu")
    # the jobs of a multirun launched side by side (joblib) take the GPUs in turn
    return torch.device("cuda", _job_number() % torch.cuda.device_count())


_DEFAULT_THREADS: list[int] = []  # torch's thread count before any job set it


def set_threads(n: int | None) -> int:
    """Give torch (and numba's kernels) n CPU threads, or torch's default for None; return the count."""
    if not _DEFAULT_THREADS:
        _DEFAULT_THREADS.append(torch.get_num_threads())
    n = n or _DEFAULT_THREADS[0]
    torch.set_num_threads(n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    return n


def _job_number() -> int:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return 0
    num = OmegaConf.select(HydraConfig.get(), "job.num", default=None, throw_on_missing=False)
    return int(num) if isinstance(num, int) else 0  # a single run has no job number


class StopFlag:
    """SIGINT/SIGTERM (and SIGUSR2, the time-limit warning the slurm preset asks for) set a flag that
    training and measurement poll between steps (then checkpoint)."""

    def __init__(self) -> None:
        self.name: str | None = None

    def __call__(self) -> str | None:
        return self.name

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        def handler(signum, frame):
            if self.name is not None:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.name = signal.Signals(signum).name

        names = ("SIGINT", "SIGTERM", "SIGUSR2")
        old = {
            s: signal.signal(s, handler)
            for s in (getattr(signal, n) for n in names if hasattr(signal, n))
        }
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def progress(enabled: bool) -> Progress:
    """A rich progress display, quiet when stderr is not a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("infomax", "torch", "torchvision", "numpy", "hydra-core"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _image_loader(data: GrayImages, device: torch.device):
    """positions -> float (B, 1, S, S) on the device. Sets that fit (STL-10 train: 46 MB) are copied to
    the device once; larger ones are read per batch into pinned memory and copied without blocking.
    Images decoded from files (folder, torchvision) are decoded once only under a smaller budget."""
    n = len(data)
    if n * data.size * data.size <= (DECODE_ONCE_BYTES if data.lazy else ON_DEVICE_BYTES):
        pixels = data.all_uint8().to(device)
        return lambda idx: pixels[idx.to(device)].unsqueeze(1).float().div_(255)
    pin = device.type == "cuda"
    return lambda idx: (data.batch(idx).pin_memory() if pin else data.batch(idx)).to(
        device, non_blocking=True
    )


class InfoPlane:
    """Every `measure.infoplane_every` steps, the mean MI between a fixed probe batch and each layer's maps,
    appended to infoplane.csv (rewritten atomically; rows past a resumed checkpoint are dropped)."""

    def __init__(self, run_dir: Path, encoder, images, n: int, cfg: Any, geom):
        self.path, self.encoder, self.cfg, self.geom = (
            run_dir / rundir.INFOPLANE,
            encoder,
            cfg,
            geom,
        )
        self.every = cfg.measure.infoplane_every
        self.probe = images(torch.arange(min(cfg.measure.probe_images, n)))
        self.rows = pd.read_csv(self.path).to_dict("records") if self.path.is_file() else []

    def record(self, step: int) -> None:
        if not self.every or step % self.every:
            return
        self.rows = [r for r in self.rows if r["step"] < step]
        for layer, value in enumerate(
            layer_mi(self.encoder, self.probe, self.cfg.measure, self.cfg.seed, self.geom), start=1
        ):
            self.rows.append({"step": step, "layer": layer, "mi": value})
        rundir.write_csv(self.path, pd.DataFrame(self.rows, columns=["step", "layer", "mi"]))


def tables(
    data: GrayImages, trained: Measurement, init: Measurement
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """mi_per_map and mi_per_image frames (contract columns first, then extras). Per image: the mean and
    max over its maps of the MI, of the null (its maps against another image) and of the shuffled null,
    MI above the null (mean - null mean, max - null max), the untrained control, and the mean and max
    under each other alignment measured (`mi_mean_<align>`, `mi_max_<align>`)."""
    n, c = trained.mi.shape
    ids = np.asarray(data.image_ids)
    labels = np.asarray(data.labels, dtype=object)
    per_map = pd.DataFrame(
        {
            "image_id": np.repeat(ids, c),
            "label": np.repeat(labels, c),
            "map": np.tile(np.arange(c), n),
            "mi": trained.mi.ravel(),
            "mi_null": trained.mi_null.ravel(),
            "mi_shuffled": trained.mi_shuffled.ravel(),
            "mi_init": init.mi.ravel(),
        }
    )
    null_mean, null_max = trained.mi_null.mean(1), trained.mi_null.max(1)
    per_image = pd.DataFrame(
        {
            "image_id": ids,
            "label": labels,
            "group": np.asarray(data.groups, dtype=object),
            "mi_mean": trained.mi.mean(1),
            "mi_max": trained.mi.max(1),
            "best_map": trained.mi.argmax(1),
            "mi_null_mean": null_mean,
            "mi_null_max": null_max,
            "mi_shuffled_mean": trained.mi_shuffled.mean(1),
            "mi_mean_above_null": trained.mi.mean(1) - null_mean,
            "mi_max_above_null": trained.mi.max(1) - null_max,
            "mi_mean_init": init.mi.mean(1),
            "mi_max_init": init.mi.max(1),
            **{
                f"{k}_{a}": f(v, axis=1)
                for a, v in trained.alt.items()
                for k, f in (("mi_mean", np.mean), ("mi_max", np.max))
            },
        }
    )
    return per_map, per_image


def run_job(cfg: Any, run_dir: Path, show_progress: bool = True) -> dict:
    """Train one encoder case, measure MI, write the run directory; return the summary."""
    config.check(cfg)
    run_dir = Path(run_dir)
    summary_path = run_dir / rundir.SUMMARY
    if summary_path.exists() and not cfg.overwrite:
        log.info(
            f"{run_dir} already holds a finished run (summary.json): skipped; overwrite=true redoes it."
        )
        return rundir.read_summary(run_dir)
    try:
        rundir.ensure_writable(run_dir)
    except OSError as e:
        raise RunError(
            f"cannot write the run directory {run_dir}: {e.strerror}; set hydra.run.dir to a writable folder."
        )
    if cfg.overwrite:
        for name in (rundir.SUMMARY, rundir.CHECKPOINT):
            (run_dir / name).unlink(missing_ok=True)
    tracker = make_logger(
        cfg.logger, run_dir
    )  # logger=tensorboard without its package: exit 2 here

    device = pick_device(cfg.device.kind.value)
    threads = set_threads(cfg.device.threads)
    seed_everything(cfg.seed)
    data, measured = load_datasets(cfg.dataset, cfg.train.holdout)
    if len(data) < 2:
        raise ConfigError(
            f"dataset.n_images={len(data)} leaves fewer than 2 images: training needs at least 2."
        )
    listed = [d for d in dict.fromkeys([data, measured]) if d.files is not None]
    if listed:  # a folder: which file each image id is (trained on and measured)
        files = pd.concat(
            [
                pd.DataFrame({"image_id": d.image_ids, "label": d.labels, "path": d.files})
                for d in listed
            ]
        )
        rundir.write_csv(
            run_dir / IMAGES_CSV, files.drop_duplicates("image_id").sort_values("image_id")
        )
    encoder = build_encoder(cfg.case, cfg.encoder).to(device)
    images = _image_loader(data, device)
    measured_images = images if measured is data else _image_loader(measured, device)
    size = data.size
    align = enum_value(cfg.measure.align)
    geom = encoder.geometry(size)
    dim = DeepInfoMax(
        cfg.encoder.maps, cfg.train.hidden, cfg.objective.value, cfg.train.negatives, align, geom
    ).to(device)
    if cfg.train.channels_last:
        encoder, dim = (
            encoder.to(memory_format=torch.channels_last),
            dim.to(memory_format=torch.channels_last),
        )
    sizes = [size, *geom.map_sizes]  # each layer's map side, from the layers' geometry
    lo, hi = geom.region
    log.info(
        f"case {cfg.case.name}: {' -> '.join(map(str, sizes))}, {len(data)} {data.name} images"
        + (f" (measured on {len(measured)} held out)" if measured is not data else "")
        + f", maps aligned by {align}"
        + (
            f" (image pixels {lo}..{hi - 1}, map offset {geom.offsets[-1]:+d})"
            if align == "geometry"
            else ""
        )
        + f", device {device}"
    )
    n, n_measured = len(data), len(measured)
    ids, groups = measured.image_ids, measured.groups
    if (run_dir / rundir.CHECKPOINT).is_file():
        log.info(f"resuming from {run_dir / rundir.CHECKPOINT}")
    stop = StopFlag()
    with stop.installed(), progress(show_progress) as bar:
        t0 = time.perf_counter()
        task = bar.add_task(f"case {cfg.case.name} measure (untrained)", total=n_measured, info="")
        init = measure(
            encoder,
            measured_images,
            ids,
            cfg.measure,
            cfg.seed,
            geom,
            groups,
            null=False,
            on_batch=lambda k: bar.advance(task, k),
            stop=stop,
        )
        bar.remove_task(task)
        init_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        task = bar.add_task(f"case {cfg.case.name} train", total=cfg.train.steps, info="")

        plane = InfoPlane(run_dir, encoder, images, n, cfg, geom)
        plane.record(0)

        def on_step(step: int, row: dict) -> None:
            bar.update(task, completed=step, info=f"loss {row['loss']:.4f}")
            plane.record(step)
            tracker.step(step, row)

        history = train(
            encoder,
            dim,
            images,
            n,
            cfg.train,
            cfg.seed,
            device,
            checkpoint=run_dir / rundir.CHECKPOINT,
            on_step=on_step,
            stop=stop,
        )
        bar.remove_task(task)
        train_seconds = time.perf_counter() - t0
        loss = pd.DataFrame(history, columns=LOSS_COLUMNS)
        rundir.write_csv(run_dir / rundir.LOSS_CSV, loss)
        rundir.save_torch(
            run_dir / rundir.ENCODER, {k: v.cpu() for k, v in encoder.state_dict().items()}
        )

        t0 = time.perf_counter()
        task = bar.add_task(f"case {cfg.case.name} measure", total=n_measured, info="")
        examples = measured.example_ids[: cfg.measure.examples]
        trained = measure(
            encoder,
            measured_images,
            ids,
            cfg.measure,
            cfg.seed,
            geom,
            groups,
            example_ids=examples,
            alt_aligns=cfg.measure.alt_aligns,
            on_batch=lambda k: bar.advance(task, k),
            stop=stop,
        )
        measure_seconds = time.perf_counter() - t0

    per_map, per_image = tables(measured, trained, init)
    rundir.write_csv(run_dir / rundir.MI_PER_MAP, per_map)
    rundir.write_csv(run_dir / rundir.MI_PER_IMAGE, per_image)
    examples = _pictures(cfg, run_dir, measured, loss, trained)

    def mean(col: str) -> float:
        return float(per_image[col].mean())

    last = loss.iloc[-1]
    summary = {
        "case": cfg.case.name,
        "dataset": data.name,
        "split": measured.split,
        "n_images": n_measured,
        "n_train_images": n,
        "holdout": bool(cfg.train.holdout),
        "bins": cfg.measure.bins,
        "align": align,
        "estimator": cfg.measure.estimator.value,
        "objective": cfg.objective.value,
        "seed": cfg.seed,
        "steps": cfg.train.steps,
        "batch_size": cfg.train.batch_size,
        "lr": cfg.train.lr,
        "layer_sizes": sizes,
        "map_offset": geom.offsets[-1],
        "region": [lo, hi],
        "mi_mean": mean("mi_mean"),
        "mi_max": mean("mi_max"),
        "mi_null_mean": mean("mi_null_mean"),
        "mi_null_max": mean("mi_null_max"),
        "mi_shuffled_mean": mean("mi_shuffled_mean"),
        "mi_mean_above_null": mean("mi_mean_above_null"),
        "mi_max_above_null": mean("mi_max_above_null"),
        "mi_mean_init": mean("mi_mean_init"),
        "mi_max_init": mean("mi_max_init"),
        **{f"{k}_{a}": mean(f"{k}_{a}") for a in trained.alt for k in ("mi_mean", "mi_max")},
        "study_examples": [int(measured.image_ids[p]) for p in measured.study_examples],
        "final_loss": float(last["loss"]),
        "final_local_mi": float(last["local_mi"]),
        "final_global_mi": float(last["global_mi"]),
        "train_seconds": round(train_seconds, 3),
        "measure_seconds": round(measure_seconds, 3),
        "measure_init_seconds": round(init_seconds, 3),
        "device": str(device),
        "threads": threads,
        "versions": versions(),
        "git_commit": git_commit(),
        **data.info,
    }
    tracker.finish(summary, examples)
    from .report import build_report

    build_report(
        run_dir, summary
    )  # from the files above and the summary (infomax report DIR does the same)
    rundir.write_json(summary_path, summary)  # written last: its presence means the job finished
    (run_dir / rundir.CHECKPOINT).unlink(missing_ok=True)
    log.info(
        f"case {cfg.case.name}: mean MI {summary['mi_mean']:.4f} nats, max MI {summary['mi_max']:.4f} nats "
        f"(null {summary['mi_null_mean']:.4f} / {summary['mi_null_max']:.4f}; untrained {summary['mi_mean_init']:.4f} / "
        f"{summary['mi_max_init']:.4f}); objective MI estimates local {summary['final_local_mi']:.3f}, global "
        f"{summary['final_global_mi']:.3f} nats; {train_seconds + measure_seconds:.1f} s"
    )
    return summary


def _pictures(
    cfg: Any, run_dir: Path, data: GrayImages, loss: pd.DataFrame, m: Measurement
) -> dict:
    """loss.png, infoplane.png and features/; returns the examples {name: (image, maps, mi)}."""
    from . import report

    rundir.save_figure(
        run_dir / rundir.LOSS_PNG,
        report.loss_figure(
            loss, f"case {cfg.case.name}: training loss", report.case_color(cfg.case.name)
        ),
    )
    if (run_dir / rundir.INFOPLANE).is_file():
        plane = pd.read_csv(run_dir / rundir.INFOPLANE)
        rundir.save_figure(
            run_dir / "infoplane.png",
            report.infoplane_figure(
                plane, f"case {cfg.case.name}: MI of each layer during training"
            ),
        )
    examples = {}
    for pos, (image, maps) in sorted(m.examples.items()):
        name = f"{int(data.image_ids[pos]):05d}_{data.labels[pos]}"
        title = f"case {cfg.case.name}, image {data.image_ids[pos]} ({data.labels[pos]}): mean MI {m.mi[pos].mean():.3f} nats"
        rundir.save_figure(
            run_dir / rundir.FEATURES / f"{name}.png",
            report.features_figure(image, maps, m.mi[pos], title, cfg.case.name),
        )
        examples[name] = (image, maps, m.mi[pos])
    report.save_example_maps(run_dir, examples)
    return examples
