"""Slow training, and the article's remedies for it: larger mini-batches and early stopping.

Why digits: on iris a whole run takes well under a second whatever the batch size, so there
is no time to save. On digits (1,149 training samples after the test and validation parts)
a batch of 4 means 288 optimizer steps per epoch, and 40 epochs take several seconds.

Baseline (`slow_baseline`): digits, validation 20%, Dense(64, relu) -> Dense(10, softmax),
Adam 0.001, 40 epochs of batch 4. Remedies: batches of 32 and of 128 (8x and 32x fewer
steps per epoch at the same rate), and early stopping on the validation loss (patience 3,
best weights restored). Compare `fit s` (time) against `test acc` (what the time bought):
`python -m harness compare --suite slow_training`.
"""

from _common import dense, early_stopping, output

EXPERIMENTS = [
    {
        "name": "slow_baseline",
        "description": "Slow: digits, Dense(64) trained 40 epochs in mini-batches of 4 (288 steps per epoch)",
        "data": {"dataset": "digits", "validation_size": 0.2},
        "model": [dense(64), output("digits")],
        "compile": {
            "optimizer": {"class_name": "Adam", "learning_rate": 0.001},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 40, "batch_size": 4},
        "seeds": 5,
        "tags": ["slow_training"],
    },
    {
        "name": "slow_batch_32",
        "base": "slow_baseline",
        "description": "Larger mini-batches: 32 (36 steps per epoch)",
        "overrides": {"fit.batch_size": 32},
    },
    {
        "name": "slow_batch_128",
        "base": "slow_baseline",
        "description": "Larger mini-batches: 128 (9 steps per epoch)",
        "overrides": {"fit.batch_size": 128},
    },
    {
        "name": "slow_early_stopping",
        "base": "slow_baseline",
        "description": (
            "Early stopping: stop when val_loss has not improved for 3 epochs, restore the best weights"
        ),
        "overrides": {"fit.callbacks": [early_stopping(patience=3)]},
    },
]
