"""Every set of choices a user picks from, declared once as a StrEnum (a member is its own value).

The config schema (`config/schema.py`) types its keys with these; the code that acts on a choice (the
alignment in `model/geometry.py`, the estimators in `mi/`, the readers in `sources/`) takes the same
members, so a choice is never spelled out as a second list of strings.
"""

from enum import StrEnum


class Align(StrEnum):
    """Which image pixel each feature-map pixel is compared with (`measure.align`, model/geometry.py)."""

    # every case on the same image pixels, each map at its receptive fields' offset
    geometry = "geometry"
    resize = "resize"  # feature map resized (bilinear) to the image's size
    crop = "crop"  # the larger of image and map centre-cropped to the smaller


class Region(StrEnum):
    """Which image pixels a sweep's cases are measured on under `geometry` (`measure.region`,
    infomax_cli/region.py)."""

    common = "common"  # the pixels every case of the sweep covers (the intersection, on one grid)
    own = "own"  # each case its own region (the pixels it covers with whole receptive fields)


class Estimator(StrEnum):
    """The MI estimator (`measure.estimator`, mi/)."""

    histogram = "histogram"
    ksg = "ksg"
    gcmi = "gcmi"


class Binning(StrEnum):
    """The histogram's bins (`measure.binning`)."""

    width = "width"  # equal-width bins from each array's min to max (numpy.histogram2d)
    quantile = "quantile"  # equal-frequency bins: invariant to monotone transforms


class Objective(StrEnum):
    """The MI bound the encoder is trained on (`objective`, model/objectives.py)."""

    jsd = "jsd"
    infonce = "infonce"
    dv = "dv"


class Split(StrEnum):
    """A dataset's split (`dataset.split`)."""

    train = "train"
    test = "test"
    unlabeled = "unlabeled"


class DatasetKind(StrEnum):
    """Which reader gives the images (`dataset.kind`, set by each `conf/dataset/` preset; sources/)."""

    samples = "samples"  # the embedded offline set
    stl10 = "stl10"
    folder = "folder"  # your own images
    torchvision = "torchvision"  # any torchvision image dataset by class name


class DeviceKind(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class ResumeMode(StrEnum):
    """What a run does with a directory holding a finished or resumable run made with another config
    (`resume`, jobstart.py)."""

    auto = "auto"  # stop, naming the keys that differ
    force = "force"  # skip or continue it anyway


class LoggerKind(StrEnum):
    """Where a run is also tracked (`logger`, tracker.py)."""

    none = "none"  # the run directory's files and the terminal only
    tensorboard = "tensorboard"  # also TensorBoard event files in each run directory


class Spending(StrEnum):
    """How a sweep's plan spends its error over its looks (`compare.spending`, analysis/sequential.py)."""

    pocock = "pocock"  # evenly: early looks can decide large differences
    obrien_fleming = "obrien_fleming"  # little early: the last look near the fixed-size test


class CompileMode(StrEnum):
    """torch.compile's mode (`train.compile_mode`). The key is typed `str` in the schema, because
    OmegaConf reads an enum by member name and these values hold hyphens; `config.check` holds it to
    these values."""

    default = "default"
    reduce_overhead = "reduce-overhead"  # CUDA graphs: fewer kernel launches
    max_autotune = "max-autotune"
    max_autotune_no_cudagraphs = "max-autotune-no-cudagraphs"
