"""The configuration schema: dataclasses registered in Hydra's ConfigStore.

Every key a user can set is declared here with its type, so a typo or a wrong type fails at start.
Values (the four cases, the datasets, the devices) live as YAML in `conf/`; range checks that a type
cannot express live in `check()`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from .choices import (
    Align,
    Binning,
    CompileMode,
    DatasetKind,
    DeviceKind,
    Estimator,
    LoggerKind,
    Objective,
    Split,
)
from .errors import ConfigError
from .model.geometry import geometry, layer_geometry
from .model.probe import Recorder, instantiate_module, probe_geometry

# The YAML presets: the checkout's top-level conf/ (an editable install, as `make install` does); an
# installed wheel carries the same files as the package's conf/ (pyproject maps one onto the other).
_HERE = Path(__file__).resolve().parent
CONF_DIR = _HERE / "conf" if (_HERE / "conf" / "config.yaml").is_file() else _HERE.parent / "conf"


@dataclass
class CaseConfig:
    """One encoder case: the study's stacks (the kind of each 3x3 layer, `conv` or `deconv`, and the
    convs' padding), or any nn.Module: `encoder` holds Hydra's `_target_` and its arguments."""

    name: str = MISSING
    layers: list[str] = field(default_factory=list)
    padding: int = 0
    description: str = ""
    # any nn.Module mapping (B, 1, S, S) images to maps (B, C, h, w): {_target_: mynet.Net, ARG: ...}
    encoder: dict[str, Any] | None = None
    # the layers recorded (information plane, geometry): submodule names; null: the top-level children
    record_layers: list[str] | None = None


@dataclass
class EncoderConfig:
    widths: list[int] = field(default_factory=lambda: [8, 16, 16])  # channels after layers 1..3
    maps: int = 32  # feature maps after the last layer
    kernel: int = 3


@dataclass
class DatasetConfig:
    # which reader: set by each preset (conf/dataset/*.yaml)
    kind: DatasetKind = MISSING
    # the preset's name (summary.json's `dataset`); for dataset=torchvision the class name (CIFAR10, ...)
    name: str = MISSING
    # where stl10_binary/ lives (or is downloaded to); folder: the folder of images
    root: str = "data"
    split: Split = Split.train
    download: bool = False
    n_images: int | None = None  # first N images only; null: all
    per_photo: int = 16  # samples only: crops taken from each photograph
    # samples / folder: with train.holdout=true, the photographs (samples) or labels (a folder's subfolders)
    # whose images are measured and never trained on
    heldout: list[str] = field(default_factory=list)
    # folder / torchvision: images brought to size x size (samples and STL-10 are 96x96)
    size: int = 96
    skip_unreadable: bool = False  # folder: skip files that cannot be decoded (else the run stops)
    # torchvision: more keyword arguments of the class
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoggerConfig:
    kind: LoggerKind = LoggerKind.none


@dataclass
class DeviceConfig:
    kind: DeviceKind = DeviceKind.auto
    # CPU threads of torch and numba in this job; null: torch's default (all cores, or what a launcher
    # worker's OMP_NUM_THREADS says). The thread count orders float sums: fix it for the same numbers
    # whatever the launcher.
    threads: int | None = None


@dataclass
class TrainConfig:
    steps: int = 50
    batch_size: int = 64
    lr: float = 1e-4
    prior_lr: float = 1e-4  # the prior discriminator's own optimiser
    alpha: float = 0.5  # global term weight
    beta: float = 1.0  # local term weight
    gamma: float = 0.1  # prior term weight
    hidden: int = 32  # width of the objective networks
    negatives: int = 1  # negatives per positive: latent i against images i+1..i+K of the batch
    checkpoint_every: int = 10
    # bfloat16 autocast for the forward passes (CUDA; also runs on CPUs with bf16)
    bf16: bool = False
    channels_last: bool = False  # NHWC memory layout for the convolutions
    compile: bool = False  # torch.compile the training step's forward pass
    # torch.compile's mode: default | reduce-overhead (CUDA graphs: fewer kernel launches) | max-autotune |
    # max-autotune-no-cudagraphs
    compile_mode: str = "default"
    # measure on images held out from training: STL-10's test split, or the samples' `dataset.heldout` photographs
    holdout: bool = False


@dataclass
class MeasureConfig:
    bins: int = 20
    align: Align = Align.geometry  # the critics and the information plane use the same alignment
    # also measured, for the claims
    alt_aligns: list[Align] = field(default_factory=lambda: [Align.resize, Align.crop])
    # each image's null (mi_null): its maps against this many other images (other photographs), the
    # mean reported and the spread kept (mi_null_sd)
    null_partners: int = 4
    estimator: Estimator = Estimator.histogram
    binning: Binning = Binning.width
    miller_madow: bool = False
    ksg_k: int = 3
    ksg_samples: int = 1024  # pixels drawn (without replacement) per image for KSG
    batch_size: int = 64  # images per measurement batch
    examples: int = 10  # at most this many example images get a features/ picture
    infoplane_every: int = 5  # steps between information-plane measurements (0: none)
    probe_images: int = 16  # the fixed probe batch of the information plane: the first N images


@dataclass
class Config:
    """The whole configuration. Its defaults list (which preset of each group) is conf/config.yaml's."""

    case: CaseConfig = MISSING
    dataset: DatasetConfig = MISSING
    device: DeviceConfig = MISSING
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    train: TrainConfig = MISSING
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    objective: Objective = Objective.jsd
    seed: int = 0
    overwrite: bool = False


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    cs.store(group="case", name="schema_case", node=CaseConfig)
    cs.store(group="dataset", name="schema_dataset", node=DatasetConfig)
    cs.store(group="device", name="schema_device", node=DeviceConfig)
    cs.store(group="train", name="schema_train", node=TrainConfig)
    cs.store(group="logger", name="schema_logger", node=LoggerConfig)


