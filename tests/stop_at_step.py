"""A case for the stopped-job tests: the study's case c, which signals its own process at a chosen
training step, so that where a job stops is fixed, not a race between the test and the job.

Named as any module of your own (`case=custom case.encoder._target_=stop_at_step.StopAtStep`, this
folder on PYTHONPATH), it counts its training forwards (the module in training mode with gradients on:
not the geometry probe, the information plane or the measurement) and, at the STOP_AT_STEP-th, sends
STOP_SIGNAL to the process it runs in, once: it first makes the STOP_MARKER file, and a job that finds
it there (the same command run again, resuming) trains on undisturbed.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

from infomax_cli.model.encoders import Encoder


class StopAtStep(Encoder):
    def __init__(self):
        super().__init__(["conv"] * 4, [8, 16, 16], 32, padding=1)  # conf/case/c.yaml's stack
        self.steps = 0

    def forward(self, x: torch.Tensor, all_layers: bool = False):
        if self.training and torch.is_grad_enabled():
            self.steps += 1
            marker = Path(os.environ["STOP_MARKER"])
            if self.steps == int(os.environ["STOP_AT_STEP"]) and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.Signals[os.environ["STOP_SIGNAL"]])
        return super().forward(x, all_layers)
