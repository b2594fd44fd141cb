"""infomax: train encoders that maximise mutual information with their input, and measure it."""

__version__ = "0.1.0"
