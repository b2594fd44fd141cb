"""The configuration schema: dataclasses registered in Hydra's ConfigStore.

Every key a user can set is declared here with its type, so a typo or a wrong type fails at start.
Values (the four cases, the datasets, the devices) live as YAML in `conf/`; range checks that a type
cannot express live in `check()`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import typing
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
    Region,
    ResumeMode,
    Spending,
    Split,
)
from .errors import ConfigError
from .limits import check_memory, check_path_part
from .model.geometry import Geometry, geometry, layer_geometry
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
    # the most images a job reads: a larger dataset (dataset.n_images=null) stops at start, in one line
    max_images: int = 1_000_000


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
    # the most memory (GB) a job's largest batches may take, estimated at start from the encoder's map
    # sizes (a config past it stops in one line); null: the device's own memory (the GPU's, or RAM)
    memory_gb: float | None = None


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
    # under geometry: the pixels every case of the sweep covers (common), or each case's own region;
    # the critics and the information plane keep the case's own region either way
    region: Region = Region.common
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
class MarginConfig:
    """The smallest difference worth reporting, per claim of claims.csv, in the claim's unit (README,
    "Intervals"): inside +-margin the cases are `equivalent`, and no claim holds or fails on less.
    Nats: about the histogram estimator's own bias at independence ((B-1)^2/2N = 0.02 nats at 20 bins,
    the shuffled null) and the spread of its bias across dependence strengths (+0.017 to -0.042 on the
    Gaussians), 2-4% of the study's mean MI (0.5) and max-MI (0.85-0.9). Shares: 5 points, one image in
    twenty."""

    loss_curves: float = 0.02
    example_images: float = 0.02
    winner_share: float = 0.05
    mean_max_mi: float = 0.02
    mean_mi: float = 0.02


@dataclass
class CompareConfig:
    """How a sweep's cases are compared (`infomax compare`, the end of `infomax run -m`); not the jobs'
    results: a change here needs no job to run again. `tie` (nats): cases whose max-MI on an image
    lies within it of the top split the image (the winner share's own band). `max_seeds` and
    `spending`: the sweep's plan for looking at its claims as seeds come in (README, "Looking again
    and again"): the most seeds it will get, and how the error rate is spent over its looks; fixed
    by the sweep's first look (looks.csv)."""

    margin: MarginConfig = field(default_factory=MarginConfig)
    tie: float = 0.02
    max_seeds: int = 60
    spending: Spending = Spending.pocock


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
    compare: CompareConfig = field(default_factory=CompareConfig)
    objective: Objective = Objective.jsd
    seed: int = 0
    overwrite: bool = False
    # a directory that holds a run made with another config: stop (auto) or use it anyway (force)
    resume: ResumeMode = ResumeMode.auto


def register() -> None:
    OmegaConf.register_new_resolver("infomax_job_dir", job_dir_name, replace=True)
    OmegaConf.register_new_resolver("infomax_not_in_names", name_excluded_keys, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    cs.store(group="case", name="schema_case", node=CaseConfig)
    cs.store(group="dataset", name="schema_dataset", node=DatasetConfig)
    cs.store(group="device", name="schema_device", node=DeviceConfig)
    cs.store(group="train", name="schema_train", node=TrainConfig)
    cs.store(group="logger", name="schema_logger", node=LoggerConfig)


# Keys whose values are paths: `~` and environment variables in them are expanded (`expand_path`).
PATH_KEYS = ("dataset.root", "hydra.run.dir", "hydra.sweep.dir")
# $NAME or ${NAME}; `${now:...}` and `${hydra.job.num}` (Hydra's interpolations) do not match
_ENV_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def expand_path(value: str) -> str:
    """A path as the shell would read it: a leading `~` (or `~user`) is the home folder, `$NAME` and
    `${NAME}` the environment variable's value when it is set (else left as written)."""
    expanded = _ENV_VAR.sub(lambda m: os.environ.get(m[1] or m[2], m[0]), str(value))
    return os.path.expanduser(expanded)


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


def check(cfg: DictConfig | Config) -> Geometry | None:
    """Range checks the schema's types cannot express; raises ConfigError naming the key and the fix.
    Everything here depends on the config alone: it runs before anything is written (data-dependent
    checks, such as a batch larger than the data, come when the data is read). Returns the case's
    geometry when the measurement aligns by it (the sweep's common pixels come from these)."""
    if isinstance(cfg, DictConfig) and (extra := unknown_keys(cfg)):
        raise ConfigError(
            f"{extra[0]} is not a key of the config (added with '+'?): remove it, or check its spelling "
            "(infomax run --help lists every key)."
        )
    for key, ok, allowed in _rules(cfg):
        if not ok:
            value = _get(cfg, key)
            raise ConfigError(f"{key}={value} is not allowed: use {allowed}.")
    check_path_part("case.name", cfg.case.name)
    if encoder_spec(cfg.case) is not None:
        check_dataset(cfg)
        check_bins(cfg)
        geom = check_module(cfg)
        return geom if cfg.measure.align == Align.geometry else None
    if len(cfg.case.layers) != len(cfg.encoder.widths) + 1:
        raise ConfigError(
            f"encoder.widths has {len(cfg.encoder.widths)} entries but case {cfg.case.name} has "
            f"{len(cfg.case.layers)} layers: give one width per layer but the last (which has encoder.maps)."
        )
    bad = [k for k in cfg.case.layers if k not in ("conv", "deconv")]
    if bad:
        raise ConfigError(f"case.layers holds {bad}: each layer must be 'conv' or 'deconv'.")
    check_dataset(cfg)
    check_bins(cfg)
    # the case must cover the image's central pixels (ConfigError if not)
    geom = None
    if cfg.measure.align == Align.geometry:
        layers = list(cfg.case.layers)
        geom = geometry(layers, cfg.encoder.kernel, cfg.case.padding, cfg.dataset.size)
    sizes = map_sizes(list(cfg.case.layers), cfg.case.padding, cfg.encoder.kernel, cfg.dataset.size)
    check_memory(cfg, [1, *cfg.encoder.widths, cfg.encoder.maps], sizes)
    return geom


def check_bins(cfg: DictConfig | Config) -> None:
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


def _rules(cfg: DictConfig | Config) -> list[tuple[str, bool, str]]:
    """(key, whether its value is allowed, what is allowed) for every range rule."""
    t, m = cfg.train, cfg.measure
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
    margins = cfg.compare.margin
    margins = (
        OmegaConf.to_container(margins)
        if isinstance(margins, DictConfig)
        else dataclasses.asdict(margins)
    )
    for claim, margin in margins.items():
        rules.append(
            (
                f"compare.margin.{claim}",
                _finite(margin) and margin > 0,
                "a finite number > 0 (in the claim's unit)",
            )
        )
    rules += [
        (
            "compare.tie",
            _finite(cfg.compare.tie) and cfg.compare.tie >= 0,
            "a finite number >= 0 (nats)",
        ),
        ("compare.max_seeds", cfg.compare.max_seeds >= 2, "an integer >= 2"),
    ]
    if cfg.device.threads is not None:
        rules.append(
            ("device.threads", cfg.device.threads >= 1, "an integer >= 1 or null (torch's default)")
        )
    if cfg.device.memory_gb is not None:
        ok = _finite(cfg.device.memory_gb) and cfg.device.memory_gb > 0
        rules.append(("device.memory_gb", ok, "a finite number > 0, or null (the device's own)"))
    if cfg.dataset.n_images is not None:
        rules.append(
            ("dataset.n_images", cfg.dataset.n_images >= 1, "an integer >= 1 or null (all images)")
        )
    return rules


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


def check_module(cfg: DictConfig | Config) -> Geometry:
    """A case naming any nn.Module: it imports and builds, its forward gives maps (B, C, h, w) of at
    least MIN_MAP pixels a side, and, when the measurement aligns by geometry, its layers sit on
    grids over the image with some pixels under whole receptive fields (each ConfigError: one line).
    Returns its geometry, probed on the module."""
    size = int(cfg.dataset.size)
    check_memory(cfg, [1], [size])  # the images alone, before the module is probed on them
    module = instantiate_module(encoder_spec(cfg.case))
    geom = probe_geometry(module, size, Recorder.of(module, cfg.case.record_layers))
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
    return geom


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


# --------------------------------------------------------------------------- the config a run remembers
# The one list of keys (each with the keys under it) that change where, how fast, whether or how a job
# runs, or how a sweep is compared, not what a job computes: they may differ when a directory is resumed
# or skipped (the thread count and device move only the last digits of a sum), and they do not name a
# sweep job's directory (config.yaml's exclude_keys is this list, through `name_excluded_keys`).
NOT_RESULTS = (
    "compare",  # how a sweep is compared, not what a job computes
    "overwrite",
    "resume",
    "device",
    "logger",
    "dataset.download",
    "dataset.max_images",
    "train.checkpoint_every",
    "train.compile",
    "train.compile_mode",
    "train.channels_last",
    "measure.batch_size",
    "case.description",
)
# paths: not in a job's directory name (dataset.root is put back shortened, by root_tag)
NOT_IN_NAMES = ("dataset.root", "hydra.run.dir", "hydra.sweep.dir")
_NOTHING = object()


def changes_results(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in NOT_RESULTS)


def name_excluded_keys() -> list[str]:
    """The `infomax_not_in_names` resolver (hydra.job.config.override_dirname.exclude_keys): every key
    of NOT_RESULTS and every key under one in the schema, and the paths (NOT_IN_NAMES)."""
    keys = [*NOT_RESULTS, *NOT_IN_NAMES]
    for dotted in schema_keys():
        if not changes_results(dotted):
            keys.append(dotted)
    return list(dict.fromkeys(keys))


def schema_keys(schema: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, the nodes and the leaves."""
    hints, out = typing.get_type_hints(schema), []
    for f in dataclasses.fields(schema):
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out += schema_keys(hints[f.name], f"{prefix}{f.name}.")
    return out


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as {dotted key: value} (lists are values)."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def schema_defaults(schema: type = Config, prefix: str = "") -> dict[str, Any]:
    """{dotted key: default} of every key the schema gives a default (presets aside)."""
    hints, out = typing.get_type_hints(schema), {}
    for f in dataclasses.fields(schema):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out.update(schema_defaults(kind, f"{prefix}{f.name}."))
        elif f.default is not dataclasses.MISSING and f.default is not MISSING:
            out[prefix + f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out.update(flatten(f.default_factory(), f"{prefix}{f.name}."))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b  # a StrEnum equals its value


def differing_keys(stored: dict, current: dict) -> dict[str, tuple[Any, Any]]:
    """{key: (stored value, current value)} for every key that changes results on which two configs
    (plain nested dicts) differ; a key one of them lacks (the schema has grown since) has its default."""
    a, b, defaults = flatten(stored), flatten(current), schema_defaults()
    out = {}
    for key in sorted(a.keys() | b.keys()):
        if not changes_results(key):
            continue
        va, vb = a.get(key, defaults.get(key, _NOTHING)), b.get(key, defaults.get(key, _NOTHING))
        if not _same(va, vb):
            out[key] = (va, vb)
    return out


def describe(diff: dict[str, tuple[Any, Any]], most: int = 4) -> str:
    """'seed 1 -> 7, train.lr 0.0001 -> 0.5' (at most `most` keys, then how many more)."""

    def show(v: Any) -> str:
        text = "(none)" if v is _NOTHING else json.dumps(v, default=str)
        return text if len(text) <= 40 else text[:37] + "..."

    shown = [f"{k} {show(a)} -> {show(b)}" for k, (a, b) in list(diff.items())[:most]]
    more = f" and {len(diff) - most} more" if len(diff) > most else ""
    return ", ".join(shown) + more


# ------------------------------------------------------------------------- a sweep job's directory name
PLAIN_ROOT = re.compile(r"[\w.-]{1,32}")


def root_tag(root: str) -> str:
    """dataset.root in a directory name: as typed when short and plain, else its last part and a hash
    of the whole (no '/' in a name, and two roots never share one)."""
    if PLAIN_ROOT.fullmatch(root):
        return root
    last = re.sub(r"[^\w.-]", "_", Path(root.rstrip("/")).name)[:24] or "root"
    return f"{last}-{hashlib.sha256(root.encode()).hexdigest()[:8]}"


def job_dir_name(dirname: str, task: Any, exclude: Any) -> str:
    """The `infomax_job_dir` resolver (hydra.sweep.subdir): Hydra's override_dirname, the job's overrides
    sorted, with `dataset.root` (which Hydra's name leaves out: a path) put back as root_tag. A job
    without a dataset.root override keeps Hydra's name unchanged."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides([str(o) for o in task])
    roots = [o for o in overrides if o.key_or_group == "dataset.root"]
    if not roots:
        return dirname
    lines = [
        f"dataset.root={root_tag(str(o.value()))}" if o is roots[-1] else o.input_line
        for o in overrides
        if o is roots[-1] or o.key_or_group not in set(exclude)
    ]
    return ",".join(sorted(lines))
