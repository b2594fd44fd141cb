"""The configuration: what a user can set and what is allowed, apart from everything that runs.

- `schema.py`: the dataclasses (every key with its type) and their registration in Hydra's ConfigStore;
- `rules.py`: `typed`, the one conversion of Hydra's config to the schema's objects, and `check`, the
  range checks on the typed config (one path for every case);
- `remembered.py`: the config a run directory remembers against this run's (`NOT_RESULTS`: the keys
  that do not change results);
- `names.py`: paths (`~`, environment variables) and a sweep job's directory name.

Nothing here imports torch or model code: `infomax --help` reads the schema alone. Building and probing
a case's module is `model.build`'s, once a job.
"""

from omegaconf import OmegaConf

from ..choices import Align, DatasetKind, DeviceKind, Estimator, Objective, Split
from .names import (
    NOT_IN_NAMES,
    PATH_KEYS,
    expand_path,
    job_dir_name,
    name_excluded_keys,
    root_tag,
)
from .remembered import (
    NOT_RESULTS,
    changes_results,
    describe,
    differing_keys,
    flatten,
    schema_defaults,
    schema_keys,
)
from .rules import (
    MIN_LATENT,
    MIN_MAP,
    MIN_REGION,
    check,
    check_bins,
    check_dataset,
    map_sizes,
    max_bins,
    min_image_size,
    typed,
    unknown_keys,
    uses_geometry,
)
from .schema import (
    CONF_DIR,
    CaseConfig,
    CompareConfig,
    Config,
    DatasetConfig,
    DeviceConfig,
    EncoderConfig,
    LoggerConfig,
    MarginConfig,
    MeasureConfig,
    SensitivityConfig,
    TrainConfig,
    register_schema,
)

__all__ = [
    "Align",
    "CONF_DIR",
    "CaseConfig",
    "CompareConfig",
    "Config",
    "DatasetConfig",
    "DatasetKind",
    "DeviceConfig",
    "DeviceKind",
    "EncoderConfig",
    "Estimator",
    "LoggerConfig",
    "MIN_LATENT",
    "MIN_MAP",
    "MIN_REGION",
    "MarginConfig",
    "MeasureConfig",
    "NOT_IN_NAMES",
    "NOT_RESULTS",
    "Objective",
    "PATH_KEYS",
    "SensitivityConfig",
    "Split",
    "TrainConfig",
    "changes_results",
    "check",
    "check_bins",
    "check_dataset",
    "describe",
    "differing_keys",
    "expand_path",
    "flatten",
    "job_dir_name",
    "map_sizes",
    "max_bins",
    "min_image_size",
    "name_excluded_keys",
    "register",
    "root_tag",
    "schema_defaults",
    "schema_keys",
    "typed",
    "unknown_keys",
    "uses_geometry",
]


def register() -> None:
    """The schema in Hydra's ConfigStore and the two resolvers conf/config.yaml uses for a sweep job's
    directory name (`infomax_job_dir`, `infomax_not_in_names`)."""
    OmegaConf.register_new_resolver("infomax_job_dir", job_dir_name, replace=True)
    OmegaConf.register_new_resolver("infomax_not_in_names", name_excluded_keys, replace=True)
    register_schema()
