"""harness: declarative Keras experiments, run over seeds, compared with confidence intervals.

From Python (a notebook): `harness.run(name_or_spec_dict, seeds=...)`, `harness.compare(names,
baseline=...)` and `harness.load(name)` return DataFrames (see harness.api). They are imported on
first use, so `import harness` stays light and never imports Keras.
"""

__version__ = "0.1.0"
__all__ = ["run", "compare", "load", "__version__"]


def __getattr__(name):
    if name in ("run", "load"):
        from harness import api

        return getattr(api, name)
    if name == "compare":  # the module harness.compare, callable as harness.api.compare
        import importlib

        return importlib.import_module("harness.compare")
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
