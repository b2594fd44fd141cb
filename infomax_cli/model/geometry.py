"""Measurement geometry: which image pixel each feature-map pixel is compared with.

Each recorded layer's map pixels sit on a grid over the image: map pixel i (in either axis) is centred
on image pixel stride * i + offset, and sees the image pixels within `radius` of that centre (its
receptive field). For any module the grid is measured on the module itself (`probe.py`: the gradient of
map pixels with respect to the input); for the study's stacks of stride-1 layers with kernel k and
padding p it is also known in closed form (`geometry` below), and the two agree:
- `Conv2d`: output pixel i is centred on input pixel i + (k - 1)/2 - p;
- `ConvTranspose2d`: output pixel i is centred on input pixel i - (k - 1)/2 + p.
The study's four cases end at offsets a +4, b -4, c 0, d 0, stride 1, radius 4.

Every layer is scored on the same image pixels: the central region that the encoder covers with whole
receptive fields, [R, S - R) in each axis with R the largest radius of its layers (88 x 88 for four 3x3
layers on 96 x 96 images), each map cropped at its own offset; a strided map's pixels are compared with
the image taken on the map's grid (every stride-th pixel of the region, at its centres). On those pixels
two encoders that compute the same function (case a and case c built from one seed: padding has no
parameters) give the same MI.

A sweep whose cases see different regions is measured, by default (`measure.region=common`), on the
pixels every case covers: the intersection of their last layers' windows (`Window`: a region and a
grid), `common_window`; `Geometry.on(window)` is the encoder's geometry measuring those pixels (its last
layer; the critics and the information plane keep the case's own region).

Alignments (`measure.align`; the critics and the information plane use the same one; applied to
tensors by `align.py`, so this module needs no torch):
- `geometry` (default): the common region above, from the layers' geometry;
- `resize`: the maps resized (bilinear) to the image (what the blog most likely did; the critics then see
  the image resized to the latent instead, as in the study);
- `crop`: the larger of image and maps centre-cropped to the smaller (ignores the offsets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..config.rules import layer_size
from ..errors import ConfigError


@dataclass(frozen=True)
class Window:
    """Image pixels p with lo <= p < hi and p = phase (mod step), in each axis: the pixels measured."""

    lo: int
    hi: int
    step: int = 1
    phase: int = 0

    @property
    def pixels(self) -> range:
        return range(self.lo + (self.phase - self.lo) % self.step, self.hi, self.step)

    @property
    def side(self) -> int:
        return len(self.pixels)

    def text(self) -> str:
        """'image pixels 15..80 (66 x 66)', or on a grid 'image pixels 8, 10, ..., 88 (41 x 41)'."""
        p, n = self.pixels, self.side
        if n == 0:
            return "no image pixel"
        where = f"{p[0]}..{p[-1]}" if self.step == 1 else f"{p[0]}, {p[1]}, …, {p[-1]}"
        return f"image pixels {where} ({n} × {n})"

    def as_dict(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "step": self.step, "phase": self.phase}


def common_window(windows: Sequence[Window]) -> Window | None:
    """The pixels every window holds: the overlap of their regions on the finest grid they all share
    (None when they share fewer than 2 pixels a side)."""
    if not windows:
        return None
    lo, hi = max(w.lo for w in windows), min(w.hi for w in windows)
    step = math.lcm(*(w.step for w in windows))
    phase = next(
        (p for p in range(step) if all((p - w.phase) % w.step == 0 for w in windows)), None
    )
    if phase is None:
        return None
    common = Window(lo, hi, step, phase)
    return common if common.side >= 2 else None


@dataclass(frozen=True)
class Geometry:
    """The geometry of an encoder's recorded layers on size x size images: per layer, its map side,
    offset, stride and radius (map pixel i is centred on image pixel stride * i + offset and sees the
    pixels within radius of it). `problem`: why the maps cannot be aligned by geometry (None: they can).
    `channels` and `names` (each layer's maps and name) are measured with it, not compared."""

    size: int  # the image's side S
    map_sizes: tuple[int, ...]
    offsets: tuple[int, ...]
    # R: the largest receptive-field radius of the layers; the common region is [R, S - R)
    radius: int
    strides: tuple[int, ...] = ()  # () for stride 1 throughout
    radii: tuple[int, ...] = ()  # each layer's receptive-field radius
    problem: str | None = None
    channels: tuple[int, ...] = field(default=(), compare=False)
    names: tuple[str, ...] = field(default=(), compare=False)
    window: Window | None = None  # the pixels measured when not the encoder's own region (`on`)

    @property
    def region(self) -> tuple[int, int]:
        """[lo, hi): the image pixels (per axis) covered with whole receptive fields by every layer
        (or the window's, when the geometry measures one)."""
        if self.window is not None:
            return self.window.lo, self.window.hi
        return self.radius, self.size - self.radius

    def stride(self, layer: int = -1) -> int:
        return self.strides[layer] if self.strides else 1

    def own_window(self, layer: int = -1) -> Window:
        """The encoder's own region on layer `layer`'s grid."""
        lo, hi = self.radius, self.size - self.radius
        step = self.stride(layer)
        return Window(lo, hi, step, self.offsets[layer] % step)

    def on(self, window: Window) -> Geometry:
        """This geometry measuring `window` (its last layer's maps centred on those pixels);
        ValueError when the window is not on that layer's grid or its maps do not reach it."""
        step, off, side = self.stride(), self.offsets[-1], self.map_sizes[-1]
        pixels = window.pixels
        if not pixels or window.step % step or (pixels[0] - off) % step:
            raise ValueError(
                f"{window.text()} are not on the maps' grid (stride {step}, offset {off})"
            )
        first, last = (pixels[0] - off) // step, (pixels[-1] - off) // step
        if first < 0 or last >= side:
            raise ValueError(f"the {side}x{side} maps do not reach {window.text()}")
        return replace(self, window=window)

    def map_step(self, layer: int = -1) -> int:
        """Every how many map pixels the window takes one (1: every pixel of the region)."""
        return 1 if self.window is None else self.window.step // self.stride(layer)

    def map_window(self, layer: int = -1) -> tuple[int, int]:
        """[lo, hi): the pixels of layer `layer`'s maps centred on the region (every map_step-th)."""
        step, off = self.stride(layer), self.offsets[layer]
        if self.window is not None:
            pixels = self.window.pixels
            return (pixels[0] - off) // step, (pixels[-1] - off) // step + 1
        lo, hi = self.region
        # the first map pixel centred at or after lo, and one past the last centred before hi
        return -((off - lo) // step), (hi - 1 - off) // step + 1

    def image_window(self, layer: int = -1) -> slice:
        """The image pixels (per axis) layer `layer`'s map window is centred on: the region on the
        layer's grid (or the window's pixels)."""
        if self.window is not None:
            pixels = self.window.pixels
            return slice(pixels[0], pixels[-1] + 1, self.window.step)
        first, end = self.map_window(layer)
        step, off = self.stride(layer), self.offsets[layer]
        return slice(step * first + off, step * (end - 1) + off + 1, step)

    def layers(self) -> list[dict]:
        """Each recorded layer's map size, stride, receptive-field offset and radius (summary.json)."""
        names = self.names or tuple(str(i + 1) for i in range(len(self.map_sizes)))
        return [
            {
                "layer": name,
                "map_size": m,
                "stride": self.stride(i),
                "offset": o,
                "radius": self.radii[i] if self.radii else None,
            }
            for i, (name, m, o) in enumerate(zip(names, self.map_sizes, self.offsets))
        ]


@dataclass(frozen=True)
class LayerGrid:
    """One recorded layer as measured: its map side and channels, and its grid over the image (or
    the problem that keeps it from having one)."""

    name: str
    size: int
    channels: int
    stride: int = 1
    offset: int = 0
    radius: int = 0
    problem: str | None = None

    def with_problem(self, what: str) -> LayerGrid:
        """This layer, marked as one that cannot be aligned by geometry, saying why and what to do."""
        return replace(
            self,
            problem=f"{what}: its maps cannot be put beside the image pixels their receptive fields "
            "are centred on; measure.align=resize measures it anyway.",
        )


def assemble(size: int, grids: Sequence[LayerGrid]) -> Geometry:
    """The Geometry of an encoder from its layers' measured grids: the common region from the largest
    radius, and `problem` set when a layer has no grid or its maps do not cover the region."""
    geom = Geometry(
        size,
        tuple(g.size for g in grids),
        tuple(g.offset for g in grids),
        max((g.radius for g in grids), default=0),
        tuple(g.stride for g in grids),
        tuple(g.radius for g in grids),
        next((g.problem for g in grids if g.problem), None),
        tuple(g.channels for g in grids),
        tuple(g.name for g in grids),
    )
    if geom.problem is None:
        geom = replace(geom, problem=_coverage_problem(geom))
    return geom


def _coverage_problem(geom: Geometry) -> str | None:
    """Why the layers' maps cannot be scored on a common region (None: they can)."""
    size, radius = geom.size, geom.radius
    if size - 2 * radius < 2:
        return (
            f"the receptive fields ({2 * radius + 1} pixels wide) leave no pixel of the {size}x{size} "
            f"images under whole receptive fields; use images of at least {2 * radius + 2} pixels "
            "(dataset.size), or measure.align=resize to measure it anyway."
        )
    for i, (name, m) in enumerate(zip(geom.names or geom.map_sizes, geom.map_sizes)):
        lo, hi = geom.map_window(i)
        if lo < 0 or hi > m or hi - lo < 2:
            return (
                f"layer {name}'s {m}x{m} maps do not cover the image's central {size - 2 * radius} "
                f"pixels (they would need map pixels {lo}..{hi - 1}); use measure.align=resize or crop."
            )
    return None


def layer_geometry(kind: str, kernel: int, padding: int, size: int) -> tuple[int, int]:
    """(output size, offset) of one stride-1 layer on a size-wide input (the size as the config's
    rules compute it)."""
    half = (kernel - 1) // 2
    offset = half - padding if kind == "conv" else padding - half
    return layer_size(kind, kernel, padding, size), offset


def geometry(layers: Sequence[str], kernel: int, padding: int, size: int) -> Geometry:
    """The Geometry of a stack of stride-1 layers (kinds `conv`/`deconv`, one kernel and padding) on
    size x size images; ConfigError (one line) when the stack does not fit the size or has no centre."""
    if kernel % 2 == 0:
        raise ConfigError(
            f"encoder.kernel={kernel} is even: a receptive field then has no centre pixel, so maps cannot be aligned "
            "with image pixels; use an odd kernel."
        )
    sizes, offsets, side, off = [], [], size, 0
    for i, kind in enumerate(layers):
        side, step = layer_geometry(kind, kernel, padding, side)
        if side < 2:
            raise ConfigError(
                f"dataset.size={size} is too small for case layers {list(layers)}: layer "
                f"{i + 1}'s maps would be {side}x{side}; "
                "use larger images (dataset.size)."
            )
        off += step
        sizes.append(side)
        offsets.append(off)
    radius = len(layers) * (kernel - 1) // 2
    radii = tuple((i + 1) * (kernel - 1) // 2 for i in range(len(layers)))
    geom = Geometry(size, tuple(sizes), tuple(offsets), radius, (1,) * len(layers), radii)
    if size - 2 * radius < 2:
        raise ConfigError(
            f"dataset.size={size} is too small for {len(layers)} layers of kernel {kernel}: no "
            "image pixel is covered by "
            f"whole receptive fields ({size} - 2*{radius} < 2); use images of at least {2 * radius + 2} pixels."
        )
    for i, m in enumerate(sizes):
        lo, hi = geom.map_window(i)
        if lo < 0 or hi > m:
            raise ConfigError(
                f"case layers {list(layers)} with padding {padding}: layer {i + 1}'s {m}x{m} "
                "maps do not cover the image's "
                f"central {size - 2 * radius} pixels (they would need map pixels "
                f"{lo}..{hi - 1}); use measure.align=resize or crop."
            )
    return geom
