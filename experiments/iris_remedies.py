"""The article's own iris network with each overfitting remedy added: does any of them help it?

Expected answer, and what the suite measures: no. The article's network (Dense(4, relu) ->
Dense(3, softmax), 35 weights, 120 training samples) has too little capacity to memorise
iris; its test loss is even below its training loss on the article's split. A remedy for
overfitting can only show an effect where there is a gap to close, so here L1, L2, dropout
and early stopping are expected to change the test loss and accuracy by nothing the
intervals can tell from zero, or to cost some training accuracy (dropout on 4 units removes
a quarter of the layer at every step). Measuring that is the point: it is the user's case.

All variants keep the article's split (train_test_split(test_size=0.2, random_state=42)),
scaling, loss, optimiser, 100 epochs and batch 10, and change one thing each. The reference
`iris_article` is `iris_baseline` unchanged, run over more seeds so that the paired intervals
mean something; since the split is fixed, the intervals cover the seeds' initialisation and
shuffling only, not the luck of the split.

Early stopping needs a validation part, which itself takes 24 of the 120 training samples.
So it is compared with `iris_article_val` (the same network trained on the same 96 samples,
with the same validation part and no early stopping), not with `iris_article`:
`python -m harness compare iris_article_val iris_early_stopping --baseline iris_article_val`.
"""

SEEDS = 20
TAGS = ["iris", "iris_remedies"]

_HIDDEN = {"class_name": "Dense", "units": 4, "activation": "relu"}
_OUTPUT = {"class_name": "Dense", "units": 3, "activation": "softmax"}
_L2 = {"class_name": "L2", "l2": 0.01}
_L1 = {"class_name": "L1", "l1": 0.01}
_DROPOUT = {"class_name": "Dropout", "rate": 0.2}

EXPERIMENTS = [
    {
        "name": "iris_article",
        "base": "iris_baseline",
        "description": (
            "Reference: iris_baseline unchanged (the article's network, split and training), "
            f"over {SEEDS} seeds"
        ),
        "overrides": {},
        "seeds": SEEDS,
        "tags": TAGS,
    },
    {
        "name": "iris_l2",
        "base": "iris_article",
        "description": "L2 regularisation: kernel_regularizer L2(0.01) on the hidden Dense(4) layer",
        "overrides": {"model.0.kernel_regularizer": _L2},
        "seeds": SEEDS,
        "tags": TAGS,
    },
    {
        "name": "iris_l1",
        "base": "iris_article",
        "description": "L1 regularisation: kernel_regularizer L1(0.01) on the hidden Dense(4) layer",
        "overrides": {"model.0.kernel_regularizer": _L1},
        "seeds": SEEDS,
        "tags": TAGS,
    },
    {
        "name": "iris_dropout",
        "base": "iris_article",
        "description": "Dropout: Dropout(0.2) inserted after the hidden Dense(4) layer",
        "overrides": {"model": [_HIDDEN, _DROPOUT, _OUTPUT]},
        "seeds": SEEDS,
        "tags": TAGS,
    },
    {
        "name": "iris_l2_dropout",
        "base": "iris_article",
        "description": (
            "L2 and dropout together: L2(0.01) on the hidden Dense(4) layer and Dropout(0.2) after it"
        ),
        "overrides": {"model": [{**_HIDDEN, "kernel_regularizer": _L2}, _DROPOUT, _OUTPUT]},
        "seeds": SEEDS,
        "tags": TAGS,
    },
    {
        "name": "iris_article_val",
        "base": "iris_article",
        "description": "Reference for early stopping: a validation part of 20% of the training part "
        "(data.validation_size 0.2: 96 training, 24 validation samples), no early stopping",
        "overrides": {"data.validation_size": 0.2},
        "seeds": SEEDS,
        "tags": TAGS,
    },
    {
        "name": "iris_early_stopping",
        "base": "iris_article_val",
        "description": "Early stopping (compare with iris_article_val, same validation part): stop when "
        "val_loss has not improved for 10 epochs and restore the best epoch's weights",
        "overrides": {
            "fit.callbacks": [
                {
                    "class_name": "EarlyStopping",
                    "monitor": "val_loss",
                    "patience": 10,
                    "restore_best_weights": True,
                }
            ]
        },
        "seeds": SEEDS,
        "tags": TAGS,
    },
]
