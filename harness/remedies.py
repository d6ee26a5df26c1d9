"""The problems the doctor treats, how it measures each, and the article's remedies for them,
each at a few strengths, as overrides of a spec dict.

A remedy builds, from the plain spec dict and one strength, the overrides of a variant, or
None where it does not apply (no hidden layer, already Adam, ...). The doctor tries every
strength on selection seeds and keeps the one with the best validation loss; when that is at an
end of the grid it tries strengths beyond it (`Remedy.beyond`, up to the remedy's limits) and
then one between the best two (`Remedy.between`).
"""

import math
from dataclasses import dataclass
from typing import Callable

from harness import diagnosis


@dataclass(frozen=True)
class Remedy:
    """One remedy: its name, strengths to try, `build(spec_dict, strength)` -> overrides or None,
    and `words(spec_dict, strength)` -> what it changes, for the summary. `limits` (inclusive), `log` and
    `integer` say how the grid may grow beyond its ends and be refined between two strengths."""

    name: str
    strengths: tuple
    build: Callable
    words: Callable
    limits: tuple = (0.0, math.inf)
    log: bool = True
    integer: bool = False

    def label(self, strength):
        """The remedy at a strength as it appears in names and tables, e.g. 'l2=0.01'."""
        return self.name if strength is None else f"{self.name}={strength:g}"

    @property
    def graded(self):
        """Whether its strengths lie on a scale the grid can extend (not a remedy without strengths)."""
        return len(self.strengths) > 1 and None not in self.strengths

    def _round(self, value):
        return int(round(value)) if self.integer else float(f"{value:.2g}")

    def beyond(self, end, neighbour):
        """The next strength past `end`, away from `neighbour`, one grid step on (the ratio of the two on a
        log scale, their difference on a linear one), at most to the limit; None when `end` is the limit."""
        step = end * (end / neighbour) if self.log else end + (end - neighbour)
        low, high = self.limits
        value = self._round(min(max(step, low), high))
        if self.integer and value == end:
            value = end + (1 if end > neighbour else -1)
        return value if low <= value <= high and value != end else None

    def between(self, a, b):
        """A strength halfway between `a` and `b` (geometric mean on a log scale), rounded to two significant
        digits (integers: the nearest); None when it rounds to either."""
        value = self._round(math.sqrt(a * b) if self.log else (a + b) / 2)
        return value if value not in (a, b) else None


_T = diagnosis.THRESHOLDS


@dataclass(frozen=True)
class Criterion:
    """How the table measures a problem: the per-run metric shown, its direction, and the per-seed
    rule that counts a seed as still having the problem (`rule` says it in words)."""

    metric: str
    lower: bool
    label: str
    rule: str
    shows: Callable


def _diagnosed(problem):
    return lambda row: problem in row["problems"]


CRITERIA = {
    "diverged": Criterion(
        "train_accuracy",
        False,
        "train accuracy",
        f"fit diagnosis: non-finite loss or training loss > {_T['diverge_loss_ratio']:g}x its first epoch",
        _diagnosed("diverged"),
    ),
    "exploding gradients": Criterion(
        "train_accuracy",
        False,
        "train accuracy",
        f"health: a layer's updates or weight norm grow {_T['exploding_growth']:g}x, "
        f"updates {_T['exploding_update_ratio']:g}x the weights, or non-finite values",
        _diagnosed("exploding gradients"),
    ),
    "vanishing gradients": Criterion(
        "gradient_spread",
        True,
        "log10(last / first layer update ratio)",
        f"the metric >= {math.log10(_T['vanishing_ratio']):g}",
        lambda row: row["gradient_spread"] >= math.log10(_T["vanishing_ratio"]),
    ),
    "dead ReLU units": Criterion(
        "dead_relu_fraction",
        True,
        "largest dead fraction of a ReLU layer",
        f"the metric >= {_T['dead_relu_fraction']:g}",
        lambda row: row["dead_relu_fraction"] >= _T["dead_relu_fraction"],
    ),
    "no convergence": Criterion(
        "train_loss",
        True,
        "train loss",
        "health: a plateau or an oscillating training loss "
        f"while train accuracy < {_T['underfit_train_accuracy']:g}",
        _diagnosed("no convergence"),
    ),
    "underfitting": Criterion(
        "train_accuracy",
        False,
        "train accuracy",
        f"the metric < {_T['underfit_train_accuracy']:g}",
        lambda row: not row["train_accuracy"] >= _T["underfit_train_accuracy"],
    ),
    "overfitting": Criterion(
        "gap_test_loss",
        True,
        "test loss - train loss",
        f"the metric > {_T['overfit_gap']:g} and test loss >= {_T['overfit_gap_ratio']:g}x train loss",
        lambda row: (
            row["gap_test_loss"] > _T["overfit_gap"]
            and row["test_loss"] >= _T["overfit_gap_ratio"] * row["train_loss"]
        ),
    ),
}
ORDER = list(CRITERIA)  # most serious first: a diverging network has to train before it can overfit
# What a network with a gradient problem (divergence, exploding, vanishing, dead units) shows
# as well; when one of those is found, its remedies are run, not these.
SYMPTOMS = ("no convergence", "underfitting")


