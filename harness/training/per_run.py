"""The per-run trainer: Keras `fit`, one run after another (seed, build, fit, evaluate, release)."""

import math
import time

from harness import data as datasets
from harness import results
from harness.training import models, rows
from harness.training.backend import keras, single_threaded
from harness.training.health import Health, dead_relu


class _EpochReport(keras.callbacks.Callback):
    def __init__(self, report):
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch, logs=None):
        self.report(epoch + 1)


def train(group, on_epoch=None):
    """Yield (row, history rows) of each run of `group` as it ends; a run that raises is a failed row."""
    for spec, seed, fold in group.runs:
        try:
            yield run(spec, seed, fold, verbose=group.verbose, on_epoch=on_epoch, fast=group.fast)
        except Exception as exc:
            yield results.failed_row(spec, seed, fold, exc, backend=keras.backend.backend()), []


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

    train_data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        train_data = train_data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    train_data = train_data.batch(batch).prefetch(tf.data.AUTOTUNE)
    return (
        {"x": train_data, "shuffle": False, "validation_data": _one_batch(x_val, y_val)},
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


def run(spec, seed, fold=None, split=None, verbose=False, on_epoch=None, fast=True, health=True):
    """Train `spec` once with `seed` (on `fold` 0..K*R-1 of a `data.cv` spec, else None);
    returns (runs.csv row, history.csv rows).

    `health=False` leaves out the per-epoch weight norms and update ratios (the benchmark
    measures what they cost)."""
    split = split or datasets.load_split(spec.data, seed, fold)
    models.seed_everything(seed)  # before the input pipeline: its shuffle takes the global seed too
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
    # Keras adds the weight penalties (L1/L2) to the loss it reports; runs.csv keeps the data loss
    # alone, comparable across variants, and the penalty (fixed weights: one number) beside it.
    penalty = float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses))
    made = rows.build(
        spec,
        seed,
        fold,
        history,
        scores,
        penalty=penalty,
        diverged=health.stopped_nonfinite,
        dead_relu=lambda model=model: dead_relu(model, split.x_train),
        fit_seconds=fit_seconds,
        params=int(model.count_params()),
        pipeline=pipeline,
        deterministic=single_threaded(),  # and seeded, as every run is
    )
    del model, fitted, callbacks
    keras.backend.clear_session()  # also runs the garbage collector
    return made
