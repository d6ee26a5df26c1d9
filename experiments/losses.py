"""Loss functions: categorical cross-entropy against mean squared error on one-hot targets.

Both train the same network, Dense(32, relu) then a softmax output, with plain SGD (learning
rate 0.05) for 10 epochs of batch 32 on digits with one-hot labels (data.labels "onehot");
only compile.loss changes. The base (`loss_crossentropy`) uses categorical cross-entropy.

Why digits and plain SGD rather than iris and Adam: with the article's iris network and
training (Adam, 100 epochs) both losses end at about the same test accuracy (0.96 with
cross-entropy, 0.98 with squared error over 5 seeds; the paired interval includes zero),
so the choice looks irrelevant. The difference is in the gradient:
with a softmax output, cross-entropy's gradient on the logits is (p - y), large exactly when
the prediction is wrong, while squared error's is scaled by the softmax derivative and so is
small both when a class is confidently right and when it is confidently wrong, and it is
averaged over 10 output columns. Under plain SGD with a fixed budget that makes squared error
learn far more slowly; with 10 classes the effect is large and the test part (360 samples)
measures it well. The two losses are on different scales, so compare accuracies, not losses.
"""

from _common import dense, output

EXPERIMENTS = [
    {
        "name": "loss_crossentropy",
        "description": (
            "Categorical cross-entropy on one-hot digits labels: Dense(32, relu), softmax, "
            "plain SGD lr 0.05, 10 epochs"
        ),
        "data": {"dataset": "digits", "test_size": 0.2, "split_seed": 42, "labels": "onehot"},
        "model": [dense(32), output("digits")],
        "compile": {
            "optimizer": {"class_name": "SGD", "learning_rate": 0.05},
            "loss": "categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 10, "batch_size": 32},
        "seeds": 5,
        "tags": ["losses"],
    },
    {
        "name": "loss_mse",
        "base": "loss_crossentropy",
        "description": "The same network and training with mean squared error instead of cross-entropy",
        "overrides": {"compile.loss": "mean_squared_error"},
    },
]