def typed(cfg: DictConfig | Config) -> Config:
    """The config as the schema's dataclasses, enums as their members: what every function below the
    command line takes. Converted once, here, at the boundary."""
    if isinstance(cfg, Config):
        return cfg
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


def check(cfg: DictConfig | Config) -> None:
    """Range checks the schema's types cannot express; raises ConfigError naming the key and the fix."""
    if isinstance(cfg, DictConfig) and (extra := unknown_keys(cfg)):
        raise ConfigError(
            f"{extra[0]} is not a key of the config (added with '+'?): remove it, or check its spelling "
            "(infomax run --help lists every key)."
        )
    rules = [
        ("train.steps", cfg.train.steps >= 1, "an integer >= 1"),
        (
            "train.batch_size",
            cfg.train.batch_size >= 2,
            "an integer >= 2 (negatives come from the rest of the batch)",
        ),
        ("train.lr", cfg.train.lr > 0, "a number > 0"),
        ("train.prior_lr", cfg.train.prior_lr > 0, "a number > 0"),
        ("train.checkpoint_every", cfg.train.checkpoint_every >= 1, "an integer >= 1"),
        ("measure.bins", cfg.measure.bins >= 2, "an integer >= 2"),
        ("measure.batch_size", cfg.measure.batch_size >= 1, "an integer >= 1"),
        ("measure.null_partners", cfg.measure.null_partners >= 1, "an integer >= 1"),
        (
            "measure.infoplane_every",
            cfg.measure.infoplane_every >= 0,
            "an integer >= 0 (0: no information plane)",
        ),
        ("measure.probe_images", cfg.measure.probe_images >= 1, "an integer >= 1"),
        ("measure.ksg_k", cfg.measure.ksg_k >= 1, "an integer >= 1"),
        (
            "measure.ksg_samples",
            cfg.measure.ksg_samples > cfg.measure.ksg_k,
            "an integer > measure.ksg_k",
        ),
        ("encoder.maps", cfg.encoder.maps >= 1, "an integer >= 1"),
        (
            "train.compile_mode",
            cfg.train.compile_mode in tuple(CompileMode),
            " or ".join(CompileMode),
        ),
        ("dataset.per_photo", cfg.dataset.per_photo >= 1, "an integer >= 1"),
    ]
    if cfg.device.threads is not None:
        rules.append(
            ("device.threads", cfg.device.threads >= 1, "an integer >= 1 or null (torch's default)")
        )
    if cfg.dataset.n_images is not None:
        rules.append(
            ("dataset.n_images", cfg.dataset.n_images >= 1, "an integer >= 1 or null (all images)")
        )
    for key, ok, allowed in rules:
        if not ok:
            value = _get(cfg, key)
            raise ConfigError(f"{key}={value} is not allowed: use {allowed}.")
    if encoder_spec(cfg.case) is not None:
        check_dataset(cfg)
        check_module(cfg)
        return
    if len(cfg.case.layers) != len(cfg.encoder.widths) + 1:
        raise ConfigError(
            f"encoder.widths has {len(cfg.encoder.widths)} entries but case {cfg.case.name} has "
            f"{len(cfg.case.layers)} layers: give one width per layer but the last (which has encoder.maps)."
        )
    bad = [k for k in cfg.case.layers if k not in ("conv", "deconv")]
    if bad:
        raise ConfigError(f"case.layers holds {bad}: each layer must be 'conv' or 'deconv'.")
    check_dataset(cfg)
    # the case must cover the image's central pixels (ConfigError if not)
    if cfg.measure.align == Align.geometry:
        geometry(list(cfg.case.layers), cfg.encoder.kernel, cfg.case.padding, cfg.dataset.size)


