"""A case's encoder, built once a job: the study's stack of layers, or the module the user named
(`case.encoder._target_`), with its recorded layers and its geometry probed on the untrained module;
and the checks only a built module can answer, each a ConfigError in one line: its maps' size, their
grid over the image, the memory they take. The geometry is handed on with the module (the critics, the
measurement and the summary use it), never probed again.

`check_case` runs the same checks without keeping the module (a sweep's jobs, before any directory is
made): a stack's geometry in closed form, a module of your own built and probed untrained.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..choices import Align
from ..config import MIN_LATENT, MIN_MAP, MIN_REGION, Config, uses_geometry
from ..errors import ConfigError
from ..limits import check_memory
from .encoders import build_encoder
from .geometry import Geometry, geometry
from .probe import Recorder, probe_geometry


@dataclass(frozen=True)
class BuiltCase:
    """The case's untrained encoder, the layers recorded of it and where their pixels sit."""

    encoder: nn.Module
    recorder: Recorder
    geom: Geometry


def build_case(cfg: Config) -> BuiltCase:
    """The case's encoder built (its weights from the global generator: seed it first), its geometry
    probed on `dataset.size` images, and every check that needs it (ConfigError)."""
    check_stack(cfg)
    size = int(cfg.dataset.size)
    own = cfg.case.encoder is not None
    if own:
        check_memory(cfg, [1], [size])  # the images alone, before the module is probed on them
    encoder = build_encoder(cfg.case, cfg.encoder)
    recorder = Recorder.of(encoder, cfg.case.record_layers)
    geom = probe_geometry(encoder, size, recorder)
    if own:
        check_module(cfg, geom)
    elif uses_geometry(cfg.measure) and geom.problem is not None:
        raise ConfigError(f"case {cfg.case.name}: {geom.problem}")
    return BuiltCase(encoder, recorder, geom)


def check_case(cfg: Config) -> Geometry | None:
    """build_case's checks, the module not kept (a module of your own is built and probed); the
    case's geometry when the measurement aligns by it (a sweep's common pixels come from these)."""
    if cfg.case.encoder is None:
        return check_stack(cfg)
    geom = build_case(cfg).geom
    return geom if cfg.measure.align == Align.geometry else None


def check_stack(cfg: Config) -> Geometry | None:
    """The study's stack of layers aligned by geometry covers the image's central pixels (its geometry
    in closed form, nothing built; ConfigError if not): that geometry, None when not aligned by it."""
    if cfg.case.encoder is None and cfg.measure.align == Align.geometry:
        layers = list(cfg.case.layers)
        return geometry(layers, cfg.encoder.kernel, cfg.case.padding, cfg.dataset.size)
    return None


def check_module(cfg: Config, geom: Geometry) -> None:
    """A module of your own, as probed: maps (B, C, h, w) of at least MIN_MAP pixels a side within
    the memory limit and, when the measurement aligns by geometry, layers on grids over the image
    with some pixels under whole receptive fields (each ConfigError: one line)."""
    size = int(cfg.dataset.size)
    check_memory(cfg, [1, *geom.channels], [size, *geom.map_sizes])
    side = geom.map_sizes[-1]
    if side < max(MIN_MAP, MIN_LATENT):
        raise ConfigError(
            f"case {cfg.case.name} gives {side}x{side} maps on {size}x{size} images: at least "
            f"{MIN_MAP}x{MIN_MAP} are needed (MI over fewer pixels is mostly the estimator's bias); "
            "use larger images (dataset.size) or a module that keeps more of the image's size."
        )
    if uses_geometry(cfg.measure):
        if geom.problem is not None:
            raise ConfigError(f"case {cfg.case.name}: {geom.problem}")
        lo, hi = geom.map_window()
        if hi - lo < MIN_REGION:
            raise ConfigError(
                f"case {cfg.case.name} scores only {hi - lo}x{hi - lo} map pixels under whole "
                f"receptive fields on {size}x{size} images (at least {MIN_REGION} a side): use "
                "larger images (dataset.size), or measure.align=resize."
            )
