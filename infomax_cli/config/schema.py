"""The configuration schema: dataclasses registered in Hydra's ConfigStore (and the grid of
`infomax sensitivity`, SensitivityConfig, read by its flags).

Every key a user can set is declared here with its type, so a typo or a wrong type fails at start.
Values (the four cases, the datasets, the devices) live as YAML in `conf/`; the range checks a type
cannot express live in `rules.py`. This module imports no model code and no torch: `infomax --help`
reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from ..choices import (
    Align,
    Binning,
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

# The YAML presets: the checkout's top-level conf/ (an editable install, as `make install` does); an
# installed wheel carries the same files as the package's conf/ (pyproject maps one onto the other).
_PACKAGE = Path(__file__).resolve().parent.parent
CONF_DIR = (
    _PACKAGE / "conf" if (_PACKAGE / "conf" / "config.yaml").is_file() else _PACKAGE.parent / "conf"
)


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


@dataclass
class SensitivityConfig:
    """`infomax sensitivity`'s protocol grid and its defaults, written here only (the flags' defaults
    and help are these; a `--grid` file's keys and the flags replace them; not a Hydra group). The
    sweep's own protocol (its measure.align, measure.estimator, measure.bins) is always added to the
    grid: its ranking is the reference. Every other measure.* setting (binning, miller_madow, ksg_k,
    ksg_samples, batch_size) stays as each job had it."""

    # measure.align: receptive-field geometry, maps resized to the image, or centre-cropped
    align: list[Align] = field(default_factory=lambda: [Align.geometry, Align.resize, Align.crop])
    # histogram bins per axis (the histogram only: ksg and gcmi have none)
    bins: list[int] = field(default_factory=lambda: [10, 20, 32, 64])
    estimators: list[Estimator] = field(
        default_factory=lambda: [Estimator.histogram, Estimator.ksg, Estimator.gcmi]
    )
    n_images: int | None = None  # re-measure only each job's first N images (None: all it measured)
    device: DeviceKind = DeviceKind.auto


def register_schema() -> None:
    """The schema's nodes in Hydra's ConfigStore: `schema` (conf/config.yaml's first default) and one
    `schema_<group>` per group, which the presets extend."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    cs.store(group="case", name="schema_case", node=CaseConfig)
    cs.store(group="dataset", name="schema_dataset", node=DatasetConfig)
    cs.store(group="device", name="schema_device", node=DeviceConfig)
    cs.store(group="train", name="schema_train", node=TrainConfig)
    cs.store(group="logger", name="schema_logger", node=LoggerConfig)
