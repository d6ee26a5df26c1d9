"""harness.models: Keras objects from spec data, checked against hand-built Keras."""

import numpy as np
import pytest

from harness import registry
from harness.errors import SpecError
from harness.spec import from_dict
from harness.training import models
from harness.training.backend import keras


def layer_configs(model):
    """get_config() of every layer, without the (auto-numbered) layer names."""
    return [{k: v for k, v in layer.get_config().items() if k != "name"} for layer in model.layers]


def test_build_matches_a_hand_built_sequential(tiny_spec):
    tiny_spec["model"] = [
        {
            "class_name": "Dense",
            "units": 8,
            "activation": "relu",
            "kernel_regularizer": {"class_name": "L2", "l2": 0.01},
        },
        {"class_name": "Dropout", "rate": 0.2},
        {"class_name": "Dense", "units": 3, "activation": "softmax", "use_bias": False},
    ]
    built = models.build(from_dict(tiny_spec), 4)
    by_hand = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax", use_bias=False),
        ]
    )
    assert layer_configs(built) == layer_configs(by_hand)
    assert built.layers[0].kernel_regularizer.get_config() == {"l2": pytest.approx(0.01)}
    assert built.input_shape == by_hand.input_shape == (None, 4)
    assert built.count_params() == by_hand.count_params() == 4 * 8 + 8 + 8 * 3
    assert built.built and not getattr(built, "compiled", False)


def test_iris_baseline_is_the_articles_network():
    spec = registry.discover()["iris_baseline"]
    built = models.build(spec, 4)
    article = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    assert layer_configs(built) == layer_configs(article)
    assert built.count_params() == 35


def test_build_gives_fresh_models(tiny_spec):
    spec = from_dict(tiny_spec)
    a, b = models.build(spec, 4), models.build(spec, 4)
    assert a is not b and a.layers[0] is not b.layers[0]


def test_model_name_is_a_valid_keras_name(tiny_spec):
    spec = from_dict(tiny_spec).with_overrides({"fit.epochs": 3}, name="tiny[fit.epochs=3]")
    model = models.build(spec, 4)
    assert model.name == "tiny_fit_epochs_3_"


def test_keras_config_nests_objects():
    spec_form = {
        "class_name": "Dense",
        "units": 3,
        "kernel_regularizer": {"class_name": "L1L2", "l1": 0.1, "l2": 0.2},
        "kernel_initializer": {"class_name": "GlorotUniform", "seed": 1},
    }
    assert models.keras_config(spec_form) == {
        "class_name": "Dense",
        "config": {
            "units": 3,
            "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}},
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": 1}},
        },
    }
    assert models.keras_config(3) == 3 and models.keras_config({"a": 1}) == {"a": 1}


def test_optimizer_loss_and_compile(tiny_spec):
    tiny_spec["compile"]["optimizer"] = {"class_name": "adam", "learning_rate": 0.01}
    spec = from_dict(tiny_spec)
    opt = models.optimizer(spec)
    assert isinstance(opt, keras.optimizers.Adam)
    assert float(np.asarray(opt.learning_rate)) == pytest.approx(0.01)
    assert isinstance(
        models.optimizer(from_dict({**tiny_spec, "compile": {"optimizer": "sgd"}})), keras.optimizers.SGD
    )
    loss = models.loss(spec)
    y = np.array([0, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]], dtype="float32")
    expected = keras.losses.SparseCategoricalCrossentropy()(y, p)
    assert float(np.mean(np.asarray(loss(y, p)))) == pytest.approx(float(expected), rel=1e-5)
    model = models.compile_model(models.build(spec, 4), spec)
    assert model.compiled and model.optimizer is not opt


def test_callbacks_are_fresh_objects(tiny_spec):
    tiny_spec["fit"]["callbacks"] = [{"class_name": "EarlyStopping", "monitor": "loss", "patience": 3}]
    spec = from_dict(tiny_spec)
    first, second = models.callbacks(spec), models.callbacks(spec)
    assert isinstance(first[0], keras.callbacks.EarlyStopping)
    assert first[0].patience == 3 and first[0].monitor == "loss"
    assert first[0] is not second[0]
    assert spec.fit["callbacks"][0]["class_name"] == "EarlyStopping"  # the spec is left alone


def test_check_accepts_valid_specs(tiny_spec):
    models.check(registry.discover()["iris_baseline"], 4)
    tiny_spec["model"].insert(1, {"class_name": "Dropout", "rate": 0.1})
    tiny_spec["model"][0]["kernel_regularizer"] = {"class_name": "L2", "l2": 0.01}
    tiny_spec["data"]["validation_size"] = 0.2
    tiny_spec["compile"] = {
        "optimizer": {"class_name": "Adam", "learning_rate": 0.01},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy", "sparse_categorical_accuracy"],
    }
    tiny_spec["fit"]["callbacks"] = [
        {"class_name": "EarlyStopping", "patience": 2, "restore_best_weights": True}
    ]
    models.check(from_dict(tiny_spec), 4)


def test_keras_name_errors(keras_bad_spec, check_message):
    raw, path, fragments = keras_bad_spec
    spec = from_dict(raw, source="exps.py")  # Keras names pass the Keras-free checks
    with pytest.raises(SpecError) as caught:
        models.check(spec, 4)
    message = str(caught.value)
    check_message(message, raw["name"], path, fragments)
    assert "(exps.py)" in message and "\n" not in message


def test_a_value_keras_refuses_names_the_layer(tiny_spec, check_message):
    tiny_spec["model"][0]["kernel_initializer"] = "glorot_unifrm"
    with pytest.raises(SpecError) as caught:
        models.check(from_dict(tiny_spec), 4)
    check_message(str(caught.value), "tiny", "model.0", ["Keras refused it:"])
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["_private", "caf\u00e9", "a b+c", "__", "[x]"])
def test_any_name_gives_a_keras_model_name_that_fits(name):
    """Keras model names must be valid root scope names: ASCII, not starting with '_'."""
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(3, activation="softmax")], name=models._model_name(name)
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.zeros((4, 4), "float32"), np.zeros(4, "int64"), epochs=1, verbose=0)
    assert model.name == models._model_name(name) and model.name.isascii() and model.name[0].isalnum()
