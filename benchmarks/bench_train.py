"""Training and measurement speed of infomax, measured in one run on one set of images, as one table.

    .venv/bin/python benchmarks/bench_train.py [--steps N] [--batch 64] [--device cpu|cuda] [--quick]

For each device (the CPU, and the GPU when there is one, unless --device picks one):
- training images/s of each case (a-d): the project's code path (infomax_cli.train.train on the default
  config composed through Hydra, the images fed as `infomax run` feeds them) against a plain reference loop
  written here (the same encoder and critic modules in eager fp32, the batch indexed on the CPU every step
  and then copied to the device), and the ratio. Both start from the same weights and draw the same
  batches, so on the CPU their losses must agree: the table says so. Where the config has the speed
  switches (train.bf16, train.channels_last, train.compile, train.compile_mode) they are passed through as
  overrides for a third column (by default bf16, channels_last and compile on CUDA; on the CPU bf16 where
  it runs natively, else none: --switches chooses, e.g. compile,compile_mode=reduce-overhead);
- measurement images/s of each case (infomax_cli.measure.measure, with the shuffled-pixel null, as a run);
- histogram_mi pairs/s on one 64 x 32 batch of 96 x 96 maps (case c's maps of the first 64 images);
- the wall time of the four-case study on the embedded set (`infomax run -m case=a,b,c,d dataset=samples`
  in a subprocess; --quick: 5 training steps instead of 50).
The training loops themselves are train_speed.py's (make gpu-check uses them too).
Every timing follows a warm-up (first CUDA kernels, numba's compile or cache load, torch.compile).
Training rates use the median step time; the reference and infomax loops take turns (--rounds, default 2)
and each keeps its best round, so other work on a shared machine slows a round rather than one side.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import (  # noqa: E402  the training loops (and the inputs they share)
    CASES,
    CUDA_AUTO,
    ROOT,
    build,
    compose_cfg,
    images_set,
    sync,
    train_case,
)

from infomax_cli import config, mi  # noqa: E402
from infomax_cli.app import keep_large_buffers_in_the_heap  # noqa: E402
from infomax_cli.measure import Plan, measure  # noqa: E402
from infomax_cli.model.align import align_pair  # noqa: E402
from infomax_cli.sources.gray import GrayImages  # noqa: E402

# -------------------------------------------------------------------------------------- measurement


def bench_measure(cfg, encoder, data: GrayImages, device: torch.device, seed: int) -> float:
    """Images/s of measure() over the whole set (with both nulls and the other alignments, as the trained
    measurement of a run)."""
    geom, measure_cfg = encoder.geometry(96), config.typed(cfg).measure
    plan = Plan.for_job(measure_cfg, seed, trained=True)
    images = data.on(device)
    warm_up = data.subset(range(min(len(data), measure_cfg.batch_size))).on(device)
    measure(encoder, geom, warm_up, plan)
    sync(device)
    t = time.perf_counter()
    measure(encoder, geom, images, plan)
    sync(device)
    return len(data) / (time.perf_counter() - t)


def bench_histogram(
    encoder, data: GrayImages, device: torch.device, bins: int, repeat: int
) -> tuple[float, str]:
    """Pairs/s of histogram_mi on case c's maps of the first 64 images (64 x 32 maps of 96 x 96)."""
    with torch.inference_mode():
        x = data.on(device).batch(torch.arange(min(64, len(data))))
        # 96 x 96 maps: the contract's pairs of 96 x 96
        img, maps = align_pair(x, encoder.eval()(x), "resize")
    fn: Callable[[], torch.Tensor] = lambda: mi.histogram_mi(img, maps, bins)  # noqa: E731
    fn()
    times = []
    for _ in range(repeat):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    shape = f"{maps.shape[0]}x{maps.shape[1]} maps of {maps.shape[2]}x{maps.shape[3]}"
    return maps.shape[0] * maps.shape[1] / statistics.median(times), shape


def bench_end_to_end(device: str, quick: bool, launcher: str) -> tuple[float | None, str]:
    """Wall time of the four-case study on the embedded set, as a user runs it (a fresh process)."""
    out = Path(tempfile.mkdtemp(prefix="bench_train_"))
    args = ["run", "-m", "case=a,b,c,d", "dataset=samples", f"device={device}"]
    args += ["train.steps=5"] if quick else []
    args += [f"hydra/launcher={launcher}"] if launcher != "basic" else []
    shown = "infomax " + " ".join(args)
    try:
        t = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "infomax_cli.cli", *args, f"hydra.sweep.dir={out}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t
        if r.returncode != 0:
            return (
                None,
                f"{shown}: failed ({r.returncode}): {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}",
            )
        return seconds, shown
    finally:
        shutil.rmtree(out, ignore_errors=True)


