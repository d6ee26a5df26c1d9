"""Helpers the experiment modules share. The registry skips files starting with `_`, so this
one declares no experiments; modules import it as `from _common import dense, output`."""

from harness.data import n_classes


def dense(units, activation="relu", **arguments):
    """A Dense layer as spec data; `arguments` are further keras.layers.Dense arguments."""
    return {"class_name": "Dense", "units": units, "activation": activation, **arguments}


def output(dataset):
    """The softmax output layer: one unit per class of a built-in data set."""
    return dense(n_classes({"dataset": dataset}), "softmax")


def early_stopping(patience):
    """Stop when the validation loss has not improved for `patience` epochs; keep the best weights."""
    return {
        "class_name": "EarlyStopping",
        "monitor": "val_loss",
        "patience": patience,
        "restore_best_weights": True,
    }
