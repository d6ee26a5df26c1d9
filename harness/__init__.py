"""harness: declarative Keras experiments, run over seeds, compared with confidence intervals.

From Python (a script or a notebook): `harness.run(name_or_spec_dict, seeds=...)` trains and returns
the runs, `harness.compare(names, baseline=...)` the comparison, `harness.write_report(...)` writes its
page, `harness.load(name)` reads stored runs (see harness.api). They are imported on first use, so
`import harness` stays light and never imports Keras.
"""

__version__ = "0.1.0"
__all__ = ["run", "compare", "write_report", "load", "__version__"]


def __getattr__(name):
    if name in ("run", "compare", "write_report", "load"):
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
