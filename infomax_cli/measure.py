"""Encoder maps -> MI tables: every image through the encoder in batches, MI with each of its maps.

One way to measure: `measure` takes a list of protocols (alignment, estimator, bins) and measures them
all on one forward pass of each batch. A job's own protocol comes first (the tables' `mi`), its other
alignments (`measure.alt_aligns`) follow; `infomax sensitivity` hands in its whole grid.

Under the first protocol, two nulls beside the MI of an image with its own maps:
- `mi_null`: the maps against *other* images (other photographs for the embedded set), the mean over
  `measure.null_partners` partners drawn from (seed, image id, k), with their spread `mi_null_sd`: what
  an unrelated image shares with the maps, the floor for images (natural images share spatial
  structure, so this is well above the estimator's bias);
- `mi_shuffled`: the image with its pixels shuffled against the maps: the estimator's bias for
  independent pixels, about (B - 1)^2 / 2N.
Every random draw (null partners, shuffle, KSG pixels) is a function of (seed, global image id), so the
tables do not depend on `measure.batch_size`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import mi
from .config import Estimator, MeasureConfig
from .errors import Interrupted, RunError
from .model.align import align_images, align_pair
from .model.geometry import Geometry
from .model.probe import Recorder
from .sources.gray import GrayImages

# "null": the null partners' random stream, apart from the other draws of a seed
NULL_STREAM = 0x6E756C6C


@dataclass(frozen=True)
class Protocol:
    """How MI is measured: which image pixels each map pixel meets (`align`), the estimator, and the
    histogram's bins (None for the estimators without bins)."""

    align: str
    estimator: str = "histogram"
    bins: int | None = 20

    @classmethod
    def of(cls, cfg: MeasureConfig, align: str | None = None) -> Protocol:
        """The `measure` config's protocol (under another alignment when `align` is given)."""
        est = str(cfg.estimator)
        bins = int(cfg.bins) if est == Estimator.histogram else None
        return cls(str(cfg.align if align is None else align), est, bins)

    @property
    def label(self) -> str:
        return f"{self.align} {self.estimator}" + (
            f" {self.bins} bins" if self.bins is not None else ""
        )

    def options(self, cfg: MeasureConfig) -> dict:
        """`mi.estimate_mi`'s keyword arguments: this protocol's estimator and bins, the rest of the
        estimator's settings (binning, Miller-Madow, KSG) from the `measure` config."""
        bins = cfg.bins if self.bins is None else self.bins
        return {**estimator_options(cfg), "estimator": self.estimator, "bins": bins}


@dataclass(frozen=True)
class Plan:
    """What one measurement measures: the protocols (the first is the tables' own; all on one forward
    pass), the null partners per image under the first (0: no nulls) and the positions whose aligned
    image and maps are kept for pictures. `cfg` gives the estimator's settings and the batch size;
    `seed` every random draw."""

    cfg: MeasureConfig
    seed: int
    protocols: tuple[Protocol, ...]
    null_partners: int = 0
    examples: tuple[int, ...] = ()

    @classmethod
    def for_job(cls, cfg: MeasureConfig, seed: int, trained: bool, examples=()) -> Plan:
        """A job's measurement. Trained: its own protocol, then its other alignments
        (`measure.alt_aligns`), the nulls and the example pictures; untrained: the control alone."""
        own = Protocol.of(cfg)
        if not trained:
            return cls(cfg, int(seed), (own,))
        others = (Protocol.of(cfg, a) for a in cfg.alt_aligns)
        protocols = tuple(dict.fromkeys([own, *others]))
        return cls(cfg, int(seed), protocols, int(cfg.null_partners), tuple(examples))


@dataclass(frozen=True)
class Hooks:
    """Called after each batch: `on_batch(images done)`, and `stop()`, which names a signal to stop on."""

    on_batch: Callable[[int], None] | None = None
    stop: Callable[[], str | None] = lambda: None


