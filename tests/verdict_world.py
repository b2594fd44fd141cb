"""A fabricated world of sweeps with known answers, at the level of the statistics' inputs, vectorised
over many simulated sweeps: for the calibration tests of the verdict (tests/test_verdict.py) and its
benchmark (benchmarks/bench_verdict.py).

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
The study's example images are two photographs of their own (one whole-photo crop each) with their own
case x photograph effect D_ex: the claim is about them, so its truth is mu_k + their mean D_ex, a
different number in every sweep.

Seeds are drawn in chunks on the same photographs, so a sweep of S seeds holds the first S seeds of a
longer one: looks at 5, 10, 20 seeds are looks at one growing sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CASES = ("a", "b", "c", "d")
GROUP = {"a": 0, "c": 0, "b": 1, "d": 2}  # cases that share structure share their seed effect B
C = CASES.index("c")
OTHERS = [i for i, k in enumerate(CASES) if k != "c"]
CHUNK = 5  # seeds drawn at once (bounds the memory of the per-image draws)


def pairs(cells: np.ndarray) -> np.ndarray:
    """(n, case, ...) -> (n, K, ...): c minus each other case."""
    return cells[:, [C]] - cells[:, OTHERS]


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
    sd_example_photo: float = 0.01  # D_ex: the example photographs' own case x photograph effect
    photos: int = 20
    crops: int = 16
    examples: int = 2

    @property
    def mu(self) -> np.ndarray:
        return np.array([self.means[k] for k in CASES])

    def _seed_effects(self, rng, n: int, s: int) -> np.ndarray:
        """(n, case, seeds): A + B + b."""
        group = np.array([GROUP[k] for k in CASES])
        x = rng.normal(0, self.sd_seed, (n, 1, s))
        x = x + rng.normal(0, self.sd_group, (n, 3, s))[:, group]
        return x + rng.normal(0, self.sd_case_seed, (n, len(CASES), s))

    def images(self, rng, n_sweeps: int, n_seeds: int, chunk: int = CHUNK):
        """Yield (n_sweeps, cases, <= chunk seeds, photos, crops) per-image values, chunk by chunk of
        seeds, all on the same photographs (P, C, D drawn once)."""
        n, c, p, j = n_sweeps, len(CASES), self.photos, self.crops
        photo = rng.normal(0, self.sd_photo, (n, 1, 1, p, 1))
        photo = photo + rng.normal(0, self.sd_crop, (n, 1, 1, p, j))
        photo = photo + rng.normal(0, self.sd_case_photo, (n, c, 1, p, 1))
        photo = photo + self.mu[None, :, None, None, None]
        for start in range(0, n_seeds, chunk):
            s = min(chunk, n_seeds - start)
            seed = self._seed_effects(rng, n, s)[..., None, None]
            run = rng.normal(0, self.sd_case_seed_photo, (n, c, s, p, 1))
            yield photo + seed + run + rng.normal(0, self.sd_noise, (n, c, s, p, j))

    def unit_means(self, rng, n_sweeps: int, n_seeds: int) -> np.ndarray:
        """(n_sweeps, cases, seeds, photos): each (seed, photograph)'s mean over its crops, drawn at
        that level (the same distribution as the mean of images())."""
        n, c, s, p = n_sweeps, len(CASES), n_seeds, self.photos
        photo = rng.normal(0, self.sd_photo, (n, 1, 1, p))
        photo = photo + rng.normal(0, self.sd_crop / np.sqrt(self.crops), (n, 1, 1, p))
        photo = photo + rng.normal(0, self.sd_case_photo, (n, c, 1, p))
        run = rng.normal(0, self.sd_case_seed_photo, (n, c, s, p))
        noise = rng.normal(0, self.sd_noise / np.sqrt(self.crops), (n, c, s, p))
        return (
            self.mu[None, :, None, None]
            + self._seed_effects(rng, n, s)[..., None]
            + photo
            + run
            + noise
        )

    def runs(self, rng, n_sweeps: int, n_seeds: int) -> np.ndarray:
        """(n_sweeps, cases, seeds): one value per training run (the loss-curve claim's)."""
        return self.mu[None, :, None] + self._seed_effects(rng, n_sweeps, n_seeds)

    def examples_means(self, rng, n_sweeps: int, n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
        """The example-images claim's values (n_sweeps, cases, seeds): the mean over the example
        photographs (one crop each) of each run; and its truth (n_sweeps, cases): mu_k plus their mean
        own effect D_ex, which the sweep's intervals are about."""
        n, c, s, p = n_sweeps, len(CASES), n_seeds, self.examples
        own = rng.normal(0, self.sd_example_photo, (n, c, 1, p))
        photo = rng.normal(0, self.sd_photo, (n, 1, 1, p)) + own
        run = rng.normal(0, self.sd_case_seed_photo, (n, c, s, p))
        noise = rng.normal(0, self.sd_noise, (n, c, s, p))
        y = self.mu[None, :, None, None] + self._seed_effects(rng, n, s)[..., None] + photo + run
        return (y + noise).mean(-1), self.mu[None, :] + own[:, :, 0].mean(-1)


def win_shares(world: World, rng, n_sweeps: int, n_seeds: int, tie: float, credit):
    """(n_sweeps, cases, seeds, photos) winner-share cells (the fraction of a photograph's crops each
    case wins, `credit` splitting ties within `tie`), and the same sweeps' mean max-MI cells."""
    shares, means = [], []
    for y in world.images(rng, n_sweeps, n_seeds):
        won = credit(np.moveaxis(y, 1, -1), tie).mean(-2)  # (n, seed, photo, case)
        shares.append(np.moveaxis(won, -1, 1))
        means.append(y.mean(-1))
    return np.concatenate(shares, 2), np.concatenate(means, 2)


# ------------------------------------------------------------------------ the claims of many sweeps
STUDY_FIRST = [C, *OTHERS]  # the cases as the rule takes them: the study case first
TIE = 0.02  # compare.tie: cases within it of an image's top split the image
MARGINS = {
    "loss_curves": 0.02,
    "example_images": 0.02,
    "winner_share": 0.05,
    "mean_max_mi": 0.02,
    "mean_mi": 0.02,
}


@dataclass(frozen=True)
class Claim:
    """One claim's cells in many sweeps, as the rule takes them, and its truth per pair."""

    cells: np.ndarray  # (n, cases (study first), S[, G])
    truth: np.ndarray  # (n or 1, K): c minus each other case, the parameter the intervals are about
    margin: float
    units_random: bool = True
    share: bool = False

    def first(self, n_seeds: int) -> np.ndarray:
        """The cells of the first n_seeds seeds (a look at the sweep when it had that many)."""
        return self.cells[:, :, :n_seeds]


def claims(world: World, rng, n_sweeps: int, n_seeds: int, credit) -> dict[str, Claim]:
    """Every claim of n_sweeps sweeps of n_seeds seeds. `credit`: the win credit (stats.win_credit)."""
    mu = world.mu[STUDY_FIRST]
    mu_diff = (mu[0] - mu[1:])[None]
    shares, max_mi = win_shares(world, rng, n_sweeps, n_seeds, TIE, credit)
    examples, example_truth = world.examples_means(rng, n_sweeps, n_seeds)
    share_truth = shares[:, STUDY_FIRST].mean((0, 2, 3))  # the population's, to Monte-Carlo error
    return {
        "loss_curves": Claim(
            world.runs(rng, n_sweeps, n_seeds)[:, STUDY_FIRST],
            mu_diff,
            MARGINS["loss_curves"],
            False,
        ),
        "example_images": Claim(
            examples[:, STUDY_FIRST],
            example_truth[:, [C]] - example_truth[:, OTHERS],
            MARGINS["example_images"],
            False,
        ),
        "winner_share": Claim(
            shares[:, STUDY_FIRST],
            (share_truth[0] - share_truth[1:])[None],
            MARGINS["winner_share"],
            share=True,
        ),
        "mean_max_mi": Claim(max_mi[:, STUDY_FIRST], mu_diff, MARGINS["mean_max_mi"]),
        "mean_mi": Claim(
            world.unit_means(rng, n_sweeps, n_seeds)[:, STUDY_FIRST], mu_diff, MARGINS["mean_mi"]
        ),
    }


def wrong(status: np.ndarray, truth: np.ndarray, margin: float) -> np.ndarray:
    """Decisions the truth contradicts: holds while some case is truly not behind c, fails while
    none is truly ahead of it, equivalent while some pair truly lies at or beyond the margin."""
    low, far = truth.min(-1), np.abs(truth).max(-1)
    return (
        ((status == "holds") & (low <= 0))
        | ((status == "fails") & (low >= 0))
        | ((status == "equivalent") & (far >= margin))
    )


def covers(low, high, truth) -> np.ndarray:
    """Per sweep: every pair's [low, high] covers its truth (the last axis)."""
    return ((low <= truth) & (truth <= high)).all(-1)


@dataclass
class Stopped:
    """One claim's sequential sweeps: each sweep's status and pairs at the look where it stopped
    (its first decision, or the last look), and that look's index."""

    status: np.ndarray
    low: np.ndarray
    high: np.ndarray
    est: np.ndarray
    look: np.ndarray


def run_looks(claim: Claim, looks, judge) -> Stopped:
    """Look at the sweeps at each seed count in `looks` in turn, each sweep stopping at its first
    decision (data-dependent stopping). `judge(cells, claim, before, n)` -> (status, est, low, high)
    (the pairs on the last axis) of a look at n seeds after looks at `before`."""
    n_sweeps = claim.cells.shape[0]
    out, done = None, np.zeros(n_sweeps, dtype=bool)
    for i, n in enumerate(looks):
        status, est, low, high = judge(claim.first(n), claim, tuple(looks[:i]), n)
        now = Stopped(np.asarray(status, dtype=object), low, high, est, np.full(n_sweeps, i))
        if out is None:
            out = now
        else:  # the sweeps still looking take this look's verdict
            for name in ("status", "low", "high", "est", "look"):
                getattr(out, name)[~done] = getattr(now, name)[~done]
        done |= np.isin(out.status, ("holds", "fails", "equivalent"))
    return out
