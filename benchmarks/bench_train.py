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
Every timing follows a warm-up (first CUDA kernels, numba's compile or cache load, torch.compile).
Training rates use the median step time; the reference and infomax loops take turns (--rounds, default 2)
and each keeps its best round, so other work on a shared machine slows a round rather than one side.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hydra import compose, initialize_config_dir  # noqa: E402

from infomax_cli import config, mi  # noqa: E402
from infomax_cli.cli import _keep_large_buffers_in_the_heap  # noqa: E402
from infomax_cli.errors import first_line  # noqa: E402
from infomax_cli.measure import MeasuredImages, Plan, measure  # noqa: E402
from infomax_cli.model.encoders import build_encoder  # noqa: E402
from infomax_cli.model.geometry import align_pair  # noqa: E402
from infomax_cli.model.objectives import DeepInfoMax  # noqa: E402
from infomax_cli.sources import load_dataset  # noqa: E402
from infomax_cli.sources.gray import Catalog, GrayImages  # noqa: E402
from infomax_cli.train import DeviceImages, TrainHooks, seed_everything, train  # noqa: E402

SWITCHES = (
    "bf16",
    "channels_last",
    "compile",
    "compile_mode",
)  # compile_mode takes a value: compile_mode=reduce-overhead
CUDA_AUTO = ("bf16", "channels_last", "compile")  # --switches auto on CUDA
CASES = ("a", "b", "c", "d")


# ------------------------------------------------------------------------------------------- inputs


def compose_cfg(case: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            config_name="config", overrides=[f"case={case}", "dataset=samples", *overrides]
        )


def images_set(kind: str, n: int, seed: int) -> GrayImages:
    """The embedded set (320 crops of 96x96), or n synthetic STL-sized images (smooth noise, uint8)."""
    if kind == "samples":
        return load_dataset(compose_cfg("c", []).dataset)
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(n, 1, 96, 96, generator=g), 5, 1, 2)[:, 0]
    x = (x - x.amin((1, 2), keepdim=True)) / (
        x.amax((1, 2), keepdim=True) - x.amin((1, 2), keepdim=True)
    )
    pixels = (x * 255).round().to(torch.uint8)
    return GrayImages("synthetic", "train", pixels, Catalog(["synthetic"] * n, []))


