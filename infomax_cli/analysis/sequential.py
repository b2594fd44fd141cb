"""Looking again and again at a growing sweep without spending more than its error rate: group-sequential
error spending (Lan and DeMets), with t-based boundaries for the unknown variance.

A sweep is looked at as its seeds come in (`infomax compare` after each round of seeds). Each look is a
test; deciding at the first look that shows a difference, at the full 5% each time, decides a null claim
far more often than 5% (design notes, "Looking again and again"). A *plan* fixes in advance the most seeds
the sweep will get (`compare.max_seeds`, its information: look k's information fraction is
t_k = n_k / max_seeds) and a spending function a(t), the error spent by information t (a(0) = 0,
a(1) = alpha). Look k's one-sided boundary c_k on the z scale solves

    P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = a(t_k) - a(t_{k-1})

for the standardised statistics of one growing sample (Brownian motion in the information:
corr(Z_j, Z_k) = sqrt(t_j / t_k)); so the chance that *any* look crosses, however many looks and whenever
they come, is at most a(1) = alpha. The boundaries are found by numerical integration of the density of
the statistic that has not yet crossed, look by look (Armitage, McPherson and Rowe; Jennison and
Turnbull, "Group Sequential Methods", ch. 19), on a grid.

The variance is estimated from few seeds, so the boundary is used as a *nominal level*: look k's one-sided
p_k = 1 - Phi(c_k), and every interval at that look takes its t quantiles (S-1 seed degrees of freedom,
G-1 unit ones) at p_k (Jennison and Turnbull, ch. 11): the same intervals the fixed-size rule computes,
at a smaller error per look. A limit at p_k for every look of the plan is a repeated confidence limit:
it holds at all looks at once with probability >= 1 - alpha, so a decision read off it at any look,
stopping there or not, is wrong at most alpha of the time.

Spending functions (`compare.spending`): `obrien_fleming`, a(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)),
spends almost nothing early and keeps the last look close to the fixed-size test; `pocock`,
a(t) = alpha log(1 + (e - 1) t), spends evenly: early looks can decide large differences, the last look
is stricter than the fixed-size test.

Special looks: a look with no more seeds than an earlier one adds no information: it keeps that look's
boundary and spends nothing. The first look at or beyond the plan's maximum spends what is left (a
sweep that starts with more seeds than the plan is one fixed-size test); looks after it are not tests
(the sweep re-reads that final look: looks.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

OBRIEN_FLEMING, POCOCK = "obrien_fleming", "pocock"
SPENDING = (OBRIEN_FLEMING, POCOCK)
STEP = 0.02  # the grid's spacing on the z scale (the boundaries' crossing probabilities to ~1e-5)
LOW = -10.0  # the grid's lower end: a statistic below it never comes back
HIGH = 40.0  # the largest boundary solved for: beyond it a look spends (much) under 1e-300


def spent(t, alpha: float, kind: str = OBRIEN_FLEMING) -> np.ndarray:
    """The error a spending function `kind` has spent by information fraction t (clipped to [0, 1])."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == OBRIEN_FLEMING:
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2 * ndtr(-ndtri(1 - alpha / 2) / np.sqrt(t)), 0.0)
    if kind == POCOCK:
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"unknown spending function {kind!r}: one of {', '.join(SPENDING)}")


class _State:
    """The sub-density of the statistic at the last look, on the region where it has not crossed: grid
    points z and their probability masses (their sum: the chance of no crossing so far)."""

    def __init__(self, t: float, z: np.ndarray, mass: np.ndarray):
        self.t, self.z, self.mass = t, z, mass

    def log_cross(self, c, t) -> np.ndarray:
        """log P(no crossing so far, Z_t >= c) for boundaries c at information t (arrays alike)."""
        c, t = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(t, dtype=float))
        step = np.sqrt(t - self.t)[..., None]
        x = (c[..., None] * np.sqrt(t)[..., None] - self.z * math.sqrt(self.t)) / step
        with np.errstate(divide="ignore"):
            terms = np.log(self.mass) + log_ndtr(-x)
        top = terms.max(-1, keepdims=True)
        return (top + np.log(np.exp(terms - top).sum(-1, keepdims=True)))[..., 0]

    def moved(self, c: float, t: float) -> _State:
        """The state at information t below boundary c."""
        z = _grid(c)
        step = math.sqrt(t - self.t)
        x = (z[:, None] * math.sqrt(t) - self.z[None, :] * math.sqrt(self.t)) / step
        density = np.exp(-0.5 * x * x) @ self.mass * math.sqrt(t) / (step * math.sqrt(2 * math.pi))
        return _State(t, z, density * _weights(z))


def _grid(c: float) -> np.ndarray:
    top = min(c, -LOW)
    n = max(int(math.ceil((top - LOW) / STEP)), 2) + 1
    return np.linspace(LOW, top, n)


def _weights(z: np.ndarray) -> np.ndarray:
    """Trapezoid weights of a uniform grid."""
    w = np.full(len(z), z[1] - z[0])
    w[[0, -1]] /= 2
    return w


def _first(t: float, target: float) -> tuple[float, _State]:
    c = float(min(-ndtri(target), HIGH)) if target > 0 else math.inf
    z = _grid(c)
    return c, _State(t, z, np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * _weights(z))


