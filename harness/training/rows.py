"""A finished run's runs.csv row and history.csv rows, made the same way for either trainer."""

import math
import os
import platform
import resource
import sys

import numpy as np
import sklearn

from harness import results
from harness.training.backend import keras


def versions():
    """The software a run trained with (runs.csv columns)."""
    backend = keras.backend.backend()
    backend_version = sys.modules[backend].__version__ if backend in sys.modules else ""
    return {
        "backend": backend,
        "keras_version": keras.__version__,
        "backend_version": backend_version,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "sklearn_version": sklearn.__version__,
    }


def best_epoch(history):
    """1-based epoch of the lowest validation loss (training loss without validation)."""
    key = "val_loss" if "val_loss" in history else "loss"
    values = np.asarray(history.get(key, []), dtype=float)
    if not len(values) or np.all(np.isnan(values)):
        return None
    return int(np.nanargmin(values)) + 1


def build(
    spec,
    seed,
    fold,
    history,
    scores,
    *,
    penalty,
    diverged,
    dead_relu,
    fit_seconds,
    params,
    pipeline,
    deterministic,
):
    """(runs.csv row, history.csv rows) of one finished run.

    `history`: {column: per-epoch values} in Keras' order, health columns after; `scores`: {part:
    {metric: value}} as Keras evaluates them, the weight penalty included (runs.csv keeps the data
    loss alone, `penalty` beside it); `dead_relu()`: (fraction, layer), asked only of a run that
    did not diverge."""
    key = {"seed": seed} if fold is None else {"seed": seed, "fold": fold}
    row = {"experiment": spec.name, **key, "spec_hash": spec.hash, "status": "ok", "error": ""}
    row["epochs_run"] = len(history.get("loss", []))
    row["best_epoch"] = best_epoch(history)
    for part, values in scores.items():
        for metric, value in values.items():
            row[f"{part}_{metric}"] = float(value) - (penalty if metric == "loss" else 0.0)
    row["loss_penalty"] = penalty
    if diverged or not all(math.isfinite(row.get(f"{p}_loss", 0.0)) for p in ("train", "test")):
        row["status"] = "diverged"
    row["dead_relu_fraction"], row["dead_relu_layer"] = (
        dead_relu() if row["status"] == "ok" else (math.nan, "")
    )
    row["seconds_per_epoch"] = round(fit_seconds / max(row["epochs_run"], 1), 5)
    row.update(
        fit_seconds=round(fit_seconds, 4), params=params, pipeline=pipeline, deterministic=deterministic
    )
    row.update(
        pid=os.getpid(), peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    )
    row.update(versions())
    row["finished_at"] = results.now()
    epochs = [
        {
            "experiment": spec.name,
            **key,
            "spec_hash": spec.hash,
            "epoch": e + 1,
            **{k: v[e] for k, v in history.items()},
        }
        for e in range(row["epochs_run"])
    ]
    return row, epochs