def build(cfg, device: torch.device, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The encoder and the Deep InfoMax networks, as experiment.run_job builds them (same seed: same weights)."""
    seed_everything(seed)
    encoder = build_encoder(cfg.case, cfg.encoder).to(device)
    align, geom = cfg.measure.align, encoder.geometry(96)
    critics = DeepInfoMax(
        cfg.encoder.maps,
        cfg.train.hidden,
        cfg.objective,
        cfg.train.negatives,
        align,
        geom,
    ).to(device)
    if cfg.train.channels_last:
        encoder, critics = (
            encoder.to(memory_format=torch.channels_last),
            critics.to(memory_format=torch.channels_last),
        )
    return encoder, critics


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------- training


def reference_train(
    encoder,
    critics,
    pixels: torch.Tensor,
    steps: int,
    tcfg,
    seed: int,
    device: torch.device,
    on_step,
) -> list[float]:
    """The most straightforward loop: every step, index the batch on the CPU, make it float, copy it to the
    device; eager fp32; the same losses, optimisers and random draws as infomax_cli.train.train."""
    critic_params = [p for name, p in critics.named_parameters() if not name.startswith("prior.")]
    opt = torch.optim.Adam(list(encoder.parameters()) + critic_params, lr=tcfg.lr)
    opt_d = torch.optim.Adam(critics.prior.parameters(), lr=tcfg.prior_lr)
    gen = torch.Generator().manual_seed(seed)
    n, batch = len(pixels), min(tcfg.batch_size, len(pixels))
    losses = []
    encoder.train()
    critics.train()
    for step in range(1, steps + 1):
        idx = torch.randperm(n, generator=gen)[:batch]
        x = (pixels[idx].float() / 255).unsqueeze(1).to(device)
        z = encoder(x)
        terms = critics.encoder_losses(x, z)
        loss = (
            tcfg.beta * terms["local"] + tcfg.alpha * terms["global"] + tcfg.gamma * terms["prior"]
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        d_loss = critics.discriminator_loss(z, generator=gen)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        losses.append(loss.item())
        on_step(step)
    return losses


def step_rate(stamps: list[float], warmup: int, batch: int) -> float:
    """Images/s from the median time of the steps after the warm-up (stamps[0]: the start)."""
    times = np.diff(stamps)[warmup:]
    return batch / float(np.median(times))


def bench_training(
    cfg_ref,
    cfg_fast,
    data: GrayImages,
    device: torch.device,
    warmup: int,
    steps: int,
    seed: int,
    rounds: int,
):
    """(reference img/s, project img/s, project-with-switches img/s or None, max |loss diff| project vs
    reference, max |loss diff| switched vs reference or why it failed, the trained encoder). Each loop is
    warmed up inside its own call; the loops take turns for `rounds` rounds and each keeps its best round,
    so a stretch of other work on the machine slows one round, not one loop."""
    total = warmup + steps
    batch = min(cfg_ref.train.batch_size, len(data))

    def run_project(cfg):
        tcfg = dataclasses.replace(config.typed(cfg).train, steps=total)
        encoder, critics = build(cfg, device, seed)
        images = DeviceImages(data, device)
        sync(device)
        stamps = [time.perf_counter()]
        on_step = lambda s, r: stamps.append(time.perf_counter())  # noqa: E731
        history = train(encoder, critics, images, tcfg, seed, hooks=TrainHooks(on_step=on_step))
        return step_rate(stamps, warmup, batch), [h["loss"] for h in history], encoder

    def run_reference():
        encoder, critics = build(cfg_ref, device, seed)
        pixels = data.all_uint8()  # stays on the CPU
        stamps = [time.perf_counter()]
        losses = reference_train(
            encoder,
            critics,
            pixels,
            total,
            cfg_ref.train,
            seed,
            device,
            lambda s: stamps.append(time.perf_counter()),
        )
        return step_rate(stamps, warmup, batch), losses

    ref_rate = rate = 0.0
    fast_rate = fast_diff = None
    for _ in range(rounds):
        r, ref_loss = run_reference()
        ref_rate = max(ref_rate, r)
        r, loss, encoder = run_project(cfg_ref)
        rate = max(rate, r)
        if cfg_fast is not None and not isinstance(fast_diff, str):
            try:
                r, fast_loss, _ = run_project(cfg_fast)
                fast_rate = max(fast_rate or 0.0, r)
                fast_diff = float(np.max(np.abs(np.subtract(fast_loss, ref_loss))))
            except Exception as e:  # a switch the installed torch cannot do here: say so
                first = first_line(e)
                fast_rate, fast_diff = None, f"failed, {type(e).__name__}: {first[:60]}"
    diff = float(np.max(np.abs(np.subtract(loss, ref_loss))))
    return ref_rate, rate, fast_rate, diff, fast_diff, encoder


# -------------------------------------------------------------------------------------- measurement


def bench_measure(cfg, encoder, data: GrayImages, device: torch.device, seed: int) -> float:
    """Images/s of measure() over the whole set (with both nulls and the other alignments, as the trained
    measurement of a run)."""
    geom, measure_cfg = encoder.geometry(96), config.typed(cfg).measure
    plan = Plan.for_job(measure_cfg, seed, trained=True)
    images = MeasuredImages(DeviceImages(data, device), data.image_ids, data.groups)
    warm = min(len(data), measure_cfg.batch_size)
    warm_up = MeasuredImages(images.batch, data.image_ids[:warm], data.groups[:warm])
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
        x = DeviceImages(data, device)(torch.arange(min(64, len(data))))
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


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (AVX512-BF16 or AMX); elsewhere bf16 autocast is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def switches_for(device: torch.device, choice: str, cfg) -> list[str]:
    """The speed-switch overrides to pass through: those the config has, of the ones chosen."""
    if choice == "auto":
        wanted = CUDA_AUTO if device.type == "cuda" else (("bf16",) if cpu_has_bf16() else ())
    else:
        wanted = tuple(s for s in choice.split(",") if s and s != "none")
    settings = dict(s.split("=", 1) if "=" in s else (s, "true") for s in wanted)
    unknown = [s for s in settings if s not in SWITCHES]
    if unknown:
        raise SystemExit(
            f"bench_train: unknown switch {unknown[0]!r}: use some of {', '.join(SWITCHES)}, none or auto"
        )
    return [f"train.{s}={value}" for s, value in settings.items() if hasattr(cfg.train, s)]


# ------------------------------------------------------------------------------------------- a case


@dataclass
class CaseRates:
    """One case's training rates (images/s): the reference loop, infomax, infomax with the switches
    (None: none asked for, or they failed), the largest loss differences from the reference's (the
    switched one's, or why it failed), the switches' names and the trained encoder and config."""

    case: str
    reference: float
    infomax: float
    switched: float | None
    diff: float
    switched_diff: float | str | None
    switches: str
    cfg: object
    encoder: torch.nn.Module

    def note(self) -> str:
        out = (
            "losses equal the reference's"
            if self.diff == 0
            else f"max |loss - reference's| {self.diff:.1e}"
        )
        if self.switches:
            d = self.switched_diff
            out += f"; {self.switches}: " + (d if isinstance(d, str) else f"{d:.1e}")
        return out

    def ratio(self) -> str:
        out = f"{self.infomax / self.reference:.2f}x"
        return out + (f" ({self.switched / self.reference:.2f}x)" if self.switched else "")


def train_case(
    case: str,
    base: list[str],
    switches: str,
    data: GrayImages,
    device: torch.device,
    warmup: int,
    steps: int,
    seed: int,
    rounds: int,
) -> CaseRates:
    """bench_training on case `case` with the overrides `base`, the third column with the speed
    switches `switches` chose (switches_for)."""
    cfg = compose_cfg(case, base)
    over = switches_for(device, switches, cfg)
    cfg_fast = compose_cfg(case, base + over) if over else None
    ref, rate, fast, diff, fast_diff, encoder = bench_training(
        cfg, cfg_fast, data, device, warmup, steps, seed, rounds
    )
    named = ",".join(o.split(".")[1].split("=")[0] for o in over)
    return CaseRates(case, ref, rate, fast, diff, fast_diff, named, cfg, encoder)


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
    _keep_large_buffers_in_the_heap()  # as `infomax` does at start (both loops get it)
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
