"""Underfitting, and the article's remedies for it, measured against one underfit baseline.

The baseline is held back on every front the article names at once, so that each remedy,
changing just one of them, has something to fix:
  * too little capacity: a single hidden Dense(4, relu) layer for 64 inputs and 10 classes;
  * a weak optimiser: plain SGD (no momentum) at learning rate 0.01;
  * too little training: 10 epochs of batch 32;
  * too much regularisation: L2(0.1) on the kernels of both layers.
It ends at roughly 0.4 training accuracy on digits (chance is 0.1), and its training loss is
still about 2.3: it has not learned the training data, let alone the test data.

Why digits rather than iris or wine: iris and wine are almost linearly separable with 3
classes, so even a 2-unit network fits them once it trains at all, and whether a tiny
network trains within a few epochs depends mostly on its random initialisation. Tried on iris,
the baseline's training accuracy swung between seeds by more than any remedy's effect, so
the paired intervals straddled zero. With 10 classes and 64 features the limits above bind on
every seed.

The regularisation strength is the middle of a narrow range: with L2(0.03) removing it raised
training accuracy by only 0.015 (an undertrained network's weights are too small for the
penalty to matter much yet), while with L2(0.3) or more, training longer or faster only pulls the weights
further towards zero, so "more epochs" and "higher learning rate" lowered training accuracy.
Keras adds the L2 penalty to the loss it reports; runs.csv stores the data loss without it
(and the penalty in loss_penalty), but the per-epoch curves include it.

Remedies (each changes one thing): more capacity (Dense(64)), the Adam optimiser (same
learning rate), more epochs (50), a higher SGD learning rate (0.1), and less regularisation
(no L2). The claim each tests: training accuracy goes up.
"""

from _common import dense, output

_L2 = {"class_name": "L2", "l2": 0.1}


def _model(units=4, regularizer=_L2):
    reg = {"kernel_regularizer": regularizer} if regularizer else {}
    return [dense(units, **reg), {**output("digits"), **reg}]


EXPERIMENTS = [
    {
        "name": "underfit_baseline",
        "description": (
            "Underfits: Dense(4, relu) hidden, plain SGD lr 0.01, 10 epochs, "
            "L2(0.1) on both layers, on digits"
        ),
        "data": {"dataset": "digits", "test_size": 0.2, "split_seed": 42},
        "model": _model(),
        "compile": {
            "optimizer": {"class_name": "SGD", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 10, "batch_size": 32},
        "seeds": 20,
        "tags": ["underfitting"],
    },
    {
        "name": "underfit_more_capacity",
        "base": "underfit_baseline",
        "description": "More capacity: hidden Dense(64) instead of Dense(4) (same L2, optimiser and epochs)",
        "overrides": {"model.0.units": 64},
    },
    {
        "name": "underfit_adam",
        "base": "underfit_baseline",
        "description": "A better optimiser: Adam instead of plain SGD, at the same learning rate 0.01",
        "overrides": {"compile.optimizer": {"class_name": "Adam", "learning_rate": 0.01}},
    },
    {
        "name": "underfit_more_epochs",
        "base": "underfit_baseline",
        "description": "More training: 50 epochs instead of 10",
        "overrides": {"fit.epochs": 50},
    },
    {
        "name": "underfit_higher_lr",
        "base": "underfit_baseline",
        "description": "A higher learning rate: SGD at 0.1 instead of 0.01",
        "overrides": {"compile.optimizer.learning_rate": 0.1},
    },
    {
        "name": "underfit_less_regularisation",
        "base": "underfit_baseline",
        "description": "Less regularisation: no L2 penalty on either layer (was L2(0.1))",
        "overrides": {"model": _model(regularizer=None)},
    },
]