@dataclass
class Measurement:
    """MI of every image with each map, (N, C) arrays in nats, per protocol (in the plan's order); the
    nulls under the first protocol; the example images' pictures; seconds spent estimating (per
    protocol, and on the nulls)."""

    protocols: tuple[Protocol, ...]
    by_protocol: dict[Protocol, np.ndarray]
    # the maps against other images' pixels: the mean over the null partners, and their spread (the
    # standard deviation over partners, ddof 1; NaN with one partner)
    mi_null: np.ndarray | None = None
    mi_null_sd: np.ndarray | None = None
    mi_shuffled: np.ndarray | None = None  # the maps against the image's pixels shuffled
    # position -> (image, maps), aligned by the first protocol
    examples: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    seconds: dict[Protocol, float] = field(default_factory=dict)
    null_seconds: float = 0.0  # of which the nulls (partners' pixels aligned, both nulls estimated)

    @property
    def mi(self) -> np.ndarray:
        """The MI under the first protocol: the tables' `mi`."""
        return self.by_protocol[self.protocols[0]]


class NotFinite(RunError):
    """An encoder gave maps that are not numbers (NaN or infinite): the layer, the map and the image
    (its global id, or its position in the batch) say where; the caller adds when (the step)."""

    def __init__(self, layer: str, channel: int, value: float, image: int):
        self.layer, self.channel, self.value, self.image = layer, channel, value, image
        super().__init__(f"map {channel} of layer {layer} is {value} on image {image}")


def not_finite(cfg, e: NotFinite, when: str) -> RunError:
    """One line for maps that are not numbers: the layer, the map, the image and the step."""
    return RunError(
        f"case {cfg.case.name}: {e} ({when}): the encoder must give numbers; nothing was measured "
        "from it. Check its forward (a division by zero, a log of 0), or try a smaller train.lr."
    )


def check_finite(maps: torch.Tensor, layer: str, ids: Sequence[int] | None = None) -> None:
    """NotFinite naming the first map (B, C, ...) of `layer` that holds a NaN or an infinity."""
    finite = torch.isfinite(maps)
    if bool(finite.all()):
        return
    bad = (~finite).flatten(2).any(-1) if maps.ndim > 2 else ~finite
    b, c = (int(i) for i in torch.nonzero(bad)[0])
    value = float(maps[b, c][~finite[b, c]].flatten()[0])
    raise NotFinite(layer, c, value, int(ids[b]) if ids is not None else b)


def estimator_options(cfg: MeasureConfig) -> dict:
    """The keyword arguments of `mi.estimate_mi` taken from the `measure` config."""
    return {
        "estimator": cfg.estimator,
        "bins": cfg.bins,
        "binning": cfg.binning,
        "miller_madow": cfg.miller_madow,
        "ksg_k": cfg.ksg_k,
        "ksg_samples": cfg.ksg_samples,
    }


def null_partners(groups: Sequence, ids: Sequence[int], seed: int, k: int = 1) -> np.ndarray:
    """For each image (position i, global id ids[i]) the positions of its k null partners, (N, k):
    images of other groups, partner j drawn from (seed, ids[i], j) alone, so that neither the batch
    size nor the other images move it. The partners come from k different groups while there are
    enough, else from images not drawn yet; -1 where every image is of one group. Partner 0 is the
    one partner drawn before `measure.null_partners` existed."""
    codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1].reshape(-1)
    n = codes.size
    out = np.full((n, k), -1, dtype=np.int64)
    if n < 2 or (codes == codes[0]).all():
        return out
    for i in range(n):
        for j in range(k):
            key = [int(seed) % 2**63, int(ids[i]), NULL_STREAM, *([j] if j else [])]
            allowed = _partner_choices(codes, i, out[i, :j])
            out[i, j] = _draw(np.random.default_rng(key), allowed)
    return out


def _partner_choices(codes: np.ndarray, i: int, drawn: np.ndarray) -> np.ndarray:
    """Which images may be image i's next partner (a boolean mask): another group than its own and
    than those drawn already while such groups remain, else another image than those drawn while
    any remain, else any image of another group."""
    other = codes != codes[i]
    fresh_group = other & ~np.isin(codes, codes[drawn])
    if fresh_group.any():
        return fresh_group
    fresh_image = other.copy()
    fresh_image[drawn] = False
    return fresh_image if fresh_image.any() else other


