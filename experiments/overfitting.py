"""Overfitting, and the article's remedies for it, measured against one overfit baseline.

Why breast_cancer and not iris: the article's iris network does not overfit (a 4-unit
network on 4 features has little to memorise; over 5 seeds its test loss, 0.23, is even below
its training loss, 0.28), so there is no gap for a remedy to close. Why not digits: a wide
network on a tenth of digits does get a large gap, but after its minimum its validation loss
only creeps up (about 10% over 200 epochs), so its curves hardly show overfitting, and runs
that long cost too much here. On breast_cancer a wide network memorises a small
training part within a few epochs and its validation loss then climbs steadily, because it
grows ever more confident on the few validation samples it gets wrong: the textbook picture,
in 30 cheap epochs.

Baseline (`overfit_baseline`): breast_cancer (569 samples, 30 features, 2 classes), test part
20% (split_seed 42), validation part 20% of the rest (for curves and early stopping), then
only 20% of the remaining training part is kept (data.train_fraction 0.2: 73 samples); three
hidden Dense(256, relu) layers (~140k weights for 73 samples), softmax output, Adam at
learning rate 0.0005, 30 epochs of batch 16. Training loss reaches ~0 and training accuracy
1.0; the validation loss is lowest around epoch 5 and rises steadily after it.

The generalisation gap is test_loss - train_loss from runs.csv. Keras adds the L1/L2
penalty to the loss `evaluate` reports; runs.csv stores the data loss without it (the penalty
is in its own column, loss_penalty), so the losses of the L1/L2 variants compare with the
others'. The per-epoch curves in history.csv are Keras' own and do include the penalty. The
baseline also records the plain cross-entropy as a metric (`sparse_categorical_crossentropy`).

Remedies (each a variant of the baseline, changing only what its description says): more
training data, a smaller model, L1 and L2 weight penalties, dropout, early stopping, and L2
with dropout together.
"""

from _common import dense, early_stopping, output


def _hidden(units=256, **extra):
    return dense(units, **extra)


_OUTPUT = output("breast_cancer")
_DROPOUT = {"class_name": "Dropout", "rate": 0.5}
_L1 = {"class_name": "L1", "l1": 0.001}
_L2 = {"class_name": "L2", "l2": 0.01}

EXPERIMENTS = [
    {
        "name": "overfit_baseline",
        "description": (
            "Overfits: 3x Dense(256, relu) trained 30 epochs on 73 breast_cancer samples (train_fraction 0.2)"
        ),
        "data": {
            "dataset": "breast_cancer",
            "test_size": 0.2,
            "split_seed": 42,
            "validation_size": 0.2,
            "train_fraction": 0.2,
        },
        "model": [_hidden(), _hidden(), _hidden(), _OUTPUT],
        "compile": {
            "optimizer": {"class_name": "Adam", "learning_rate": 0.0005},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy", "sparse_categorical_crossentropy"],
        },
        "fit": {"epochs": 30, "batch_size": 16},
        "seeds": 20,
        "tags": ["overfitting"],
    },
    {
        "name": "overfit_more_data",
        "base": "overfit_baseline",
        "description": (
            "More data: the whole training part (train_fraction 1.0, 291 samples instead of 73); "
            "same validation and test parts"
        ),
        "overrides": {"data.train_fraction": 1.0},
    },
    {
        "name": "overfit_smaller_model",
        "base": "overfit_baseline",
        "description": (
            "Smaller model: one hidden Dense(64, relu) instead of three Dense(256, relu) "
            "(~2k weights instead of ~140k)"
        ),
        "overrides": {"model": [_hidden(64), _OUTPUT]},
    },
    {
        "name": "overfit_l1",
        "base": "overfit_baseline",
        "description": "L1 regularisation: kernel_regularizer L1(0.001) on each hidden layer",
        "overrides": {
            "model": [
                _hidden(kernel_regularizer=_L1),
                _hidden(kernel_regularizer=_L1),
                _hidden(kernel_regularizer=_L1),
                _OUTPUT,
            ]
        },
    },
    {
        "name": "overfit_l2",
        "base": "overfit_baseline",
        "description": "L2 regularisation: kernel_regularizer L2(0.01) on each hidden layer",
        "overrides": {
            "model": [
                _hidden(kernel_regularizer=_L2),
                _hidden(kernel_regularizer=_L2),
                _hidden(kernel_regularizer=_L2),
                _OUTPUT,
            ]
        },
    },
    {
        "name": "overfit_dropout",
        "base": "overfit_baseline",
        "description": "Dropout: Dropout(0.5) after each hidden layer",
        "overrides": {"model": [_hidden(), _DROPOUT, _hidden(), _DROPOUT, _hidden(), _DROPOUT, _OUTPUT]},
    },
    {
        "name": "overfit_early_stopping",
        "base": "overfit_baseline",
        "description": (
            "Early stopping: stop when val_loss has not improved for 5 epochs "
            "and restore the best epoch's weights"
        ),
        "overrides": {"fit.callbacks": [early_stopping(patience=5)]},
    },
    {
        "name": "overfit_l2_dropout",
        "base": "overfit_baseline",
        "description": "L2 and dropout together: L2(0.01) on each hidden layer and Dropout(0.5) after it",
        "overrides": {
            "model": [
                _hidden(kernel_regularizer=_L2),
                _DROPOUT,
                _hidden(kernel_regularizer=_L2),
                _DROPOUT,
                _hidden(kernel_regularizer=_L2),
                _DROPOUT,
                _OUTPUT,
            ]
        },
    },
]
