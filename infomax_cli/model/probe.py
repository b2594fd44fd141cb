"""Any encoder, measured where its receptive fields look: its geometry read off the module itself.

For each recorded layer, the gradient of one map pixel (its channels summed) with respect to the input,
on a few random images, is nonzero exactly on that pixel's receptive field (the images are several so
that a ReLU closed on one is open on another): the support's bounding box gives the pixel's centre in
the image and its radius. Three neighbouring interior pixels give the grid: map pixel i is centred on
image pixel stride * i + offset. The probe runs on the untrained module in eval mode with a random
generator of its own: no weight, no running statistic and no global random state is touched, so a
job's numbers are those it would have without it. A layer whose pixels do not sit on such a grid
(global pooling, attention over the whole image), or sit between image pixels (a receptive field of
even width), cannot be aligned by geometry: `Geometry.problem` says why, and `measure.align=resize`
measures it anyway.

Recorded layers: a module whose `forward` takes `all_layers` (the study's `Encoder`) gives them itself;
any other module is recorded by forward hooks on its top-level children in order (or the submodules a
case names in `case.record_layers`), then its output when that is not the last of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, first_line
from .geometry import Geometry, LayerGrid, assemble

# random images whose gradient supports are joined: a ReLU closed on one image is open on another
PROBE_IMAGES = 4
PROBE_SEED = 0x70726F62  # "prob": the probe's own generator
OUTPUT = "output"  # the name of the module's output when it is recorded after its children


# Hydra's keys that make `instantiate` build or call something: in a case's encoder only the top-level
# `_target_` is read, and none of these anywhere in its arguments (they are data)
SPECIAL_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")


def _special(value, where: str) -> str | None:
    """The first key of Hydra's special keys inside `value` (nested dicts and lists), as its path."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in SPECIAL_KEYS:
                return f"{where}.{k}"
            if found := _special(v, f"{where}.{k}"):
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if found := _special(v, f"{where}[{i}]"):
                return found
    return None