def _draw(rng: np.random.Generator, allowed: np.ndarray) -> int:
    """A uniform draw among the allowed positions: by rejection (one draw when most are allowed),
    else directly among them (one group holds nearly every image)."""
    for _ in range(64):
        j = int(rng.integers(allowed.size))
        if allowed[j]:
            return j
    choices = np.flatnonzero(allowed)
    return int(choices[rng.integers(choices.size)])


@torch.inference_mode()
def measure(
    encoder: torch.nn.Module,
    geom: Geometry | None,
    images: GrayImages,
    plan: Plan,
    hooks: Hooks | None = None,
) -> Measurement:
    """MI between each image and each of the encoder's maps under every protocol of the plan, each
    batch through the encoder once; `geom` (the encoder's Geometry) is needed by `align=geometry`.
    `images`: the bundle measured (GrayImages.on the encoder's device, or anything with `batch`,
    `image_ids`, `groups` and a length); the null partners are drawn by id, among other groups."""
    encoder.eval()
    hooks = hooks or Hooks()
    n = len(images)
    partners = None
    if plan.null_partners:
        groups = images.groups if images.groups is not None else images.image_ids
        partners = null_partners(groups, images.image_ids, plan.seed, plan.null_partners)
    out = _Collected(plan.protocols)
    for lo in range(0, n, plan.cfg.batch_size):
        idx = torch.arange(lo, min(lo + plan.cfg.batch_size, n))
        x = images.batch(idx)
        batch = _Batch(images.image_ids[lo : lo + len(idx)], x, encoder(x))
        check_finite(batch.maps, "output", batch.ids)  # NaN maps would give NaN tables
        img, aligned = _protocols(batch, geom, plan, out)
        if partners is not None:
            t0 = time.perf_counter()
            who = partners[lo : lo + len(idx)]
            for key, values in _nulls(images, who, batch, (img, aligned), geom, plan).items():
                out.add(key, values)
            out.null_seconds += time.perf_counter() - t0
        for pos in set(plan.examples).intersection(idx.tolist()):
            out.examples[pos] = (
                img[pos - lo].float().cpu().numpy(),
                aligned[pos - lo].float().cpu().numpy(),
            )
        if hooks.on_batch is not None:
            hooks.on_batch(len(idx))
        signal_name = hooks.stop()
        if signal_name:
            raise Interrupted.by(
                signal_name, f"{signal_name} during measurement: training is checkpointed."
            )
    return out.measurement(plan.protocols, nulls=partners is not None)


@dataclass(frozen=True)
class _Batch:
    """One batch: the images' global ids, the images (B, 1, S, S) and their maps (B, C, h, w)."""

    ids: np.ndarray
    x: torch.Tensor
    maps: torch.Tensor

    def view(self, align: str) -> str:
        """Which pixels `align` compares: resize and crop leave maps of the image's size as they are,
        so both then measure the same arrays ("as is")."""
        same_size = self.maps.shape[-2:] == self.x.shape[-2:]
        return "as is" if align in ("resize", "crop") and same_size else align


