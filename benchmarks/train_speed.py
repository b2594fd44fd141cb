"""Training speed, as bench_train.py measures it: the project's training loop (infomax_cli.train.train on
the default config composed through Hydra) against a plain reference loop written here, from the same
weights on the same batches, for one case at a time (`train_case`). bench_train.py tabulates it and
gpu_check.py (make gpu-check) reuses it."""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hydra import compose, initialize_config_dir  # noqa: E402

from infomax_cli import config  # noqa: E402
from infomax_cli.errors import first_line  # noqa: E402
from infomax_cli.model.encoders import build_encoder  # noqa: E402
from infomax_cli.model.objectives import DeepInfoMax  # noqa: E402
from infomax_cli.sources import load_dataset  # noqa: E402
from infomax_cli.sources.gray import Catalog, GrayImages  # noqa: E402
from infomax_cli.train import TrainHooks, seed_everything, train  # noqa: E402

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
        images = data.on(device)
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
