"""Vanishing and exploding gradients (issue 6): a deep sigmoid net and an SGD rate that explodes,
with remedies."""

from _common import dense, output

_DEEP = [dense(32, "sigmoid") for _ in range(9)] + [output("digits")]
_HIDDEN = range(9)

EXPERIMENTS = [
    {
        "name": "deep_sigmoid",
        "description": "9 Dense(32, sigmoid) layers on digits, plain SGD: the first layers barely learn",
        "data": {"dataset": "digits", "validation_size": 0.2},
        "model": _DEEP,
        "compile": {
            "optimizer": {"class_name": "SGD", "learning_rate": 0.05},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 10, "batch_size": 64},
        "seeds": 5,
        "tags": ["gradients"],
    },
    {
        "name": "deep_sigmoid_relu",
        "base": "deep_sigmoid",
        "description": "deep_sigmoid with relu",
        "overrides": {f"model.{i}.activation": "relu" for i in _HIDDEN},
    },
    {
        "name": "deep_sigmoid_he",
        "base": "deep_sigmoid",
        "description": "deep_sigmoid with relu and He initialisation",
        "overrides": {
            **{f"model.{i}.activation": "relu" for i in _HIDDEN},
            **{f"model.{i}.kernel_initializer": "he_normal" for i in _HIDDEN},
        },
    },
    {
        "name": "deep_sigmoid_adam",
        "base": "deep_sigmoid",
        "description": "deep_sigmoid trained with Adam",
        "overrides": {"compile.optimizer": {"class_name": "Adam", "learning_rate": 0.001}},
    },
    {
        "name": "deep_sigmoid_batchnorm",
        "base": "deep_sigmoid",
        "description": "deep_sigmoid with BatchNormalization before each sigmoid",
        "overrides": {
            "model": [
                layer
                for i in _HIDDEN
                for layer in (
                    {"class_name": "Dense", "units": 32},
                    {"class_name": "BatchNormalization"},
                    {"class_name": "Activation", "activation": "sigmoid"},
                )
            ]
            + [output("digits")]
        },
    },
    {
        "name": "lr_too_high",
        "description": "Dense 16 relu on wine with SGD at a learning rate that explodes",
        "data": {"dataset": "wine"},
        "model": [dense(16), dense(16), output("wine")],
        "compile": {
            "optimizer": {"class_name": "SGD", "learning_rate": 5.0},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 20, "batch_size": 16},
        "seeds": 5,
        "tags": ["exploding"],
    },
    {
        "name": "lr_too_high_clipnorm",
        "base": "lr_too_high",
        "description": "lr_too_high with clipnorm 1.0",
        "overrides": {"compile.optimizer": {"class_name": "SGD", "learning_rate": 5.0, "clipnorm": 1.0}},
    },
    {
        "name": "lr_too_high_lower",
        "base": "lr_too_high",
        "description": "lr_too_high at a 100x lower rate",
        "overrides": {"compile.optimizer": {"class_name": "SGD", "learning_rate": 0.05}},
    },
]
