"""Encoder maps -> MI tables: every image through the encoder in batches, MI with each of its maps.

Beside the MI of an image with its own maps, two nulls:
- `mi_null`: the maps against *another* image (another photograph for the embedded set), chosen from
  (seed, image id): what an unrelated image shares with the maps, the floor for images (natural images
  share spatial structure, so this is well above the estimator's bias);
- `mi_shuffled`: the image with its pixels shuffled against the maps: the estimator's bias for
  independent pixels, about (B - 1)^2 / 2N.
Every random draw (null partner, shuffle, KSG pixels) is a function of (seed, global image id), so the
tables do not depend on `measure.batch_size`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import mi
from .config import MeasureConfig
from .errors import Interrupted
from .model.geometry import Geometry, align, align_images

# "null": the null partner's random stream, apart from the other draws of a seed
NULL_STREAM = 0x6E756C6C


@dataclass
class Measurement:
    """MI of every image with each map, (N, C) arrays in nats, and the example images' pictures."""

    mi: np.ndarray
    mi_null: np.ndarray | None = None  # the maps against another image's pixels
    mi_shuffled: np.ndarray | None = None  # the maps against the image's pixels shuffled
    # align mode -> MI under that alignment
    alt: dict[str, np.ndarray] = field(default_factory=dict)
    # position -> (image, maps)
    examples: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


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


def null_partners(groups: Sequence, ids: Sequence[int], seed: int) -> np.ndarray:
    """For each image (position i, global id ids[i]) the position of its null partner: an image of
    another group, drawn uniformly from (seed, ids[i]) alone; -1 where every image is of one group."""
    codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1].reshape(-1)
    n = codes.size
    out = np.full(n, -1, dtype=np.int64)
    if n < 2 or (codes == codes[0]).all():
        return out
    for i in range(n):
        rng = np.random.default_rng([int(seed) % 2**63, int(ids[i]), NULL_STREAM])
        for _ in range(64):  # rejection: a draw of the image's own group is drawn again
            j = int(rng.integers(n))
            if codes[j] != codes[i]:
                out[i] = j
                break
        else:  # one group holds nearly every image: draw among the others directly
            others = np.flatnonzero(codes != codes[i])
            out[i] = int(others[rng.integers(others.size)])
    return out


@torch.inference_mode()
def measure(
    encoder: torch.nn.Module,
    images: Callable[[torch.Tensor], torch.Tensor],
    ids: Sequence[int],
    cfg: MeasureConfig,
    seed: int,
    geom: Geometry | None = None,
    groups: Sequence | None = None,
    example_ids: Iterable[int] = (),
    null: bool = True,
    alt_aligns: Iterable[str] = (),
    on_batch: Callable[[int], None] | None = None,
    stop: Callable[[], str | None] = lambda: None,
) -> Measurement:
    """MI between each image (positions 0..N-1, global ids `ids`) and each of the encoder's maps, aligned
    by `cfg.align`. With `null`: `mi_null` against a partner image of another group (`groups`, default:
    every image its own) and `mi_shuffled` against the image's pixels shuffled. `alt_aligns`: also the MI
    under these other alignments. `images(idx)` gives the (B, 1, S, S) batch of positions idx on the device;
    `example_ids` are positions whose aligned image and maps are kept."""
    encoder.eval()
    opts = estimator_options(cfg)
    mode = cfg.align
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.size
    alt_aligns = [a for a in dict.fromkeys(a for a in alt_aligns) if a != mode]
    partners = null_partners(groups if groups is not None else ids, ids, seed) if null else None
    wanted = set(int(i) for i in example_ids)
    out: dict[str, list] = {
        "mi": [],
        "mi_null": [],
        "mi_shuffled": [],
        **{a: [] for a in alt_aligns},
    }
    examples = {}
    for lo in range(0, n, cfg.batch_size):
        idx = torch.arange(lo, min(lo + cfg.batch_size, n))
        batch_ids = ids[lo : lo + len(idx)]
        x = images(idx)
        maps = encoder(x)
        img, aligned = align(x, maps, mode, geom)

        def estimate(
            pixels: torch.Tensor, m: torch.Tensor, who: np.ndarray = batch_ids
        ) -> np.ndarray:
            return mi.estimate_mi(pixels, m, seed=seed, ids=who, **opts).numpy()

        out["mi"].append(estimate(img, aligned))
        if null:
            out["mi_null"].append(
                _partner_mi(
                    images,
                    partners[lo : lo + len(idx)],
                    aligned,
                    maps.shape[-2:],
                    mode,
                    geom,
                    estimate,
                    batch_ids,
                )
            )
            out["mi_shuffled"].append(
                estimate(mi.shuffle_pixels(img[:, None], seed=seed, ids=batch_ids)[:, 0], aligned)
            )
        for a in alt_aligns:
            out[a].append(estimate(*align(x, maps, a, geom)))
        for pos in wanted.intersection(idx.tolist()):
            examples[pos] = (
                img[pos - lo].float().cpu().numpy(),
                aligned[pos - lo].float().cpu().numpy(),
            )
        if on_batch is not None:
            on_batch(len(idx))
        signal_name = stop()
        if signal_name:
            raise Interrupted.by(
                signal_name, f"{signal_name} during measurement: training is checkpointed."
            )

    def joined(key: str) -> np.ndarray:
        return np.concatenate(out[key]) if out[key] else np.empty((0, 0))

    return Measurement(
        joined("mi"),
        joined("mi_null") if null else None,
        joined("mi_shuffled") if null else None,
        {a: joined(a) for a in alt_aligns},
        examples,
    )


def _partner_mi(
    images,
    partners: np.ndarray,
    aligned: torch.Tensor,
    map_hw,
    mode: str,
    geom,
    estimate,
    batch_ids,
) -> np.ndarray:
    """MI of each image's maps with its partner image's pixels (NaN where it has no partner)."""
    res = np.full(aligned.shape[:2], np.nan)
    has = np.flatnonzero(partners >= 0)
    if has.size:
        other = align_images(images(torch.from_numpy(partners[has])), map_hw, mode, geom)
        res[has] = estimate(
            other, aligned[torch.from_numpy(has).to(aligned.device)], batch_ids[has]
        )
    return res


@torch.inference_mode()
def layer_mi(
    encoder: torch.nn.Module,
    probe: torch.Tensor,
    cfg: MeasureConfig,
    seed: int,
    geom: Geometry | None = None,
) -> list[float]:
    """Mean MI between the probe images and each encoder layer's maps (one value per layer), each layer
    aligned as the measurement aligns the last (`geometry`: every layer on the same image pixels)."""
    was_training = encoder.training
    encoder.eval()
    opts = estimator_options(cfg)
    out = []
    for layer, maps in enumerate(encoder(probe, all_layers=True)):
        img, aligned = align(probe, maps.float(), cfg.align, geom, layer)
        out.append(float(mi.estimate_mi(img, aligned, seed=seed, **opts).mean()))
    encoder.train(was_training)
    return out
