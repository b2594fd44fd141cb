"""The training loop: encoder + Deep InfoMax critics on batches of images, with checkpoints and resume.

A checkpoint holds everything a resumed run needs to continue as if never stopped: the networks, both
optimisers, every RNG state, the step and the loss history.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig
from .errors import Interrupted, RunError, first_line
from .model.objectives import mi_estimate
from .rundir import MI_TERMS, PRIOR_DISC, TERMS, save_torch
from .sources.gray import GrayImages
from .store import load_torch

log = logging.getLogger("infomax")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_states(gen: torch.Generator, noise: torch.Generator) -> dict:
    """Every RNG state as tensors and plain values, so a checkpoint loads with weights_only=True."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states = {
        "data": gen.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": int(version), "state": torch.tensor(internal), "gauss": gauss_next},
    }
    if noise is not gen:
        states["noise"] = noise.get_state()
    return states


def _set_rng_states(gen: torch.Generator, noise: torch.Generator, states: dict) -> None:
    gen.set_state(states["data"])
    if noise is not gen and "noise" in states:
        noise.set_state(states["noise"])
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


CHECKPOINT_KEYS = ("step", "history", "rng", "encoder", "dim", "opt", "opt_d")


def _restore(path: Path, state, networks: tuple, gen: torch.Generator, noise: torch.Generator):
    """Load a checkpoint's state into (encoder, critics, opt, opt_d) and the RNGs; return (history,
    step). A checkpoint without the training state, or one that does not fit these networks, is one
    RunError naming it and the way out."""
    fix = "delete it to start this job's training again from step 0"
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise RunError(f"{path} is damaged: it holds no {', '.join(missing)}: {fix}.")
    history, step = state["history"], state["step"]
    if not isinstance(step, int) or not isinstance(history, list) or len(history) != step:
        raise RunError(f"{path} is damaged: its step and loss history disagree: {fix}.")
    encoder, critics, opt, opt_d = networks
    try:
        encoder.load_state_dict(state["encoder"])
        critics.load_state_dict(state["dim"])
        opt.load_state_dict(state["opt"])
        opt_d.load_state_dict(state["opt_d"])
        _set_rng_states(gen, noise, state["rng"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise RunError(
            f"{path} does not fit this job's networks or is damaged ({first_line(e)[:200]}): {fix}."
        ) from None
    return history, step


class _Training:
    """One training run's state: the networks, their optimisers, the generators, the loss history and
    the step last checkpointed. `train` below is the loop over its `step`."""

    def __init__(self, encoder, critics, images: GrayImages, cfg: TrainConfig, seed: int):
        self.encoder, self.critics, self.cfg = encoder, critics, cfg
        device = images.device
        critic_params = [
            p for name, p in critics.named_parameters() if not name.startswith("prior.")
        ]
        # one kernel per optimiser step on the GPU; CPU: torch's default
        fused = device.type == "cuda"
        self.opt = torch.optim.Adam([*encoder.parameters(), *critic_params], lr=cfg.lr, fused=fused)
        self.opt_d = torch.optim.Adam(critics.prior.parameters(), lr=cfg.prior_lr, fused=fused)
        self.gen = torch.Generator().manual_seed(seed)  # batch order: the same on every device
        # The prior's uniform samples are drawn where the prior runs (no host-to-device copy each
        # step); on the CPU from the batch generator, as before.
        self.noise = self.gen if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
        self.history: list[dict] = []
        self.saved_at = 0
        self.eager = self._forward
        self.forward = self._forward
        if cfg.compile:
            self.forward = torch.compile(self._forward, mode=cfg.compile_mode)

    def resume(self, checkpoint: Path, device: torch.device) -> int:
        """Continue from `checkpoint`: networks, optimisers, generators and history; the step it saved."""
        state = load_torch(checkpoint, map_location=device)  # damaged: one line naming it
        networks = (self.encoder, self.critics, self.opt, self.opt_d)
        self.history, self.saved_at = _restore(checkpoint, state, networks, self.gen, self.noise)
        return self.saved_at

    def save(self, checkpoint: Path | None, step: int) -> None:
        self.saved_at = step
        if checkpoint is not None:
            state = {
                "step": step,
                "history": self.history,
                "rng": _rng_states(self.gen, self.noise),
                "encoder": self.encoder.state_dict(),
                "dim": self.critics.state_dict(),  # the critics' key, as checkpoints always had it
                "opt": self.opt.state_dict(),
                "opt_d": self.opt_d.state_dict(),
            }
            save_torch(checkpoint, state)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        device_type = x.device.type
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            z = self.encoder(x)
            terms = self.critics.encoder_losses(x, z)
        return z.float(), {k: v.float() for k, v in terms.items()}

    def _gradients(self, x: torch.Tensor) -> tuple[torch.Tensor, dict, torch.Tensor]:
        z, terms = self.forward(x)
        cfg = self.cfg
        loss = cfg.beta * terms["local"] + cfg.alpha * terms["global"] + cfg.gamma * terms["prior"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        return z, terms, loss

    def _compiled_gradients(self, x: torch.Tensor, step: int):
        """The gradients through torch.compile, falling back to eager mode when compiling fails:
        it compiles (and can fail) on a call, before any weight has moved."""
        try:
            return self._gradients(x)
        except Exception as e:
            if self.forward is self.eager:
                raise
            log.warning(
                f"train.compile=true: torch.compile failed at step {step} ({type(e).__name__}: "
                f"{first_line(e)[:300]}); training goes on without it (same model, eager mode)."
            )
            self.forward = self.eager
            return self._gradients(x)

    def step(self, step: int, x: torch.Tensor) -> dict:
        """One step of the encoder and critics, then of the prior's discriminator; the loss row."""
        z, terms, loss = self._compiled_gradients(x, step)
        self.opt.step()
        d_loss = self.critics.discriminator_loss(z, generator=self.noise)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # one host sync a step
        values = torch.stack(
            [loss.detach(), *(terms[k].detach() for k in TERMS), d_loss.detach()]
        ).tolist()
        row = {"step": step, **dict(zip(("loss", *TERMS, PRIOR_DISC), values))}
        bad = [k for k in (*TERMS, PRIOR_DISC, "loss") if not math.isfinite(row[k])]
        if bad and not bool(torch.isfinite(z).all()):  # the encoder's maps, not only the critics
            raise RunError(
                f"training diverged at step {step}: the {bad[0]} term of the loss is "
                f"{row[bad[0]]}, and {_first_not_finite(z)}; the last good checkpoint (step "
                f"{self.saved_at}) is kept. Try a smaller train.lr, or check the encoder's forward."
            )
        if bad:
            raise RunError(
                f"training diverged at step {step}: the {bad[0]} term of the loss is "
                f"{row[bad[0]]}; the last good checkpoint "
                f"(step {self.saved_at}) is kept. Try a smaller train.lr."
            )
        row.update({f"{t}_mi": mi_estimate(row[t], self.critics.bound_name) for t in MI_TERMS})
        self.history.append(row)
        return row


def _first_not_finite(z: torch.Tensor) -> str:
    """Where the encoder's output first holds a NaN or an infinity, in words."""
    from .measure import NotFinite, check_finite

    try:
        check_finite(z.detach(), "output")
    except NotFinite as e:
        return f"{e} of the batch"
    return "the encoder's output is not finite"


@dataclass(frozen=True)
class TrainHooks:
    """What the caller hears and says while training runs: each step's loss row (progress, the
    information plane, the tracker), and after each step whether to stop (a signal's name, or None)."""

    on_step: Callable[[int, dict], None] = lambda step, row: None
    stop: Callable[[], str | None] = lambda: None


def train(
    encoder: torch.nn.Module,
    critics: torch.nn.Module,
    images: GrayImages,
    cfg: TrainConfig,
    seed: int,
    *,
    checkpoint: Path | None = None,
    hooks: TrainHooks = TrainHooks(),
) -> list[dict]:
    """Train for `cfg.steps` steps and return the loss history (one dict per step).

    `images.batch(positions)` gives the float (B, 1, S, S) batch on `images.device` (GrayImages.on,
    or anything with `batch`, `device` and a length). When `checkpoint`
    exists, training resumes from it; it is rewritten every `cfg.checkpoint_every` steps and at the end.
    `hooks.on_step(step, row)` hears each step; `hooks.stop()` is polled after every step: a signal
    name stops training after a checkpoint.
    """
    run = _Training(encoder, critics, images, cfg, seed)
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        start = run.resume(checkpoint, images.device)
    n_images = len(images)
    batch = min(cfg.batch_size, n_images)
    encoder.train()
    critics.train()
    for step in range(start + 1, cfg.steps + 1):
        idx = torch.randperm(n_images, generator=run.gen)[:batch]
        row = run.step(step, images.batch(idx))
        hooks.on_step(step, row)
        signal_name = hooks.stop()
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or signal_name:
            run.save(checkpoint, step)
        if signal_name:
            raise Interrupted.by(signal_name, f"{signal_name} at step {step}: checkpoint saved.")
    return run.history
