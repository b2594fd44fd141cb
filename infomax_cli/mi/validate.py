"""Every MI estimator scored against distributions whose MI is known (`infomax validate`, whose
command is commands.py's and whose picture and table are render/validation.py's).

Each task draws `seeds` independent samples of n pixels and feeds them, shaped (seeds, 1, H, W), through
`mi.estimate_mi`: the code path the measurement uses. Truths (nats):
- gaussian_rho=r: bivariate normal, I = -1/2 ln(1 - r^2);
- uniform_eps=e: X ~ U(0,1), Y = X + U(-e, e), I = e - ln 2e for e <= 1/2, else 1/(4e);
- monotone_rho=0.75: the Gaussian with Y -> exp(3Y); MI is unchanged (0.4133);
- identity: I(X; X) = H of the binned X, X ~ N(0,1). Its truth is the plug-in entropy of each sample
  binned as that histogram estimator bins it (equal-width or equal-frequency, 20 bins); for KSG and
  GCMI I(X; X) is infinite for continuous X, so they are not scored on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from .. import mi

BINS = 20
STUDY_N = 96 * 96  # the pixels of one study image: the full run's larger sample size
COLUMNS = ["estimator", "options", "task", "n", "truth", "mean", "std", "bias"]

# (estimator, options label, estimate_mi keyword arguments)
ESTIMATORS = [
    ("histogram", "bins=20", {"estimator": "histogram", "bins": BINS}),
    (
        "histogram",
        "bins=20 miller_madow",
        {"estimator": "histogram", "bins": BINS, "miller_madow": True},
    ),
    (
        "histogram",
        "bins=20 quantile",
        {"estimator": "histogram", "bins": BINS, "binning": "quantile"},
    ),
    ("ksg", "k=3 samples=1024", {"estimator": "ksg", "ksg_k": 3, "ksg_samples": 1024}),
    ("gcmi", "bias-corrected", {"estimator": "gcmi"}),
]


def _gaussian(rho: float) -> Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]:
    def draw(rng, n):
        x = rng.standard_normal(n)
        return x, rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(n)

    return draw


def _uniform(eps: float):
    def draw(rng, n):
        x = rng.random(n)
        return x, x + rng.uniform(-eps, eps, n)

    return draw


def _monotone(rng, n):
    x, y = _gaussian(0.75)(rng, n)
    return x, np.exp(3 * y)


def _identity(rng, n):
    x = rng.standard_normal(n)
    return x, x.copy()


def _uniform_truth(eps: float) -> float:
    return eps - math.log(2 * eps) if eps <= 0.5 else 1 / (4 * eps)


# (task, sampler, truth: a number, or None for "binned entropy of the sample")
TASKS = [
    *(
        (f"gaussian_rho={r:g}", _gaussian(r), -0.5 * math.log(1 - r * r))
        for r in (0.0, 0.25, 0.5, 0.75, 0.9)
    ),
    *((f"uniform_eps={e:g}", _uniform(e), _uniform_truth(e)) for e in (0.1, 0.75)),
    ("monotone_rho=0.75", _monotone, -0.5 * math.log(1 - 0.75**2)),
    ("identity", _identity, None),
]


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def binned_entropy(x: np.ndarray, bins: int, binning: str) -> float:
    """Plug-in entropy (nats) of x binned into equal-width bins over its range (numpy.histogram) or into
    equal-frequency bins by rank (floor((rank + 1/2) * bins / n), x without ties)."""
    if binning == "width":
        return _entropy(np.histogram(x, bins)[0])
    ranks = np.argsort(np.argsort(x))
    return _entropy(np.bincount(((ranks + 0.5) * bins / x.size).astype(int), minlength=bins))


def _shape(n: int) -> tuple[int, int]:
    side = math.isqrt(n)
    return (side, side) if side * side == n else (1, n)


def run_validation(sizes: Iterable[int], seeds: int) -> pd.DataFrame:
    """Every estimator on every task at each sample size n, over `seeds` samples: one row per
    (estimator, options, task, n) with the truth, the estimates' mean and std over seeds, and the bias."""
    rows = []
    for n in sizes:
        h, w = _shape(int(n))
        for t, (task, draw, truth) in enumerate(TASKS):
            pairs = [draw(np.random.default_rng([s, t, int(n)]), int(n)) for s in range(seeds)]
            x = torch.from_numpy(np.stack([p[0] for p in pairs]).reshape(seeds, h, w))
            y = torch.from_numpy(np.stack([p[1] for p in pairs]).reshape(seeds, 1, h, w))
            for name, options, kwargs in ESTIMATORS:
                if truth is None and name != "histogram":
                    continue  # I(X; X) is infinite for a continuous X: KSG and GCMI are not scored on it
                if truth is None:
                    binning = kwargs.get("binning", "width")
                    true = float(
                        np.mean([binned_entropy(p[0], kwargs["bins"], binning) for p in pairs])
                    )
                else:
                    true = truth
                est = mi.estimate_mi(x, y, seed=t, **kwargs)[:, 0].double().numpy()
                mean = float(est.mean())
                std = float(est.std(ddof=1)) if seeds > 1 else 0.0
                rows.append((name, options, task, int(n), true, mean, std, mean - true))
    return pd.DataFrame(rows, columns=COLUMNS)