def solve(state: _State, t, target, iterations: int = 60) -> np.ndarray:
    """The boundaries at information t (array) that spend `target` (array) after `state`: bisection
    on log P(crossing), vectorised; inf where nothing is to be spent."""
    t, target = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(target, dtype=float))
    lo, hi = np.full(t.shape, -5.0), np.full(t.shape, HIGH)
    with np.errstate(divide="ignore"):
        want = np.log(np.where(target > 0, target, 1.0))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        above = state.log_cross(mid, t) > want
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.where(target > 0, (lo + hi) / 2, np.inf)


def _walk(fractions: Sequence[float], alpha: float, kind: str) -> tuple[list[float], _State | None]:
    """The boundaries of looks at these information fractions (capped at 1), and the state after the
    last."""
    bounds: list[float] = []
    state, used = None, 0.0
    for t in np.minimum(np.asarray(fractions, dtype=float), 1.0):
        if (
            state is not None and t <= state.t
        ):  # no new information: the same boundary, nothing spent
            bounds.append(bounds[-1])
            continue
        target = float(spent(t, alpha, kind)) - used
        if state is None:
            c, state = _first(float(t), target)
        else:
            c = float(solve(state, t, target))
            state = state.moved(c, float(t))
        used += target if np.isfinite(c) else 0.0
        bounds.append(c)
    return bounds, state


def boundaries(fractions: Sequence[float], alpha: float, kind: str = OBRIEN_FLEMING) -> np.ndarray:
    """One-sided z boundaries c_1..c_k of looks at information fractions t_1 <= ... <= t_k (capped at
    1), spending `alpha` in all by `kind` (module docstring)."""
    return np.asarray(_walk(fractions, alpha, kind)[0])


def next_boundaries(
    fractions: Sequence[float], nexts, alpha: float, kind: str = OBRIEN_FLEMING
) -> np.ndarray:
    """The boundary one more look would have at each information fraction in `nexts` (array), after
    looks at `fractions`: what the next look's level will be, for planning (seeds_needed). Computed
    once per (fractions, nexts, alpha, kind): a comparison asks the same for every claim and level."""
    nexts = np.minimum(np.asarray(nexts, dtype=float), 1.0)
    if nexts.size > CACHED:
        return _next_boundaries_of(fractions, nexts, alpha, kind)
    out = _next_boundaries(tuple(fractions), tuple(nexts.ravel().tolist()), float(alpha), kind)
    return np.asarray(out, dtype=float).reshape(nexts.shape)


CACHED = (
    4096  # the most candidate fractions whose boundaries are kept (a plan's seeds: 60 by default)
)


@functools.lru_cache(maxsize=1024)
def _next_boundaries(
    fractions: tuple[float, ...], nexts: tuple[float, ...], alpha: float, kind: str
) -> tuple[float, ...]:
    return tuple(
        _next_boundaries_of(fractions, np.asarray(nexts, dtype=float), alpha, kind).tolist()
    )


def _next_boundaries_of(fractions, nexts: np.ndarray, alpha: float, kind: str) -> np.ndarray:
    bounds, state = _walk(fractions, alpha, kind)
    if state is None:
        return np.where(nexts > 0, -ndtri(np.maximum(spent(nexts, alpha, kind), 1e-300)), np.inf)
    used = float(spent(state.t, alpha, kind))
    ahead = nexts > state.t
    safe = np.where(ahead, nexts, state.t + 1.0)  # placeholders where no new information comes
    out = solve(state, np.minimum(safe, 1.0 + state.t), spent(safe, alpha, kind) - used)
    return np.where(ahead, out, bounds[-1])


def nominal(z) -> np.ndarray:
    """A z boundary's one-sided nominal level: the error a look at it spends on its own, 1 - Phi(c)."""
    return ndtr(-np.asarray(z, dtype=float))


@functools.lru_cache(maxsize=4096)
def _bounds(fractions: tuple[float, ...], alpha: float, kind: str) -> tuple[float, ...]:
    return tuple(boundaries(fractions, alpha, kind))


@dataclass(frozen=True)
class Plan:
    """A sweep's plan: the most seeds it will get (`compare.max_seeds`) and how the error is spent over
    its looks (`compare.spending`). Looks are given by their seed counts; a look with fewer than two
    seeds tests nothing (no seed-to-seed spread) and spends nothing."""

    max_seeds: int
    spending: str = POCOCK

    def fractions(self, seeds: Sequence[int]) -> tuple[float, ...]:
        return tuple(min(n / self.max_seeds, 1.0) for n in seeds if n >= 2)

    def level(self, before: Sequence[int], n: int, alpha: float) -> float:
        """The one-sided nominal level of a look at n seeds after looks at `before` seeds, for a limit
        that spends `alpha` over the plan; 0 for a look that cannot test (n < 2)."""
        if n < 2:
            return 0.0
        return float(nominal(_bounds(self.fractions([*before, n]), alpha, self.spending)[-1]))

    def next_levels(self, before: Sequence[int], candidates, alpha: float) -> np.ndarray:
        """The level one more look would have at each seed count in `candidates` (array), after looks
        at `before` seeds and spending `alpha` in all."""
        candidates = np.asarray(candidates, dtype=float)
        nexts = np.minimum(candidates / self.max_seeds, 1.0)
        z = next_boundaries(self.fractions(before), nexts, alpha, self.spending)
        return np.where(candidates >= 2, nominal(z), 0.0)

    def spent(self, seeds: Sequence[int], alpha: float) -> float:
        """The error spent by the looks at these seed counts (the last one's information)."""
        fractions = self.fractions(seeds)
        return float(spent(max(fractions), alpha, self.spending)) if fractions else 0.0

    def reached(self, n: int) -> bool:
        """Whether a look at n seeds is the plan's last (it spends what is left)."""
        return n >= self.max_seeds
