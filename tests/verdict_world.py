"""A fabricated world of sweeps with known answers, at the level of the statistics' inputs, vectorised
over many simulated sweeps: for the calibration tests of the verdict (tests/test_verdict.py).

Per-image max-MI and mean-MI of case k, seed s, photograph p, crop j (the embedded set's layout: 20
photographs x 16 crops), from variance components sized like the study's (design notes, "Scale facts";
README, "Does the study's conclusion hold?"):

    y = mu_k + A_s + B_{g(k),s} + b_{k,s} + P_p + C_{p,j} + D_{k,p} + E_{k,s,p} + e_{k,s,p,j}

A: the seed, every case alike (cancels in a paired difference); B: the seed within a group of cases that
share structure (a and c are one network on the scored pixels: one group; b and d each their own), so
c - a varies little from seed to seed and c - d a lot (0.05 nats SD, as measured); b: each case's own
seed effect; P, C: photograph and crop (cancel in pairs); D: case x photograph (the unit part of a paired
difference: the same for every seed); E: case x seed x photograph; e: case x seed x image (decides
which case wins an image). The loss-curve claim gets one value per training run from the seed effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CASES = ("a", "b", "c", "d")
GROUP = {"a": 0, "c": 0, "b": 1, "d": 2}  # cases that share structure share their seed effect B


@dataclass(frozen=True)
class World:
    means: dict = field(default_factory=lambda: dict.fromkeys(CASES, 0.9))  # mu_k
    sd_seed: float = 0.04  # A
    sd_group: float = 0.035  # B: c - d per seed about 0.05 nats
    sd_case_seed: float = 0.0015  # b: c - a per seed about 0.002
    sd_photo: float = 0.2  # P
    sd_crop: float = 0.1  # C
    sd_case_photo: float = 0.01  # D
    sd_case_seed_photo: float = 0.01  # E
    sd_noise: float = 0.03  # e
    photos: int = 20
    crops: int = 16

    def images(self, rng, n_sweeps: int, n_seeds: int) -> np.ndarray:
        """(n_sweeps, cases, seeds, photos, crops) of per-image values."""
        n, c, s, p, j = n_sweeps, len(CASES), n_seeds, self.photos, self.crops
        mu = np.array([self.means[k] for k in CASES])[None, :, None, None, None]
        group = np.array([GROUP[k] for k in CASES])
        seed = rng.normal(0, self.sd_seed, (n, 1, s, 1, 1))
        seed = seed + rng.normal(0, self.sd_group, (n, 3, s))[:, group][..., None, None]
        seed = seed + rng.normal(0, self.sd_case_seed, (n, c, s, 1, 1))
        photo = rng.normal(0, self.sd_photo, (n, 1, 1, p, 1))
        photo = photo + rng.normal(0, self.sd_crop, (n, 1, 1, p, j))
        photo = photo + rng.normal(0, self.sd_case_photo, (n, c, 1, p, 1))
        run = rng.normal(0, self.sd_case_seed_photo, (n, c, s, p, 1))
        return mu + seed + photo + run + rng.normal(0, self.sd_noise, (n, c, s, p, j))

    def runs(self, rng, n_sweeps: int, n_seeds: int) -> np.ndarray:
        """(n_sweeps, cases, seeds): one value per training run (the loss-curve claim's)."""
        mu = np.array([self.means[k] for k in CASES])[None, :, None]
        group = np.array([GROUP[k] for k in CASES])
        x = rng.normal(0, self.sd_seed, (n_sweeps, 1, n_seeds))
        x = x + rng.normal(0, self.sd_group, (n_sweeps, 3, n_seeds))[:, group]
        return mu + x + rng.normal(0, self.sd_case_seed, (n_sweeps, len(CASES), n_seeds))
