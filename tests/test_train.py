"""The training loop's speed switches: torch.compile (and its fallback when it cannot compile)."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import TINY, compose_cfg

from infomax_cli import config
from infomax_cli.errors import Interrupted, RunError
from infomax_cli.model.encoders import build_encoder
from infomax_cli.model.objectives import DeepInfoMax
from infomax_cli.train import TrainHooks, seed_everything, train


def run(overrides: list[str], steps: int = 3, device: str = "cpu", **kwargs) -> list[dict]:
    cfg = compose_cfg([*TINY, f"train.steps={steps}", *overrides])
    seed_everything(cfg.seed)
    encoder = build_encoder(cfg.case, cfg.encoder).to(device)
    critics = DeepInfoMax(
        cfg.encoder.maps, cfg.train.hidden, cfg.objective, cfg.train.negatives
    ).to(device)
    if cfg.train.channels_last:
        encoder, critics = (
            encoder.to(memory_format=torch.channels_last),
            critics.to(memory_format=torch.channels_last),
        )
    data = torch.rand(12, 1, 96, 96, generator=torch.Generator().manual_seed(0)).to(device)
    return train(encoder, critics, Batches(data), config.typed(cfg).train, cfg.seed, **kwargs)


class Batches:
    """Images already on the device, with what train() reads of an image bundle (GrayImages.on):
    `batch` by position, `device` and a length."""

    def __init__(self, data: torch.Tensor):
        self.data, self.device = data, data.device

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, positions: torch.Tensor) -> torch.Tensor:
        return self.data[positions.to(self.device)]


@pytest.mark.slow
def test_a_compile_failure_falls_back_to_eager_with_the_same_numbers(monkeypatch, caplog):
    """torch.compile fails lazily, on the first call (seen on CUDA for the transposed convs of cases b and
    d with channels_last): training goes on in eager mode, with a warning, and gives the eager numbers."""
    eager = run(["case=b"])

    def failing_compile(fn, *args, **kwargs):
        def compiled(*a, **k):
            raise torch._dynamo.exc.BackendCompilerFailed(
                lambda *x: None, RuntimeError("inductor could not lower convolution_backward")
            )

        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    with caplog.at_level(logging.WARNING, logger="infomax"):
        fallback = run(["case=b", "train.compile=true"])
    assert (
        "torch.compile failed at step 1" in caplog.text and "BackendCompilerFailed" in caplog.text
    )
    assert fallback == eager


@pytest.mark.slow
def test_compile_mode_reaches_torch_compile(monkeypatch):
    modes = []

    def recording_compile(fn, *args, mode=None, **kwargs):
        modes.append(mode)
        return fn

    monkeypatch.setattr(torch, "compile", recording_compile)
    assert run(["case=c", "train.compile=true", "train.compile_mode=reduce-overhead"]) == run(
        ["case=c"]
    )
    assert modes == ["reduce-overhead"]


def test_an_error_in_eager_mode_is_not_swallowed(monkeypatch):
    def broken(self, x, z):
        raise RuntimeError("a bug")

    monkeypatch.setattr(DeepInfoMax, "encoder_losses", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        run(["case=c"])


@pytest.mark.slow
@pytest.mark.long
def test_compile_with_channels_last_trains_a_transposed_case_on_cpu(caplog):
    """The real thing on CPU (inductor's C++ backend): case d (transposed convs), channels-last; the
    losses follow the eager ones to float32 rounding."""
    import torch._inductor.config as inductor

    eager = run(["case=d"], steps=2)
    # inductor's probe of the CPU's vector instructions (a C++ build per instruction set, a third of the
    # test's time) left out: the CPU's own flags are trusted; the kernels are still vectorised C++
    with (
        caplog.at_level(logging.WARNING, logger="infomax"),
        inductor.patch({"cpp.vec_isa_ok": True}),
    ):
        compiled = run(["case=d", "train.compile=true", "train.channels_last=true"], steps=2)
    assert "torch.compile failed" not in caplog.text
    for a, b in zip(eager, compiled):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: checked on a lent GPU machine"
)
def test_on_cuda_a_resumed_run_continues_the_prior_noise(tmp_path):
    """On CUDA the prior's uniform samples come from a generator on the GPU: the checkpoint carries its
    state, so a run stopped after step 1 and resumed gives the uninterrupted run's losses."""
    whole = run(["case=d", "train.checkpoint_every=1"], steps=4, device="cuda")
    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(Interrupted):
        run(
            ["case=d", "train.checkpoint_every=1"],
            steps=4,
            device="cuda",
            checkpoint=ckpt,
            hooks=TrainHooks(stop=lambda: "SIGTERM"),
        )
    resumed = run(["case=d", "train.checkpoint_every=1"], steps=4, device="cuda", checkpoint=ckpt)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(whole, resumed):
        assert a["prior_disc"] == pytest.approx(b["prior_disc"], rel=1e-5) and a[
            "loss"
        ] == pytest.approx(b["loss"], rel=1e-5)


@pytest.mark.slow
def test_a_checkpoint_loads_with_weights_only_and_resumes_every_rng(tmp_path):
    """The checkpoint holds tensors and plain values only (torch.load(weights_only=True) reads it), and
    the numpy and Python RNG states it carries come back exactly: stopped after step 2 and resumed, the
    losses are the uninterrupted run's."""
    import random

    import numpy as np

    whole = run(["case=c", "train.checkpoint_every=1"], steps=4)
    ckpt = tmp_path / "checkpoint.pt"
    calls = iter([None, "SIGTERM"])
    with pytest.raises(Interrupted):
        run(["case=c"], steps=4, checkpoint=ckpt, hooks=TrainHooks(stop=lambda: next(calls)))
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 2 and len(state["history"]) == 2
    after = (np.random.random(), random.random())
    np.random.seed(123), random.seed(123)
    from infomax_cli.train import _set_rng_states

    gen = torch.Generator()
    _set_rng_states(gen, gen, state["rng"])
    assert (np.random.random(), random.random()) == after
    resumed = run(["case=c"], steps=4, checkpoint=ckpt)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4] and resumed == whole


@pytest.mark.parametrize(
    "state,needle",
    [
        ({}, "holds no step, history, rng, encoder, dim, opt, opt_d"),
        ([1, 2], "holds no step"),
        (
            {"step": 3, "history": [], "rng": {}, "encoder": {}, "dim": {}, "opt": {}, "opt_d": {}},
            "disagree",
        ),
        (
            {
                "step": 0,
                "history": [],
                "rng": {},
                "encoder": {"w": torch.zeros(1)},
                "dim": {},
                "opt": {},
                "opt_d": {},
            },
            "does not fit",
        ),
    ],
)
def test_a_checkpoint_without_a_training_state_is_named_damaged(tmp_path, state, needle):
    ckpt = tmp_path / "checkpoint.pt"
    torch.save(state, ckpt)
    with pytest.raises(RunError, match=f"{ckpt} .*{needle}.*delete it to start"):
        run(["case=c"], steps=2, checkpoint=ckpt)
