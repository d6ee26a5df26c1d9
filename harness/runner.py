"""Runs experiments over seeds: seed, build, fit, evaluate, record, release.

Importing this module imports Keras (and its backend), quietly: TensorFlow's C++ log lines
and Keras' Python warnings are silenced before the import.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gc
import logging
import math
import platform
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np

warnings.filterwarnings("ignore", module="keras")
warnings.filterwarnings("ignore", module="tensorflow")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
import keras  # noqa: E402
import sklearn  # noqa: E402

from harness import data as datasets  # noqa: E402
from harness import models, results  # noqa: E402


def versions():
    backend = keras.backend.backend()
    backend_module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    backend_version = sys.modules[backend_module].__version__ if backend_module in sys.modules else ""
    return {
        "backend": backend,
        "keras_version": keras.__version__,
        "backend_version": backend_version,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "sklearn_version": sklearn.__version__,
    }


class _EpochReport(keras.callbacks.Callback):
    def __init__(self, report):
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch, logs=None):
        self.report(epoch + 1)


def _evaluate(model, x, y):
    if x is None:
        return {}
    return model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)


def best_epoch(history):
    """1-based epoch of the lowest validation loss (training loss without validation)."""
    key = "val_loss" if "val_loss" in history else "loss"
    values = np.asarray(history.get(key, []), dtype=float)
    if not len(values) or np.all(np.isnan(values)):
        return None
    return int(np.nanargmin(values)) + 1


def run_seed(spec, seed, split=None, verbose=False, on_epoch=None):
    """Train `spec` once with `seed`; returns (runs.csv row, history.csv rows)."""
    split = split or datasets.load(spec.data, seed)
    keras.utils.set_random_seed(seed)
    model = models.compile_model(models.build(spec, split.n_features), spec)
    callbacks = models.callbacks(spec)
    if on_epoch:
        callbacks.append(_EpochReport(on_epoch))
    validation = (split.x_val, split.y_val) if split.x_val is not None else None
    start = time.perf_counter()
    fitted = model.fit(
        split.x_train, split.y_train, epochs=spec.fit["epochs"], batch_size=spec.fit["batch_size"],
        validation_data=validation, shuffle=spec.fit["shuffle"], callbacks=callbacks, verbose=2 if verbose else 0,
    )
    fit_seconds = time.perf_counter() - start
    history = {k: [float(v) for v in values] for k, values in fitted.history.items()}
    scores = {"train": _evaluate(model, split.x_train, split.y_train), "val": _evaluate(model, split.x_val, split.y_val), "test": _evaluate(model, split.x_test, split.y_test)}
    row = {"experiment": spec.name, "seed": seed, "spec_hash": spec.hash, "status": "ok", "error": ""}
    row["epochs_run"] = len(history.get("loss", []))
    row["best_epoch"] = best_epoch(history)
    for part, values in scores.items():
        for metric, value in values.items():
            row[f"{part}_{metric}"] = float(value)
    if not all(math.isfinite(row.get(f"{p}_loss", 0.0)) for p in ("train", "test")):
        row["status"] = "diverged"
    row.update(fit_seconds=round(fit_seconds, 4), params=int(model.count_params()), deterministic=True)
    row.update(versions())
    row["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    epochs = [
        {"experiment": spec.name, "seed": seed, "spec_hash": spec.hash, "epoch": i + 1, **{k: v[i] for k, v in history.items()}}
        for i in range(row["epochs_run"])
    ]
    del model, fitted, callbacks
    keras.backend.clear_session()
    gc.collect()
    return row, epochs


def failed_row(spec, seed, exc):
    return {"experiment": spec.name, "seed": seed, "spec_hash": spec.hash, "status": "failed",
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500], **versions(),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def check_all(specs):
    """Check every spec against Keras before anything trains."""
    for spec in specs:
        split = datasets.load(spec.data, spec.seeds[0])
        models.check(spec, split.n_features)


def plan(specs, root, force=False):
    """[(spec, seed)] still to run, and how many stored runs were skipped."""
    todo, skipped = [], 0
    for spec in specs:
        done = set() if force else results.finished_seeds(root, spec.name, spec.hash)
        for seed in spec.seeds:
            if seed in done:
                skipped += 1
            else:
                todo.append((spec, seed))
    return todo, skipped


def run(specs, root, force=False, verbose=False, progress=None):
    """Run every (spec, seed) not yet stored; each finished run is written at once."""
    check_all(specs)
    for spec in specs:
        results.write_spec(root, spec)
    todo, skipped = plan(specs, root, force)
    if progress:
        progress.start(len(todo), skipped)
    failures = []
    for spec, seed in todo:
        if progress:
            progress.begin(spec, seed)
        try:
            row, history = run_seed(spec, seed, verbose=verbose, on_epoch=progress.epoch if progress else None)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # recorded as a failed run; the rest goes on
            row, history = failed_row(spec, seed, exc), []
            failures.append(row)
        results.save_run(root, row, history)
        if progress:
            progress.done(row)
    if progress:
        progress.finish()
    return failures