def uses_geometry(cfg: MeasureConfig) -> bool:
    """Whether the measurement aligns by receptive fields (its own alignment or another it measures)."""
    return Align.geometry in (cfg.align, *cfg.alt_aligns)


def encoder_spec(case: DictConfig | CaseConfig) -> dict | None:
    """The case's `encoder` node as a plain dict (`_target_` and its arguments), or None for the
    study's stacks of layers; ConfigError when `_target_` is left unset."""
    node = case.encoder
    if node is None:
        return None
    if isinstance(node, DictConfig):
        if OmegaConf.is_missing(node, "_target_"):
            raise ConfigError(
                f"case={case.name} needs the module to build: case.encoder._target_=mynet.Net "
                "(an nn.Module class on the path; +case.encoder.NAME=VALUE for its arguments)."
            )
        node = OmegaConf.to_container(node, resolve=True)
    return dict(node)


# The smallest maps a module of your own may give: MI over fewer pixels is mostly the estimator's bias
# (the study's cases on their smallest images, 16 x 16, measure 8 x 8 pixels; a stride-2 module
# would then measure 4 x 4).
MIN_MAP = 16


def check_module(cfg: DictConfig | Config) -> None:
    """A case naming any nn.Module: it imports and builds, its forward gives maps (B, C, h, w) of at
    least MIN_MAP pixels a side, and, when the measurement aligns by geometry, its layers sit on
    grids over the image with some pixels under whole receptive fields (each ConfigError: one line)."""
    module = instantiate_module(encoder_spec(cfg.case))
    size = int(cfg.dataset.size)
    geom = probe_geometry(module, size, Recorder.of(module, cfg.case.record_layers))
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


# The smallest latent the objective takes: the global critic's two 3x3 stride-2 convolutions
# (objectives.GlobalCritic) need a 7x7 map.
MIN_LATENT = 7
# The smallest side of the image region every map pixel sees with whole receptive fields (size - layers *
# (kernel - 1)): below it too few pixels remain to measure MI on.
MIN_REGION = 8


def map_sizes(layers: list[str], padding: int, kernel: int, size: int) -> list[int]:
    """Spatial size after each stride-1 layer for a size x size input (the input size first)."""
    sizes = [size]
    for kind in layers:
        sizes.append(layer_geometry(kind, kernel, padding, sizes[-1])[0])
    return sizes


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


def check_dataset(cfg: DictConfig | Config) -> None:
    """The dataset keys, and that the case fits the image size (one line naming the smallest size)."""
    d = cfg.dataset
    if isinstance(d, DictConfig) and OmegaConf.is_missing(d, "kind"):
        raise ConfigError(
            "dataset.kind is not set: choose a dataset preset (dataset=samples, stl10, folder or "
            "torchvision), or set dataset.kind in your own conf/dataset/*.yaml."
        )
    kind = d.kind
    if isinstance(d, DictConfig):
        if kind == DatasetKind.torchvision and OmegaConf.is_missing(d, "name"):
            raise ConfigError(
                "dataset=torchvision needs the dataset's class name: add dataset.name=CIFAR10 (or MNIST, FashionMNIST, "
                "SVHN, ... any class of torchvision.datasets)."
            )
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
    if encoder_spec(cfg.case) is not None:
        return  # a module of your own: its maps are measured on it (check_module)
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


def _get(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node