def hidden(model):
    """Indices of the layers with `units` except the last (the output layer)."""
    sized = [i for i, layer in enumerate(model) if "units" in layer]
    return sized[:-1]


def _units(spec, scale=lambda units: units):
    """The hidden layers' units, e.g. '256, 256', after `scale`."""
    return ", ".join(str(scale(int(spec["model"][i]["units"]))) for i in hidden(spec["model"]))


def _optimizer(spec, **changes):
    return {"compile.optimizer": {**spec["compile"]["optimizer"], **changes}}


def learning_rate(spec):
    """The optimizer's learning rate: the spec's, else the Keras optimizer's default."""
    opt = spec["compile"]["optimizer"]
    if "learning_rate" in opt:
        return float(opt["learning_rate"])
    from harness.training import models  # Keras knows its optimizers' defaults

    return models.default_learning_rate(opt["class_name"])


def _with_hidden(spec, change):
    """The model with `change(layer)` applied to every hidden layer (None when there is none)."""
    model, inner = [dict(layer) for layer in spec["model"]], hidden(spec["model"])
    if not inner:
        return None
    for i in inner:
        model[i] = change(model[i])
    return {"model": model}


def _after_hidden(spec, extra):
    model, inner = spec["model"], set(hidden(spec["model"]))
    if not inner:
        return None
    return {
        "model": [
            x for i, layer in enumerate(model) for x in ([layer, dict(extra)] if i in inner else [layer])
        ]
    }


def _shallower(spec, keep):
    """The first `keep` hidden layers (with what follows each), then the output layer and after."""
    model, inner = spec["model"], hidden(spec["model"])
    if not 1 <= keep < len(inner):
        return None
    output = [i for i, layer in enumerate(model) if "units" in layer][-1]
    return {"model": [*model[: inner[keep]], *model[output:]]}


