"""The range checks a type cannot express, as one `check(cfg: Config)` on the typed config, and the
one conversion to it (`typed`): each problem a ConfigError naming the key and the fix.

Everything here depends on the config alone and builds nothing: it runs before anything is written.
What only a built module can answer (its maps' size and grid, the memory they take) is `model.build`'s;
what only the data can answer (a batch larger than the data) comes when the data is read.
"""

from __future__ import annotations

import dataclasses
import math

from omegaconf import DictConfig, OmegaConf

from ..choices import Align, CompileMode, DatasetKind, Split
from ..errors import ConfigError
from ..limits import check_memory, check_path_part
from .schema import CaseConfig, Config, MeasureConfig

# The smallest latent the objective takes: the global critic's two 3x3 stride-2 convolutions
# (objectives.GlobalCritic) need a 7x7 map.
MIN_LATENT = 7
# The smallest side of the image region every map pixel sees with whole receptive fields (size - layers *
# (kernel - 1)): below it too few pixels remain to measure MI on.
MIN_REGION = 8
# The smallest maps a module of your own may give: MI over fewer pixels is mostly the estimator's bias
# (the study's cases on their smallest images, 16 x 16, measure 8 x 8 pixels; a stride-2 module
# would then measure 4 x 4).
MIN_MAP = 16
LAYER_KINDS = ("conv", "deconv")


def typed(cfg: DictConfig | Config) -> Config:
    """The config as the schema's dataclasses, enums as their members: what every function below the
    command line takes. Converted once, here, at the boundary, where the two checks only the untyped
    tree can make run: keys the schema does not declare (added with `+`) and values left unset (`???`)."""
    if isinstance(cfg, Config):
        return cfg
    if extra := unknown_keys(cfg):
        raise ConfigError(
            f"{extra[0]} is not a key of the config (added with '+'?): remove it, or check its spelling "
            "(infomax run --help lists every key)."
        )
    _check_set(cfg)
    return OmegaConf.to_object(cfg)


def unknown_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys the schema does not declare: Hydra lets `+key=value` add them, where a typo would then pass."""
    schema = OmegaConf.get_type(node)
    declared = (
        {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    )
    found = []
    for key in node:
        if declared is not None and key not in declared:
            found.append(f"{prefix}{key}")
        elif isinstance(child := node._get_node(key), DictConfig):
            found += unknown_keys(child, f"{prefix}{key}.")
    return found


def _check_set(cfg: DictConfig) -> None:
    """The values a preset leaves for the user to set (`???`), each named with how to set it."""
    d = cfg.dataset
    if OmegaConf.is_missing(d, "kind"):
        raise ConfigError(
            "dataset.kind is not set: choose a dataset preset (dataset=samples, stl10, folder or "
            "torchvision), or set dataset.kind in your own conf/dataset/*.yaml."
        )
    if d.kind == DatasetKind.torchvision and OmegaConf.is_missing(d, "name"):
        raise ConfigError(
            "dataset=torchvision needs the dataset's class name: add dataset.name=CIFAR10 (or MNIST, FashionMNIST, "
            "SVHN, ... any class of torchvision.datasets)."
        )
    encoder = cfg.case.encoder
    if isinstance(encoder, DictConfig) and OmegaConf.is_missing(encoder, "_target_"):
        raise ConfigError(
            f"case={cfg.case.name} needs the module to build: case.encoder._target_=mynet.Net "
            "(an nn.Module class on the path; +case.encoder.NAME=VALUE for its arguments)."
        )


def check(cfg: Config) -> None:
    """Every range check on the typed config, one path for every case: the ranges, the names that
    become directories, the dataset's keys, the bins; for the study's stacks of layers also their
    layers and what their maps need (the image size, the memory). ConfigError on the first problem."""
    for key, ok, allowed in _rules(cfg):
        if not ok:
            raise ConfigError(f"{key}={_get(cfg, key)} is not allowed: use {allowed}.")
    check_path_part("case.name", cfg.case.name)
    stack = cfg.case.encoder is None
    if stack:
        check_layers(cfg)
    check_dataset(cfg)
    check_bins(cfg)
    if stack:
        sizes = stack_sizes(cfg.case, cfg.encoder.kernel, cfg.dataset.size)
        check_memory(cfg, [1, *cfg.encoder.widths, cfg.encoder.maps], sizes)


def check_layers(cfg: Config) -> None:
    """A stack's layers: one width per layer but the last, each layer a conv or a deconv."""
    if len(cfg.case.layers) != len(cfg.encoder.widths) + 1:
        raise ConfigError(
            f"encoder.widths has {len(cfg.encoder.widths)} entries but case {cfg.case.name} has "
            f"{len(cfg.case.layers)} layers: give one width per layer but the last (which has encoder.maps)."
        )
    bad = [k for k in cfg.case.layers if k not in LAYER_KINDS]
    if bad:
        raise ConfigError(f"case.layers holds {bad}: each layer must be 'conv' or 'deconv'.")


