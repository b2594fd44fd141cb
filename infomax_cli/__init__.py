"""infomax: train encoders that maximise mutual information with their input, and measure it."""

__version__ = "0.1.0"

import warnings

# conf/hydra/launcher/joblib.yaml and submitit_local.yaml share their names with the plugins' schemas, onto
# which Hydra 1.3 merges them (typed) with a deprecation notice in every process that composes the config.
# That merge is what the presets rely on (and every key is set, should a later Hydra drop it): keep it quiet.
# Here, in the package: launcher workers import it when they unpickle a job, before they compose its config.
warnings.filterwarnings(
    "ignore",
    message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema",
    category=UserWarning,
)
