"""Hidden-layer activations: the same network with relu, sigmoid and tanh hidden layers.

The network is four hidden Dense(32) layers and a softmax output, trained with plain SGD
(learning rate 0.05, no momentum) for 20 epochs of batch 32 on digits; only the hidden
activation changes. The base (`activation_relu`) uses the article's relu.

Why digits and a deep network rather than the article's iris network: the article's point
about activations is about depth. Sigmoid's gradient is at most 0.25, so the error signal
shrinks by at least that factor through every sigmoid layer on its way back (vanishing
gradients), and plain SGD does nothing to compensate. The article's one-layer Dense(4) iris
network cannot show that; swapped there (Adam, 100 epochs, 5 seeds) sigmoid only trains more
slowly (test accuracy 0.87 against 0.96 for relu and 0.97 for tanh), and iris's 30 test
samples make each one worth 3.3 points. Four sigmoid layers under plain SGD stall at chance
level for the whole budget, while tanh (gradient up to 1, zero-centred) and relu (gradient 1
where active) reach high accuracy in the same 20 epochs. Digits (10 classes, 64 features,
1437 training samples) has room for the difference and a test part of 360.
"""

from _common import dense, output


def _model(activation):
    return [dense(32, activation) for _ in range(4)] + [output("digits")]


EXPERIMENTS = [
    {
        "name": "activation_relu",
        "description": "Four hidden Dense(32, relu) layers, plain SGD lr 0.05, 20 epochs, on digits",
        "data": {"dataset": "digits", "test_size": 0.2, "split_seed": 42},
        "model": _model("relu"),
        "compile": {
            "optimizer": {"class_name": "SGD", "learning_rate": 0.05},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 20, "batch_size": 32},
        "seeds": 5,
        "tags": ["activations"],
    },
    {
        "name": "activation_sigmoid",
        "base": "activation_relu",
        "description": "The same network with sigmoid instead of relu in every hidden layer",
        "overrides": {"model": _model("sigmoid")},
    },
    {
        "name": "activation_tanh",
        "base": "activation_relu",
        "description": "The same network with tanh instead of relu in every hidden layer",
        "overrides": {"model": _model("tanh")},
    },
]
