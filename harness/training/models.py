"""Keras objects from spec data, through Keras' own registries (no table of our own).

A spec writes a Keras object flat, `{"class_name": "Dense", "units": 4}`; Keras wants
`{"class_name": "Dense", "config": {"units": 4}}`. `keras_config` converts, nested objects
(regularizers, initializers) included. `check` builds everything once and turns Keras'
errors into SpecErrors that name the field.

Keras comes from `harness.training.backend`, the one place that brings it up.
"""

import inspect
import random
import sys

import numpy as np

from harness import data as datasets
from harness.errors import HarnessError, SpecError
from harness.spec import did_you_mean, thaw
from harness.training.backend import keras


def keras_config(obj):
    """Spec form -> Keras serialization form, recursively."""
    if isinstance(obj, dict) and "class_name" in obj:
        config = {k: keras_config(v) for k, v in obj.items() if k != "class_name"}
        return {"class_name": obj["class_name"], "config": config}
    if isinstance(obj, dict):
        return {k: keras_config(v) for k, v in obj.items()}
    return obj


def layer(config):
    """A Keras layer from its spec form; built-in layers are found in keras.layers."""
    serialized = keras_config(thaw(config))
    if hasattr(keras.layers, serialized["class_name"]):
        serialized["module"] = "keras.layers"
    return keras.layers.deserialize(serialized)


_checked_builds = {}  # (spec hash, n_features): (seed, the model the check built after seeding it)


def seeded_build(spec, n_features, seed):
    """(seed, `build` after `seed_everything(seed)`): the model a run of that seed starts from. The
    check's build of the spec, with its own seed, is taken instead when there is one: a spec is built
    once, not twice (about 20 ms each)."""
    kept = _checked_builds.pop((spec.hash, n_features), None)
    if kept is not None:
        return kept
    seed_everything(seed)
    return seed, build(spec, n_features)


def seed_everything(seed):
    """keras.utils.set_random_seed, without importing TensorFlow into a JAX or torch process."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def build(spec, n_features):
    """A fresh, uncompiled Sequential for `spec` on inputs with `n_features` columns."""
    layers = [layer(config) for config in spec.model]
    return keras.Sequential([keras.Input(shape=(n_features,)), *layers], name=_model_name(spec.name))


def _model_name(name):
    """A Keras model name from any experiment name: ASCII letters, digits and _, not starting with _
    (TensorFlow's root scope names)."""
    text = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name).lstrip("_")
    return text if text[:1].isalnum() else f"m{text}"


def optimizer(spec):
    return keras.optimizers.get(keras_config(thaw(spec.compile["optimizer"])))


def loss(spec):
    return keras.losses.get(spec.compile["loss"])


def callbacks(spec):
    """Fresh callback objects (callbacks keep state, so never share them between runs)."""
    made = []
    for cb in spec.fit["callbacks"]:
        cb = thaw(cb)
        made.append(getattr(keras.callbacks, cb.pop("class_name"))(**cb))
    return made


def compile_model(model, spec, steps_per_execution=1):
    model.compile(
        optimizer=optimizer(spec),
        loss=loss(spec),
        metrics=list(spec.compile["metrics"]),
        steps_per_execution=steps_per_execution,
    )
    return model


def _public_classes(module, base):
    return {
        n: getattr(module, n)
        for n in dir(module)
        if inspect.isclass(getattr(module, n)) and issubclass(getattr(module, n), base)
    }