def _narrower(spec, factor):
    if any(int(spec["model"][i]["units"]) // factor < 2 for i in hidden(spec["model"])):
        return None
    return _with_hidden(spec, lambda layer: {**layer, "units": int(layer["units"]) // factor})


def _batchnorm(spec, _strength):
    """Dense (no activation) -> BatchNormalization -> the activation, for each hidden layer."""
    inner = set(hidden(spec["model"]))
    model = []
    for i, layer in enumerate(spec["model"]):
        if i in inner:
            act = layer.get("activation", "linear")
            model += [
                {**layer, "activation": "linear"},
                {"class_name": "BatchNormalization"},
                {"class_name": "Activation", "activation": act},
            ]
        else:
            model.append(layer)
    return {"model": model} if inner else None


def _saturating(spec):
    return any(spec["model"][i].get("activation") in ("sigmoid", "tanh") for i in hidden(spec["model"]))


def _regularised(spec):
    return any(k.endswith("_regularizer") for layer in spec["model"] for k in layer) or any(
        layer["class_name"] == "Dropout" for layer in spec["model"]
    )


def _unregularised(spec, _strength):
    if not _regularised(spec):
        return None
    model = [
        {k: v for k, v in layer.items() if not k.endswith("_regularizer")}
        for layer in spec["model"]
        if layer["class_name"] != "Dropout"
    ]
    return {"model": model}


def _early_stopping(spec, patience):
    if not spec["data"].get("validation_size"):
        return None
    stop = {
        "class_name": "EarlyStopping",
        "monitor": "val_loss",
        "patience": int(patience),
        "restore_best_weights": True,
    }
    return {"fit.callbacks": [*spec["fit"]["callbacks"], stop]}


def _adam(spec, rate):
    if spec["compile"]["optimizer"]["class_name"].lower() == "adam":
        return None
    return {"compile.optimizer": {"class_name": "Adam", "learning_rate": rate}}


def _penalty(kind):
    def build(spec, factor):
        regularizer = {"class_name": kind, kind.lower(): factor}
        return _with_hidden(spec, lambda layer: {**layer, "kernel_regularizer": regularizer})

    return build


def _relu(init=None):
    def build(spec, _strength):
        if not _saturating(spec):
            return None
        extra = {"kernel_initializer": init} if init else {}
        return _with_hidden(spec, lambda layer: {**layer, "activation": "relu", **extra})

    return build


def _leaky(spec, _strength):
    if not any(spec["model"][i].get("activation") == "relu" for i in hidden(spec["model"])):
        return None
    return _with_hidden(
        spec,
        lambda layer: {**layer, "activation": "leaky_relu"} if layer.get("activation") == "relu" else layer,
    )


LOWER_LR = Remedy(
    "lower_lr",
    (3, 10, 30),
    lambda s, k: _optimizer(s, learning_rate=learning_rate(s) / k),
    lambda s, k: f"a {k:g}x lower learning rate ({learning_rate(s) / k:g} instead of {learning_rate(s):g})",
    limits=(1.5, 1000),
)
ADAM = Remedy(
    "adam",
    (1e-4, 1e-3, 1e-2),
    _adam,
    lambda s, r: f"Adam at learning rate {r:g} instead of {s['compile']['optimizer']['class_name']}",
    limits=(1e-6, 1.0),
)
CLIPNORM = Remedy(
    "clipnorm",
    (0.1, 1.0),
    lambda s, c: _optimizer(s, clipnorm=c),
    lambda s, c: f"gradient clipping (clipnorm={c:g})",
    limits=(1e-3, 100),
)

# The article's remedies per problem (diagnosis.REMEDIES says them), in the order they are listed.
REMEDIES = {
    "diverged": [CLIPNORM, LOWER_LR, ADAM],
    "vanishing gradients": [
        Remedy("relu", (None,), _relu(), lambda s, _: "ReLU instead of sigmoid/tanh in the hidden layers"),
        Remedy(
            "relu_he_init",
            (None,),
            _relu("he_normal"),
            lambda s, _: "ReLU with He initialisation in the hidden layers",
        ),
        Remedy(
            "batchnorm", (None,), _batchnorm, lambda s, _: "batch normalisation before each hidden activation"
        ),
        ADAM,
    ],
    "dead ReLU units": [
        LOWER_LR,
        Remedy(
            "he_init",
            (None,),
            lambda s, _: _with_hidden(s, lambda layer: {**layer, "kernel_initializer": "he_normal"}),
            lambda s, _: "He initialisation of the hidden layers",
        ),
        Remedy("leaky_relu", (None,), _leaky, lambda s, _: "leaky ReLU instead of ReLU"),
    ],
    "no convergence": [LOWER_LR, ADAM],
    "underfitting": [
        Remedy(
            "more_capacity",
            (2, 4, 8),
            lambda s, k: _with_hidden(s, lambda layer: {**layer, "units": int(layer["units"]) * k}),
            lambda s, k: f"hidden layers {k:g}x wider ({_units(s)} -> {_units(s, lambda u: u * k)} units)",
            limits=(2, 64),
            integer=True,
        ),
        ADAM,
        Remedy(
            "more_epochs",
            (2, 3, 5),
            lambda s, k: {"fit.epochs": int(s["fit"]["epochs"]) * k},
            lambda s, k: f"{int(s['fit']['epochs']) * k} epochs instead of {s['fit']['epochs']}",
            limits=(2, 20),
            integer=True,
        ),
        Remedy(
            "higher_lr",
            (3, 10, 30),
            lambda s, k: _optimizer(s, learning_rate=learning_rate(s) * k),
            lambda s, k: f"a {k:g}x higher learning rate ({learning_rate(s) * k:g})",
            limits=(1.5, 1000),
        ),
        Remedy(
            "less_regularisation",
            (None,),
            _unregularised,
            lambda s, _: "no weight penalties and no dropout",
        ),
    ],
    "overfitting": [
        Remedy(
            "more_data",
            (None,),
            lambda s, _: {"data.train_fraction": 1.0} if float(s["data"]["train_fraction"]) < 1 else None,
            lambda s, _: (
                f"all of the training part (train_fraction 1.0 instead of {s['data']['train_fraction']:g})"
            ),
        ),
        Remedy(
            "narrower",
            (2, 4, 8),
            _narrower,
            lambda s, k: (
                f"hidden layers {k:g}x narrower ({_units(s)} -> {_units(s, lambda u: u // k)} units)"
            ),
            limits=(2, math.inf),
            integer=True,
        ),
        Remedy(
            "shallower",
            (1, 2),
            _shallower,
            lambda s, k: f"{k:g} hidden layer(s) instead of {len(hidden(s['model']))}",
            limits=(1, math.inf),
            log=False,
            integer=True,
        ),
        Remedy(
            "l2",
            (1e-4, 1e-3, 1e-2, 1e-1),
            _penalty("L2"),
            lambda s, f: f"an L2 weight penalty of {f:g} on each hidden layer",
            limits=(1e-7, 10),
        ),
        Remedy(
            "l1",
            (1e-4, 1e-3, 1e-2),
            _penalty("L1"),
            lambda s, f: f"an L1 weight penalty of {f:g} on each hidden layer",
            limits=(1e-7, 10),
        ),
        Remedy(
            "dropout",
            (0.1, 0.3, 0.5),
            lambda s, r: _after_hidden(s, {"class_name": "Dropout", "rate": r}),
            lambda s, r: f"dropout at rate {r:g} after each hidden layer",
            limits=(0.05, 0.9),
            log=False,
        ),
        Remedy(
            "early_stopping",
            (2, 5, 10),
            _early_stopping,
            lambda s, p: f"early stopping on the validation loss (patience {p:g}, best weights restored)",
            limits=(1, math.inf),
            integer=True,
        ),
    ],
}
REMEDIES["exploding gradients"] = REMEDIES["diverged"]
