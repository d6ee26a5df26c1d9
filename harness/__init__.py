"""harness: declarative Keras experiments, run over seeds, compared with confidence intervals."""

__version__ = "0.1.0"