def _accepted_args(cls):
    """Keyword arguments a Keras class takes, over its whole class hierarchy."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                names.add(p.name)
    return names


def _check_args(spec, path, obj, cls, what):
    accepted = _accepted_args(cls)
    for key in obj:
        if key != "class_name" and key not in accepted:
            raise SpecError(
                spec.name,
                f"{path}.{key}",
                f"{cls.__name__} has no argument {key!r}.{did_you_mean(key, accepted)}",
                spec.source,
            )


def _keras_error(spec, path, exc):
    message = str(exc).split("\n")[0]
    return SpecError(spec.name, path, f"Keras refused it: {message}", spec.source)


def check(spec, n_features):
    """Build every Keras object the spec names; raise SpecError naming the first bad field."""
    _check_layers(spec, n_features)
    _check_optimizer(spec)
    _check_loss_and_metrics(spec)
    _check_callbacks(spec)


_checked = set()  # the hashes of specs checked in this process (the doctor's remedies come back)


def check_specs(specs):
    """Check every spec against Keras before anything trains; the first problem raises. What a spec
    trains (its hash) is checked once per process."""
    for spec in specs:
        if spec.hash in _checked:
            continue
        try:
            split = datasets.load_split(spec.data, spec.seeds[0], datasets.folds(spec.data)[0])
        except SpecError:
            raise
        except HarnessError as exc:  # data that cannot be split as asked: name the experiment
            raise SpecError(spec.name, "data", str(exc), spec.source) from None
        check(spec, split.n_features)
        _checked.add(spec.hash)


def default_learning_rate(class_name):
    """The learning rate a Keras optimizer takes when a spec gives none."""
    return float(keras.optimizers.get({"class_name": class_name, "config": {}}).get_config()["learning_rate"])


def _check_layers(spec, n_features):
    layer_classes = _public_classes(keras.layers, keras.layers.Layer)
    layer_classes.update(
        {
            n: c
            for n, c in keras.saving.get_custom_objects().items()
            if inspect.isclass(c) and issubclass(c, keras.layers.Layer)
        }
    )
    activations = [
        n
        for n in dir(keras.activations)
        if not n.startswith("_") and n not in ("get", "serialize", "deserialize")
    ]
    for i, config in enumerate(spec.model):
        path = f"model.{i}"
        name = config["class_name"]
        if name not in layer_classes:
            raise SpecError(
                spec.name,
                f"{path}.class_name",
                f"{name!r} is not a Keras layer (any class in keras.layers is)."
                f"{did_you_mean(name, layer_classes)}",
                spec.source,
            )
        _check_args(spec, path, config, layer_classes[name], "layer")
        act = config.get("activation")
        if isinstance(act, str):
            try:
                keras.activations.get(act)
            except (ValueError, TypeError):
                raise SpecError(
                    spec.name,
                    f"{path}.activation",
                    f"{act!r} is not a Keras activation; allowed: {', '.join(activations)}."
                    f"{did_you_mean(act, activations)}",
                    spec.source,
                ) from None
    try:
        seed_everything(spec.seeds[0])
        model = build(spec, n_features)
    except Exception as exc:
        for i, config in enumerate(spec.model):  # a layer Keras cannot make is named by its path
            try:
                layer(config)
            except Exception as layer_exc:
                raise _keras_error(spec, f"model.{i}", layer_exc) from None
        raise _keras_error(spec, "model", exc) from None
    if keras.backend.backend() == "jax":  # the engine's initial weights start from this build
        if len(_checked_builds) >= 64:  # a batch of many specs, or a path that never takes them
            del _checked_builds[next(iter(_checked_builds))]
        _checked_builds[(spec.hash, n_features)] = (spec.seeds[0], model)


def _check_optimizer(spec):
    opt = spec.compile["optimizer"]
    opt_classes = _public_classes(keras.optimizers, keras.optimizers.Optimizer)
    by_lower = {n.lower(): c for n, c in opt_classes.items()}
    if opt["class_name"].lower() not in by_lower:
        names = sorted(n.lower() for n in opt_classes if n not in ("Optimizer", "LossScaleOptimizer"))
        raise SpecError(
            spec.name,
            "compile.optimizer.class_name",
            f"{opt['class_name']!r} is not a Keras optimizer; allowed: {', '.join(names)}."
            f"{did_you_mean(opt['class_name'].lower(), names)}",
            spec.source,
        )
    _check_args(spec, "compile.optimizer", opt, by_lower[opt["class_name"].lower()], "optimizer")
    try:
        optimizer(spec)
    except Exception as exc:
        raise _keras_error(spec, "compile.optimizer", exc) from None


def _check_loss_and_metrics(spec):
    try:
        loss(spec)
    except (ValueError, TypeError):
        names = sorted(
            n
            for n in dir(keras.losses)
            if not n.startswith("_") and n[0].islower() and n not in ("get", "serialize", "deserialize")
        )
        raise SpecError(
            spec.name,
            "compile.loss",
            f"{spec.compile['loss']!r} is not a Keras loss; allowed include: {', '.join(names)}."
            f"{did_you_mean(spec.compile['loss'], names)}",
            spec.source,
        ) from None
    for i, metric in enumerate(spec.compile["metrics"]):
        if metric in ("accuracy", "acc"):
            continue
        try:
            keras.metrics.get(metric)
        except (ValueError, TypeError):
            names = [
                "accuracy",
                *sorted(
                    n
                    for n in dir(keras.metrics)
                    if not n.startswith("_")
                    and n[0].islower()
                    and n not in ("get", "serialize", "deserialize")
                ),
            ]
            raise SpecError(
                spec.name,
                f"compile.metrics.{i}",
                f"{metric!r} is not a Keras metric.{did_you_mean(metric, names)}",
                spec.source,
            ) from None


def _check_callbacks(spec):
    cb_classes = _public_classes(keras.callbacks, keras.callbacks.Callback)
    for i, cb in enumerate(spec.fit["callbacks"]):
        path = f"fit.callbacks.{i}"
        if cb["class_name"] not in cb_classes:
            raise SpecError(
                spec.name,
                f"{path}.class_name",
                f"{cb['class_name']!r} is not a Keras callback; allowed: {', '.join(sorted(cb_classes))}."
                f"{did_you_mean(cb['class_name'], cb_classes)}",
                spec.source,
            )
        _check_args(spec, path, cb, cb_classes[cb["class_name"]], "callback")
    try:
        callbacks(spec)
    except Exception as exc:
        raise _keras_error(spec, "fit.callbacks", exc) from None
