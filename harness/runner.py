"""One training run: seed, build, fit, evaluate, record, release."""

import math
import os
import platform
import random
import resource
import sys
import time

import numpy as np
import sklearn

from harness import data as datasets
from harness import models, results
from harness.backend import keras, single_threaded
from harness.errors import HarnessError
from harness.health import Health, dead_relu


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


def seed_everything(seed):
    """keras.utils.set_random_seed, without importing TensorFlow into a JAX or torch process."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def fit_inputs(spec, split, seed, fast=True):
    """Keyword arguments for model.fit, steps per execution, and a label of the path taken.

    The fast path hands a whole epoch to the backend in one call (steps_per_execution) and,
    on TensorFlow, feeds a tf.data pipeline (seeded shuffle, batch, prefetch; validation in
    one cached batch). Same data, batches, epochs and optimizer as plain NumPy inputs.
    """
    batch, shuffle = spec.fit["batch_size"], spec.fit["shuffle"]
    x, y, x_val, y_val = split.x_train, split.y_train, split.x_val, split.y_val
    if not fast:
        validation = (x_val, y_val) if x_val is not None else None
        return (
            {"x": x, "y": y, "batch_size": batch, "shuffle": shuffle, "validation_data": validation},
            1,
            "numpy",
        )
    steps = math.ceil(len(x) / batch)
    if keras.backend.backend() != "tensorflow":
        validation = (x_val, y_val) if x_val is not None else None
        return (
            {
                "x": x,
                "y": y,
                "batch_size": batch,
                "shuffle": shuffle,
                "validation_data": validation,
                "validation_batch_size": None if x_val is None else len(x_val),
            },
            steps,
            f"numpy+steps_per_execution={steps}",
        )
    import tensorflow as tf

    train = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        train = train.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    train = train.batch(batch).prefetch(tf.data.AUTOTUNE)
    return (
        {"x": train, "shuffle": False, "validation_data": _one_batch(x_val, y_val)},
        steps,
        f"tf.data+steps_per_execution={steps}",
    )


def _one_batch(x, y):
    """A data set as a single cached batch; on TensorFlow a tf.data pipeline, whose
    unknown batch dimension lets validation and every final evaluation share one trace."""
    if x is None or keras.backend.backend() != "tensorflow":
        return None if x is None else (x, y)
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x)).cache()


def _evaluate(model, x, y):
    if x is None:
        return {}
    data = _one_batch(x, y)
    if isinstance(data, tuple):
        return model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    return model.evaluate(data, verbose=0, return_dict=True)


def best_epoch(history):
    """1-based epoch of the lowest validation loss (training loss without validation)."""
    key = "val_loss" if "val_loss" in history else "loss"
    values = np.asarray(history.get(key, []), dtype=float)
    if not len(values) or np.all(np.isnan(values)):
        return None
    return int(np.nanargmin(values)) + 1


def run_seed(spec, seed, fold=None, split=None, verbose=False, on_epoch=None, fast=True, health=True):
    """Train `spec` once with `seed` (on `fold` 0..K*R-1 of a `data.cv` spec, else None);
    returns (runs.csv row, history.csv rows). Rows get a `fold` only when it is not None.

    `health=False` leaves out the per-epoch weight norms and update ratios (the benchmark
    measures what they cost)."""
    split = split or datasets.load(spec.data, seed, fold)
    key = {"seed": seed} if fold is None else {"seed": seed, "fold": fold}
    seed_everything(seed)
    inputs, steps, pipeline = fit_inputs(spec, split, seed, fast)
    model = models.compile_model(models.build(spec, split.n_features), spec, steps_per_execution=steps)
    callbacks = models.callbacks(spec)
    health = Health(enabled=health)
    callbacks.append(health)
    if on_epoch:
        callbacks.append(_EpochReport(on_epoch))
    start = time.perf_counter()
    fitted = model.fit(**inputs, epochs=spec.fit["epochs"], callbacks=callbacks, verbose=2 if verbose else 0)
    fit_seconds = time.perf_counter() - start
    history = {k: [float(v) for v in values] for k, values in fitted.history.items()}
    history.update({k: v for k, v in health.history.items() if len(v) == len(history.get("loss", []))})
    scores = {
        "train": _evaluate(model, split.x_train, split.y_train),
        "val": _evaluate(model, split.x_val, split.y_val),
        "test": _evaluate(model, split.x_test, split.y_test),
    }
    row = {"experiment": spec.name, **key, "spec_hash": spec.hash, "status": "ok", "error": ""}
    row["epochs_run"] = len(history.get("loss", []))
    row["best_epoch"] = best_epoch(history)
    # Keras adds the weight penalties (L1/L2) to the loss it reports; runs.csv keeps the data loss
    # alone, comparable across variants, and the penalty (fixed weights: one number) beside it.
    penalty = float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses))
    for part, values in scores.items():
        for metric, value in values.items():
            row[f"{part}_{metric}"] = float(value) - (penalty if metric == "loss" else 0.0)
    row["loss_penalty"] = penalty
    if not all(math.isfinite(row.get(f"{p}_loss", 0.0)) for p in ("train", "test")):
        row["status"] = "diverged"
    if health.stopped_nonfinite:
        row["status"] = "diverged"
    row["dead_relu_fraction"], row["dead_relu_layer"] = (
        dead_relu(model, split.x_train) if row["status"] == "ok" else (math.nan, "")
    )
    row["seconds_per_epoch"] = round(fit_seconds / max(row["epochs_run"], 1), 5)
    row.update(
        fit_seconds=round(fit_seconds, 4),
        params=int(model.count_params()),
        pipeline=pipeline,
        deterministic=single_threaded(),  # and seeded, as every run is
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
            "epoch": i + 1,
            **{k: v[i] for k, v in history.items()},
        }
        for i in range(row["epochs_run"])
    ]
    del model, fitted, callbacks
    keras.backend.clear_session()  # also runs the garbage collector
    return row, epochs


def failed_row(spec, seed, exc, fold=None):
    return results.failed_row(spec, seed, f"{type(exc).__name__}: {exc}", fold, **versions())


def check_specs(specs):
    """Check every spec against Keras before anything trains; the first problem raises."""
    from harness.errors import HarnessError, SpecError

    for spec in specs:
        try:
            split = datasets.load(spec.data, spec.seeds[0], datasets.folds(spec.data)[0])
        except SpecError:
            raise
        except HarnessError as exc:  # data that cannot be split as asked: name the experiment
            raise SpecError(spec.name, "data", str(exc), spec.source) from None
        models.check(spec, split.n_features)


def work(kind, payload):
    """A worker's job (a local worker process or a Ray task): "check" specs -> None or the error as
    text (SpecError does not pickle); "run" (spec, seed, fold, fast) -> (row, history), a raising run
    recorded as failed so the sweep goes on."""
    if kind == "check":
        try:
            check_specs(payload)
            return None
        except HarnessError as exc:
            return str(exc)
    spec, seed, fold, fast = payload
    try:
        return run_seed(spec, seed, fold=fold, fast=fast)
    except Exception as exc:
        return failed_row(spec, seed, exc, fold), []