def module_class(target) -> type[nn.Module]:
    """The class `target` names (`mynet.Net`), imported, once it is known to be an nn.Module subclass:
    nothing it names is called before. ConfigError (one line) when it does not import or is not one."""
    from hydra._internal.utils import _locate

    if not target or not isinstance(target, str):
        raise ConfigError(
            "case.encoder needs _target_: the import path of an nn.Module class "
            "(case.encoder._target_=mynet.Net)."
        )
    try:
        cls = _locate(target)
    except ImportError as e:
        cause = e
        while cause.__cause__ is not None:  # the innermost says why: no module, no attribute
            cause = cause.__cause__
        raise ConfigError(
            f"case.encoder._target_={target} does not import ({type(cause).__name__}: "
            f"{first_line(cause)}): check the name, and that its module is on the path "
            "(PYTHONPATH=. infomax run ... from the folder that holds it)."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(
            f"case.encoder._target_={target} is a {type(cls).__name__}, not a torch nn.Module "
            "class: name a class that subclasses torch.nn.Module (nothing else is called)."
        )
    return cls


def instantiate_module(spec: dict) -> nn.Module:
    """The nn.Module a case's `encoder` node names: its `_target_` an nn.Module subclass (checked before
    anything is called), built with the other keys as keyword arguments, plain data: a nested
    `_target_` (or another of Hydra's special keys) is refused, never built. ConfigError (one line)
    when it does not import, is not a module class or cannot be built."""
    args = {k: v for k, v in spec.items() if k != "_target_"}
    if found := _special(args, "case.encoder"):
        raise ConfigError(
            f"{found} is not allowed: case.encoder's arguments are data (numbers, strings, lists); "
            "infomax builds only the module its _target_ names, nothing nested in them."
        )
    cls = module_class(spec.get("_target_"))
    target = spec["_target_"]
    try:
        return cls(**args)
    except Exception as e:  # the user's constructor: any failure is theirs to fix
        raise ConfigError(
            f"case.encoder: building {target} failed ({type(e).__name__}: {first_line(e)}); "
            "check its arguments (+case.encoder.NAME=VALUE adds one)."
        ) from None


@dataclass(frozen=True)
class Recorder:
    """Which layers of a module are recorded: submodule names (forward hooks), or None when the
    module's forward gives every layer itself (`forward(x, all_layers=True)`)."""

    names: tuple[str, ...] | None

    @classmethod
    def of(cls, module: nn.Module, names: Sequence[str] | None = None) -> Recorder:
        """The module's recorded layers: `names` when given, else its own `all_layers` forward, else its
        top-level children in order. ConfigError when a name is not a submodule."""
        if names:
            known = dict(module.named_modules())
            missing = [n for n in names if not n or n not in known]
            if missing:
                children = ", ".join(n for n, _ in module.named_children()) or "none"
                raise ConfigError(
                    f"case.record_layers names {missing[0]!r}, not a submodule of "
                    f"{type(module).__name__} (its children: {children}): use the names "
                    "module.named_modules() gives."
                )
            return cls(tuple(names))
        if "all_layers" in inspect.signature(module.forward).parameters:
            return cls(None)
        return cls(tuple(n for n, _ in module.named_children()))

    def __call__(self, module: nn.Module, x: torch.Tensor) -> list[tuple[str, object]]:
        """(name, output) of each recorded layer for the batch x, in order; the last is the module's
        output."""
        if self.names is None:
            return [(str(i + 1), o) for i, o in enumerate(module(x, all_layers=True))]
        found: dict[str, object] = {}
        subs = dict(module.named_modules())
        hooks = [subs[n].register_forward_hook(_keeper(found, n)) for n in self.names]
        try:
            out = module(x)
        finally:
            for h in hooks:
                h.remove()
        layers = [(n, found.get(n)) for n in self.names]
        if not layers or layers[-1][1] is not out:
            layers.append((OUTPUT, out))
        return layers


def _keeper(found: dict, name: str):
    """A forward hook that keeps the module's output under `name`."""

    def hook(_module, _inputs, output):
        found[name] = output

    return hook


def probe_geometry(module: nn.Module, size: int, recorder: Recorder) -> Geometry:
    """The Geometry of the module's recorded layers on size x size images, measured on the module.
    ConfigError (one line) when its forward fails or a layer's output is not a batch of maps."""
    was_training = module.training
    module.eval()
    try:
        return assemble(size, _probe(module, size, recorder))
    finally:
        module.train(was_training)


def _probe(module: nn.Module, size: int, recorder: Recorder) -> list[LayerGrid]:
    gen = torch.Generator().manual_seed(PROBE_SEED)
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    x = torch.rand(PROBE_IMAGES, 1, size, size, generator=gen).to(device).requires_grad_(True)
    what = type(module).__name__
    with torch.enable_grad():
        try:
            layers = recorder(module, x)
        except Exception as e:  # the user's forward: any failure is theirs to fix
            raise ConfigError(
                f"{what}'s forward failed on a batch of images ({PROBE_IMAGES}, 1, {size}, {size}) "
                f"({type(e).__name__}: {first_line(e)}); it must map (B, 1, S, S) images in [0, 1] "
                "to maps (B, C, h, w)."
            ) from None
        for name, out in layers:
            _check_maps(what, name, out)
        return [_grid(x, out, name) for name, out in layers]


def _check_maps(what: str, name: str, out: object) -> None:
    where = f"{what}'s " + ("output" if name == OUTPUT else f"layer {name}")
    if out is None:
        raise ConfigError(
            f"{where} is never called by its forward: record the layers it uses "
            "(case.record_layers=[...])."
        )
    if not isinstance(out, torch.Tensor):
        raise ConfigError(
            f"{where} gives a {type(out).__name__}, not a tensor of maps (B, C, h, w): return "
            "the maps, or record other layers (case.record_layers=[...])."
        )
    if out.dim() != 4:
        raise ConfigError(
            f"{where} has shape {tuple(out.shape)}, not maps (B, C, h, w): the measurement needs "
            "feature maps; return them (no flattening head), or record other layers "
            "(case.record_layers=[...])."
        )


def _grid(x: torch.Tensor, out: torch.Tensor, name: str) -> LayerGrid:
    """Where one layer's map pixels sit in the image, from the receptive fields of three neighbouring
    interior pixels on the diagonal."""
    h, w = out.shape[-2:]
    base = LayerGrid(name, int(h), int(out.shape[1]))
    layer = _called(name)
    if h != w:
        return base.with_problem(f"{layer}'s maps are {h}x{w}, not square")
    if h < 3:
        return base.with_problem(f"{layer}'s maps are {h}x{w}: no grid to align")
    boxes = []
    for i in (h // 2 - 1, h // 2, h // 2 + 1):
        (grad,) = torch.autograd.grad(out[:, :, i, i].float().sum(), x, retain_graph=True)
        box = _support(grad)
        if box is None:
            return base.with_problem(f"{layer}'s pixels do not depend on the image")
        boxes.append(box)
    return _fit(base, h // 2 - 1, boxes, x.shape[-1])


def _support(grad: torch.Tensor) -> tuple[int, int, int, int] | None:
    """The bounding box (row0, row1, col0, col1), inclusive, of the nonzero gradient over the batch;
    None when the pixel does not depend on the input."""
    seen = grad.detach().abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(seen.any(1)).flatten(), torch.nonzero(seen.any(0)).flatten()
    if rows.numel() == 0:
        return None
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _fit(base: LayerGrid, first: int, boxes: list[tuple[int, int, int, int]], size: int):
    """The grid through three neighbouring pixels (first, first + 1, first + 2 on both axes) with
    receptive-field boxes `boxes`: stride, offset and radius, or the problem."""
    layer = _called(base.name)
    # twice the centres, so that a centre between two pixels stays an integer
    rows = [r0 + r1 for r0, r1, _, _ in boxes]
    cols = [c0 + c1 for _, _, c0, c1 in boxes]
    steps = {rows[1] - rows[0], rows[2] - rows[1], cols[1] - cols[0], cols[2] - cols[1]}
    if len(steps) != 1 or (step2 := steps.pop()) <= 0 or step2 % 2:
        centres = ", ".join(f"{r / 2:g}" for r in rows)
        return base.with_problem(
            f"{layer}'s pixels do not sit on a regular grid over the image (neighbouring "
            f"pixels centred on image rows {centres}; global pooling or attention over the whole "
            "image has no receptive-field geometry)"
        )
    if rows[0] != cols[0]:
        return base.with_problem(f"{layer}'s maps sit at different offsets in rows and columns")
    if rows[0] % 2:
        return base.with_problem(
            f"{layer}'s receptive fields are centred between image pixels (an even width)"
        )
    if any(b[0] == 0 or b[2] == 0 or b[1] == size - 1 or b[3] == size - 1 for b in boxes):
        return base.with_problem(
            f"{layer}'s receptive fields reach past the {size}x{size} images: no pixel is "
            "under a whole receptive field; use larger images (dataset.size)"
        )
    stride = step2 // 2
    radius = max(max(b[1] - b[0], b[3] - b[2]) for b in boxes) // 2
    return LayerGrid(
        base.name, base.size, base.channels, stride, rows[0] // 2 - stride * first, radius
    )


def _called(name: str) -> str:
    """How messages name a recorded layer."""
    return "the module's output" if name == OUTPUT else f"layer {name}"