def check_bins(cfg: Config) -> None:
    """measure.bins no more than an image of dataset.size can fill, whatever the encoder."""
    if cfg.measure.bins > (most := max_bins(cfg.dataset.size)):
        raise ConfigError(
            f"measure.bins={cfg.measure.bins} is more bins than an image's pixels can fill (an 8-bit "
            f"gray image has 256 levels and {cfg.dataset.size**2} pixels; every MI would be noise "
            f"or NaN): use measure.bins={most} or fewer (the study: 20)."
        )


def max_bins(size: int) -> int:
    """The most histogram bins per axis an image can fill: its 256 gray levels, or its pixels."""
    return min(256, size * size)


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _rules(cfg: Config) -> list[tuple[str, bool, str]]:
    """(key, whether its value is allowed, what is allowed) for every range rule."""
    t, m, c = cfg.train, cfg.measure, cfg.compare
    rules = [
        ("train.steps", t.steps >= 1, "an integer >= 1"),
        (
            "train.batch_size",
            t.batch_size >= 2,
            "an integer >= 2 (negatives come from the rest of the batch)",
        ),
        ("train.lr", _finite(t.lr) and t.lr > 0, "a finite number > 0"),
        ("train.prior_lr", _finite(t.prior_lr) and t.prior_lr > 0, "a finite number > 0"),
        *(
            (f"train.{k}", _finite(getattr(t, k)), "a finite number")
            for k in ("alpha", "beta", "gamma")
        ),
        (
            "train.negatives",
            1 <= t.negatives < t.batch_size,
            f"an integer >= 1 and below train.batch_size={t.batch_size} (latent i is scored "
            "against images i+1..i+K of its batch: K >= the batch would pair it with itself)",
        ),
        ("train.hidden", t.hidden >= 1, "an integer >= 1"),
        ("train.checkpoint_every", t.checkpoint_every >= 1, "an integer >= 1"),
        ("measure.bins", m.bins >= 2, "an integer >= 2"),
        ("measure.batch_size", m.batch_size >= 1, "an integer >= 1"),
        ("measure.null_partners", m.null_partners >= 1, "an integer >= 1"),
        ("measure.examples", m.examples >= 0, "an integer >= 0 (0: no example pictures)"),
        (
            "measure.infoplane_every",
            m.infoplane_every >= 0,
            "an integer >= 0 (0: no information plane)",
        ),
        ("measure.probe_images", m.probe_images >= 1, "an integer >= 1"),
        ("measure.ksg_k", m.ksg_k >= 1, "an integer >= 1"),
        ("measure.ksg_samples", m.ksg_samples > m.ksg_k, "an integer > measure.ksg_k"),
        ("encoder.maps", cfg.encoder.maps >= 1, "an integer >= 1"),
        ("encoder.kernel", cfg.encoder.kernel >= 1, "an integer >= 1"),
        ("encoder.widths", min(cfg.encoder.widths, default=1) >= 1, "integers >= 1"),
        ("case.padding", cfg.case.padding >= 0, "an integer >= 0"),
        ("train.compile_mode", t.compile_mode in tuple(CompileMode), " or ".join(CompileMode)),
        ("dataset.per_photo", cfg.dataset.per_photo >= 1, "an integer >= 1"),
        ("dataset.max_images", cfg.dataset.max_images >= 1, "an integer >= 1"),
        ("seed", 0 <= cfg.seed < 2**63, "an integer from 0 to 2**63 - 1 (torch and numpy seeds)"),
    ]
    for claim, margin in dataclasses.asdict(c.margin).items():
        ok = _finite(margin) and margin > 0
        rules.append((f"compare.margin.{claim}", ok, "a finite number > 0 (in the claim's unit)"))
    rules += [
        ("compare.tie", _finite(c.tie) and c.tie >= 0, "a finite number >= 0 (nats)"),
        ("compare.max_seeds", c.max_seeds >= 2, "an integer >= 2"),
    ]
    d = cfg.device
    if d.threads is not None:
        rules.append(
            ("device.threads", d.threads >= 1, "an integer >= 1 or null (torch's default)")
        )
    if d.memory_gb is not None:
        ok = _finite(d.memory_gb) and d.memory_gb > 0
        rules.append(("device.memory_gb", ok, "a finite number > 0, or null (the device's own)"))
    if cfg.dataset.n_images is not None:
        rules.append(
            ("dataset.n_images", cfg.dataset.n_images >= 1, "an integer >= 1 or null (all images)")
        )
    return rules