# ------------------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(devices: list[torch.device]) -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [
        f"CPU {cpu_model()} ({cpus} CPUs)",
        f"torch {torch.__version__} on {torch.get_num_threads()} threads",
        f"numba {mi.numba.__version__} on {mi.numba.get_num_threads()} threads"
        if mi.HAVE_NUMBA
        else "numba absent",
    ]
    for d in devices:
        if d.type == "cuda":
            parts.append(f"GPU {torch.cuda.get_device_name(d)} (CUDA {torch.version.cuda})")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------- main


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--steps",
        type=int,
        help="timed training steps per loop, case and round (default 10 on the CPU, 100 on CUDA; --quick 5)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        help="the loops take turns this many times; each keeps its best (--quick: 1)",
    )
    p.add_argument("--warmup", type=int, help="untimed steps first (default 3; --quick 2)")
    p.add_argument("--batch", type=int, default=64, help="images per training step (the study: 64)")
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        action="append",
        help="default: the CPU, and CUDA when present",
    )
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument(
        "--data",
        choices=["samples", "synthetic"],
        default="samples",
        help="the embedded set, or synthetic images",
    )
    p.add_argument(
        "--n-images", type=int, default=512, help="synthetic images (with --data synthetic)"
    )
    p.add_argument(
        "--switches",
        default="auto",
        help=f"speed switches for the third column: auto (CUDA: {','.join(CUDA_AUTO)}; CPU: bf16 "
        "where native), none, or e.g. bf16,channels_last or compile,compile_mode=reduce-overhead",
    )
    p.add_argument("--repeat", type=int, default=5, help="timed histogram_mi calls (median)")
    p.add_argument("--no-end-to-end", action="store_true", help="skip the four-case study run")
    p.add_argument(
        "--launcher",
        action="append",
        help="launcher preset(s) for the end-to-end run (default: Hydra's basic)",
    )
    p.add_argument("--quick", action="store_true", help="fewer steps (a check, not a figure)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    a.steps_for = {
        "cpu": a.steps or (5 if a.quick else 10),
        "cuda": a.steps or (5 if a.quick else 100),
    }
    a.rounds = a.rounds if a.rounds is not None else (1 if a.quick else 2)
    a.warmup = a.warmup if a.warmup is not None else (2 if a.quick else 3)
    a.cases = [c for c in a.cases.split(",") if c]
    if (
        any(c not in CASES for c in a.cases)
        or min(a.steps_for.values()) < 1
        or a.warmup < 1
        or a.batch < 2
        or a.rounds < 1
    ):
        p.error("cases among a,b,c,d; --steps, --warmup and --rounds >= 1; --batch >= 2")
    kinds = a.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in kinds and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible")
    a.devices = [torch.device(k) for k in dict.fromkeys(kinds)]
    return a


def device_rows(a: argparse.Namespace, device: torch.device, data: GrayImages, base, err):
    """The table's rows for one device (device, what, reference, infomax, + switches, ratio, note):
    training and measurement per case, histogram_mi, the four-case study."""
    dname = "cpu" if device.type == "cpu" else "cuda"
    measured = {}
    for case in a.cases:
        err.print(f"[dim]{dname}: training case {case}...[/]")
        steps = a.steps_for[device.type]
        r = train_case(case, base, a.switches, data, device, a.warmup, steps, a.seed, a.rounds)
        fast = f"{r.switched:,.0f}" if r.switched else "—"
        what = f"train case {case} (img/s)"
        yield dname, what, f"{r.reference:,.0f}", f"{r.infomax:,.0f}", fast, r.ratio(), r.note()
        measured[case] = (r.cfg, r.encoder)
    for case in a.cases:
        cfg, encoder = measured[case]
        err.print(f"[dim]{dname}: measuring case {case}...[/]")
        rate = bench_measure(cfg, encoder, data, device, a.seed)
        note = f"{len(data)} images, {cfg.measure.bins} bins, MI, both nulls and the other alignments per map"
        yield dname, f"measure case {case} (img/s)", "", f"{rate:,.0f}", "", "", note
    cfg_c, enc_c = measured.get("c") or (
        compose_cfg("c", base),
        build(compose_cfg("c", base), device, a.seed)[0],
    )
    pairs, shape = bench_histogram(enc_c, data, device, cfg_c.measure.bins, a.repeat)
    how = "numba" if device.type == "cpu" and mi.HAVE_NUMBA else "torch"
    note = f"{shape}, {cfg_c.measure.bins} bins, {how}; median of {a.repeat}"
    yield dname, "histogram_mi (pairs/s)", "", f"{pairs:,.0f}", "", "", note
    if not a.no_end_to_end:
        for launcher in a.launcher or ["basic"]:
            err.print(f"[dim]{dname}: the four-case study ({launcher} launcher)...[/]")
            seconds, shown = bench_end_to_end(dname, a.quick, launcher)
            wall = f"{seconds:,.1f}" if seconds else "failed"
            yield dname, "four-case study (s, wall)", "", wall, "", "", shown


def main(argv: list[str]) -> int:
    a = parse(argv)
    keep_large_buffers_in_the_heap()  # as `infomax` does at start (both loops get it)
    config.register()
    console = Console(width=None if sys.stdout.isatty() else 170, stderr=False)
    err = Console(stderr=True)
    data = images_set(a.data, a.n_images, a.seed)
    batch = min(a.batch, len(data))
    base = [f"train.batch_size={batch}"]
    steps = a.steps_for
    shown = (
        "/".join(f"{steps[d.type]} ({d.type})" for d in a.devices)
        if len(a.devices) > 1
        else str(steps[a.devices[0].type])
    )
    title = (
        f"infomax speed: {len(data)} {data.name} images of 96x96, batch {batch}, {shown} timed training steps "
        f"after {a.warmup} (median step, best of {a.rounds} rounds), seed {a.seed}"
    )
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    table = Table(title=title, caption_justify="left")
    for col in ("device", "what", "reference", "infomax", "+ switches", "infomax / ref", "note"):
        table.add_column(col, justify="left" if col in ("device", "what", "note") else "right")
    for device in a.devices:
        for row in device_rows(a, device, data, base, err):
            table.add_row(*row)
        table.add_section()
    table.caption = machine(a.devices)
    if load_before is not None:  # other work on the machine slows every figure: say how busy it was
        table.caption += (
            f"; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
