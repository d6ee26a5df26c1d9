"""The article's worked example: an iris classifier in Keras, exactly as written there.

Dense(4, relu) -> Dense(3, softmax), adam, sparse categorical cross-entropy, 100 epochs,
batch 10; train_test_split(test_size=0.2, random_state=42); StandardScaler fitted on the
training part only.
"""

EXPERIMENTS = [
    {
        "name": "iris_baseline",
        "description": "The article's iris network and training, exactly as written",
        "data": {"dataset": "iris", "test_size": 0.2, "split_seed": 42, "scale": "standard"},
        "model": [
            {"class_name": "Dense", "units": 4, "activation": "relu"},
            {"class_name": "Dense", "units": 3, "activation": "softmax"},
        ],
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 100, "batch_size": 10},
        "seeds": 5,
        "tags": ["iris", "baseline"],
    },
]