def uses_geometry(cfg: MeasureConfig) -> bool:
    """Whether the measurement aligns by receptive fields (its own alignment or another it measures)."""
    return Align.geometry in (cfg.align, *cfg.alt_aligns)


def layer_size(kind: str, kernel: int, padding: int, size: int) -> int:
    """The spatial size after one stride-1 layer (`conv` or `deconv`) on a size-wide input."""
    if kind == "conv":
        return size + 2 * padding - kernel + 1
    if kind == "deconv":
        return size - 2 * padding + kernel - 1
    raise ValueError(f"unknown layer kind {kind!r}: use 'conv' or 'deconv'")


def map_sizes(layers: list[str], padding: int, kernel: int, size: int) -> list[int]:
    """Spatial size after each stride-1 layer for a size x size input (the input size first)."""
    sizes = [size]
    for kind in layers:
        sizes.append(layer_size(kind, kernel, padding, sizes[-1]))
    return sizes


def stack_sizes(case: CaseConfig, kernel: int, size: int) -> list[int]:
    """map_sizes of a case's stack of layers."""
    return map_sizes(list(case.layers), int(case.padding), int(kernel), int(size))


def min_image_size(layers: list[str], padding: int, kernel: int) -> int | None:
    """The smallest image size the case can be trained and measured at (None: none up to 4096)."""
    for size in range(1, 4097):
        sizes = map_sizes(layers, padding, kernel, size)
        if (
            min(sizes) >= 1
            and sizes[-1] >= MIN_LATENT
            and size - len(layers) * (kernel - 1) >= MIN_REGION
        ):
            return size
    return None


def check_dataset(cfg: Config) -> None:
    """The dataset keys, and that a stack of layers fits the image size (one line naming the smallest
    size); a module of your own is measured on itself when it is built (model.build)."""
    d = cfg.dataset
    kind = d.kind
    if kind in (DatasetKind.samples, DatasetKind.stl10) and d.size != 96:
        raise ConfigError(
            f"dataset.size={d.size} applies to dataset=folder and dataset=torchvision; {kind} images are 96x96: "
            "leave dataset.size at 96."
        )
    if kind == DatasetKind.folder and d.split != Split.train:
        raise ConfigError(
            f"dataset.split={d.split}: a folder has no splits: point dataset.root at that split's folder instead."
        )
    if d.size < 1:
        raise ConfigError(f"dataset.size={d.size} is not allowed: use an integer >= 1.")
    if cfg.case.encoder is not None:
        return
    layers, padding, kernel = list(cfg.case.layers), int(cfg.case.padding), int(cfg.encoder.kernel)
    sizes = map_sizes(layers, padding, kernel, d.size)
    if min(sizes) < 1 or sizes[-1] < MIN_LATENT or d.size - len(layers) * (kernel - 1) < MIN_REGION:
        smallest = min_image_size(layers, padding, kernel)
        fix = (
            f"use dataset.size={smallest} or more"
            if smallest
            else "use a case with fewer or smaller layers"
        )
        raise ConfigError(
            f"dataset.size={d.size} is too small for case {cfg.case.name} (sizes "
            f"{' -> '.join(map(str, sizes))}): the last "
            f"map must be at least {MIN_LATENT}x{MIN_LATENT} (the global critic) and at least "
            f"{MIN_REGION}x{MIN_REGION} "
            f"image pixels must lie under whole receptive fields; {fix}."
        )


def _get(cfg: object, dotted: str) -> object:
    node = cfg
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node
