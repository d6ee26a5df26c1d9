"""The article's "how do I choose the learning rate?" on iris: a grid and a random search.

Both search the optimizer's learning rate of a Dense(16, relu) -> Dense(3, softmax) net with a
validation split, so trials are ranked by validation loss and accuracy, not the test part.
The grid crosses six rates 1e-4..100 with Adam and SGD: SGD at 100 diverges (non-finite loss,
status "diverged"), Adam at 100 does not blow up but trains badly. The random search draws 8
log-uniform rates in [1e-4, 1] for Adam from a fixed search seed.
"""

BASE = {
    "data": {"dataset": "iris", "test_size": 0.2, "validation_size": 0.2},
    "model": [
        {"class_name": "Dense", "units": 16, "activation": "relu"},
        {"class_name": "Dense", "units": 3, "activation": "softmax"},
    ],
    "compile": {
        "optimizer": {"class_name": "adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 50, "batch_size": 16},
    "seeds": 3,
    "tags": ["iris", "learning_rate"],
}

EXPERIMENTS = [
    {
        **BASE,
        "name": "iris_lr_grid",
        "description": "Learning rates 1e-4..100 for Adam and SGD on iris (grid search)",
        "search": {
            "grid": {
                # Keras wants float learning rates: 1.0, not 1
                "compile.optimizer.learning_rate": [0.0001, 0.001, 0.01, 0.1, 1.0, 100.0],
                "compile.optimizer.class_name": ["adam", "sgd"],
            }
        },
    },
    {
        **BASE,
        "name": "iris_lr_random",
        "description": "Adam learning rates drawn log-uniformly from [1e-4, 1] on iris (random search)",
        "search": {
            "random": {"compile.optimizer.learning_rate": {"loguniform": [0.0001, 1.0]}},
            "trials": 8,
            "seed": 0,
        },
    },
]