def _protocols(
    batch: _Batch, geom: Geometry | None, plan: Plan, out: _Collected
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch under every protocol of the plan; returns the first protocol's (image, maps) pair.
    Each alignment is made once, and one estimate serves the protocols that measure the same pixels
    with the same estimator (its seconds counted once, for the first of them)."""
    views: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    done: dict[tuple, np.ndarray] = {}
    for p in plan.protocols:
        view = batch.view(p.align)
        if view not in views:
            views[view] = align_pair(batch.x, batch.maps, p.align, geom)
        key = (view, p.estimator, p.bins)
        if key not in done:
            t0 = time.perf_counter()
            done[key] = _estimate(*views[view], p, plan, batch.ids)
            out.seconds[p] += time.perf_counter() - t0
        out.add(p, done[key])
    return views[batch.view(plan.protocols[0].align)]


def _estimate(
    pixels: torch.Tensor, maps: torch.Tensor, p: Protocol, plan: Plan, ids: np.ndarray
) -> np.ndarray:
    """MI (B, C) of each image's pixels (B, S', S') with its aligned maps under protocol p."""
    return mi.estimate_mi(pixels, maps, seed=plan.seed, ids=ids, **p.options(plan.cfg)).numpy()


def _nulls(
    images: GrayImages,
    partners: np.ndarray,
    batch: _Batch,
    view: tuple[torch.Tensor, torch.Tensor],
    geom: Geometry | None,
    plan: Plan,
) -> dict[str, np.ndarray]:
    """The batch's nulls under the first protocol, from its (image, maps) `view`: `mi_null`, the mean
    over each image's partners (B, K) of its maps against the partner's pixels, with their standard
    deviation `mi_null_sd` (NaN with one partner), and `mi_shuffled`, against its own pixels shuffled."""
    img, aligned = view
    null = np.stack([_partner_mi(images, p, batch, aligned, geom, plan) for p in partners.T])
    sd = null.std(0, ddof=1) if len(null) > 1 else np.full_like(null[0], np.nan)
    shuffled = mi.shuffle_pixels(img[:, None], seed=plan.seed, ids=batch.ids)[:, 0]
    return {
        "mi_null": null.mean(0),
        "mi_null_sd": sd,
        "mi_shuffled": _estimate(shuffled, aligned, plan.protocols[0], plan, batch.ids),
    }


def _partner_mi(
    images: GrayImages,
    partners: np.ndarray,
    batch: _Batch,
    aligned: torch.Tensor,
    geom: Geometry | None,
    plan: Plan,
) -> np.ndarray:
    """MI of each image's aligned maps with its partner image's pixels, the partner aligned as the
    first protocol aligns the image (NaN where it has no partner)."""
    res = np.full(aligned.shape[:2], np.nan)
    has = np.flatnonzero(partners >= 0)
    if has.size:
        first = plan.protocols[0]
        partner = images.batch(torch.from_numpy(partners[has]))
        other = align_images(partner, batch.maps.shape[-2:], first.align, geom)
        own = aligned[torch.from_numpy(has).to(aligned.device)]
        res[has] = _estimate(other, own, first, plan, batch.ids[has])
    return res


class _Collected:
    """The per-batch results, joined at the end."""

    def __init__(self, protocols: Sequence[Protocol]):
        self.parts: dict = {p: [] for p in protocols}
        self.seconds: dict[Protocol, float] = {p: 0.0 for p in protocols}
        self.examples: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.null_seconds = 0.0

    def add(self, key, values: np.ndarray) -> None:
        self.parts.setdefault(key, []).append(values)

    def joined(self, key) -> np.ndarray:
        parts = self.parts.get(key)
        return np.concatenate(parts) if parts else np.empty((0, 0))

    def measurement(self, protocols: tuple[Protocol, ...], nulls: bool) -> Measurement:
        return Measurement(
            protocols,
            {p: self.joined(p) for p in protocols},
            self.joined("mi_null") if nulls else None,
            self.joined("mi_null_sd") if nulls else None,
            self.joined("mi_shuffled") if nulls else None,
            self.examples,
            dict(self.seconds),
            self.null_seconds,
        )


@torch.inference_mode()
def layer_mi(
    encoder: torch.nn.Module,
    recorder: Recorder,
    probe: torch.Tensor,
    cfg: MeasureConfig,
    seed: int,
    geom: Geometry | None = None,
) -> list[float]:
    """Mean MI between the probe images and each recorded layer's maps (one value per layer), each
    layer aligned as the measurement aligns the last (`geometry`: every layer on the same image
    pixels, on its own grid); NotFinite when a layer's maps are not numbers."""
    was_training = encoder.training
    encoder.eval()
    opts = estimator_options(cfg)
    out = []
    for layer, (name, maps) in enumerate(recorder(encoder, probe)):
        check_finite(maps, name)
        img, aligned = align_pair(probe, maps.float(), cfg.align, geom, layer)
        out.append(float(mi.estimate_mi(img, aligned, seed=seed, **opts).mean()))
    encoder.train(was_training)
    return out
