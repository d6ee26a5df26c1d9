"""What in a spec is a program's shape and what a per-run value, for the vectorized trainer.

Runs whose specs have the same `key` (layer classes and sizes, the data arrays' shapes, loss,
metrics, optimizer class and batching) train as one program; what else differs between them is a
value the program takes per run (`layout` and OPTIMIZER_VALUES say which): seeds, folds, learning
rates and other optimizer numbers, L1/L2 factors, Dropout rates, EarlyStopping's settings, epochs
and the training subset (`train_fraction`). The units of a hidden Dense layer are a value too where
zeros pad them exactly (`layout` says where): the program has the group's widest, and a run's units
beyond its own start at 0 and stay 0. So is the depth of a stack of like ReLU layers before the
output (`stacked`): the program has the group's deepest, and a shallower run passes the layers
beyond its own as the identity. No Keras or JAX is imported here.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from harness import data as datasets
from harness.spec import thaw

MAX_RUNS = 500  # per group: the engine trains it in calls of fewer runs, which bound its memory
CALLBACKS = ("EarlyStopping", "TerminateOnNaN")
# Optimizer arguments that are values in the program, per optimizer class (lower case); the learning
# rate is one for every class. Keras reads them as Python numbers, the vectorized trainer as the run's.
OPTIMIZER_VALUES = {
    "adam": ("weight_decay", "beta_1", "beta_2", "epsilon"),
    "adamw": ("weight_decay", "beta_1", "beta_2", "epsilon"),
    "sgd": ("weight_decay", "momentum"),
}
PENALTIES = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")
# keras.regularizers' classes whose factors are values, with Keras' defaults for a factor not given
FACTORS = {"L1": {"l1": 0.01}, "L2": {"l2": 0.01}, "L1L2": {"l1": 0.0, "l2": 0.0}}
# A unit whose weights in and out are 0 outputs f(0) = 0 under these activations, so it adds nothing
# to the next layer and gets a gradient of exactly 0; these optimizers then leave its weights at 0
# (each weight's update is its own gradient's: no factored or matrix-wide statistics).
ZERO_AT_ZERO = (None, "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "tanh")
ELEMENTWISE = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax", "nadam")


class Unsupported(Exception):
    """The vectorized trainer cannot take this group (raised while it builds or runs the program);
    its runs train again as groups of one on the per-run trainer."""


def unsupported(spec):
    """Why the vectorized trainer cannot take `spec` (a short phrase), or None when it can."""
    names = [cb["class_name"] for cb in spec.fit["callbacks"]]
    other = [n for n in names if n not in CALLBACKS]
    if other:
        return f"callback {other[0]} (the engine takes EarlyStopping and TerminateOnNaN)"
    if names.count("EarlyStopping") > 1:
        return "more than one EarlyStopping"
    if isinstance(spec.compile["optimizer"].get("learning_rate"), Mapping):
        return "a learning-rate schedule"
    return None


@dataclass(frozen=True)
class Layout:
    """A spec's model as the program sees it: `skeleton`, its layers but the plain Dropouts (a
    class name and a rate), with their L1/L2 regularizers taken out; `indices`, each skeleton layer's
    index in the spec's model; `dropouts`, {(position, k): (rate, index in the model)} where position
    is the skeleton layer the Dropout follows (-1: the input) and k counts Dropouts in a row there;
    `penalties`, {(skeleton layer, argument): regularizer as the spec writes it}; `widths`, {skeleton
    layer: units} for the Dense layers whose units zeros pad exactly (`paddable`); `stack`, (first,
    depth) of the ReLU Dense layers before the last layer that repeat the first of them but for units
    (`stacked`), or None; `skipped`, the layers a deeper program has that the spec has not (`placed`:
    their index is None)."""

    skeleton: tuple
    indices: tuple
    dropouts: dict
    penalties: dict
    widths: dict
    stack: tuple = None
    skipped: tuple = ()


def layout(spec):
    """The Layout of `spec`'s model (a layer, regularizer or Dropout of other forms stays in the skeleton)."""
    skeleton, indices, dropouts, penalties = [], [], {}, {}
    for index, config in enumerate(thaw(spec.model)):
        if (
            config["class_name"] == "Dropout"
            and set(config) == {"class_name", "rate"}
            and _number(config["rate"])
        ):
            position = len(skeleton) - 1
            k = sum(p == position for p, _ in dropouts)
            dropouts[(position, k)] = (float(config["rate"]), index)
            continue
        for argument in PENALTIES:
            if factors(config.get(argument)) is not None:
                penalties[(len(skeleton), argument)] = config.pop(argument)
        skeleton.append(config)
        indices.append(index)
    optimizer = spec.compile["optimizer"]["class_name"].lower()
    widths = {
        i: int(layer["units"])
        for i, layer in enumerate(skeleton[:-1])
        if optimizer in ELEMENTWISE and paddable(layer, skeleton[i + 1])
    }
    stack = stacked(skeleton, widths) if not spec.compile["optimizer"].get("global_clipnorm") else None
    return Layout(tuple(skeleton), tuple(indices), dropouts, penalties, widths, stack)


def _but_units(layer):
    return {k: v for k, v in layer.items() if k not in ("units", "name")}


def stacked(skeleton, widths):
    """(first, depth) of the paddable ReLU Dense layers right before the last layer that repeat the
    first of them but for their units, or None. Depth is a value: a shallower run trains in a deeper
    program whose layers beyond its own have one width and start as the identity, which ReLU keeps
    exact (relu(I h + 0) = h for h >= 0, and the gradient through it too), and are never updated."""
    last = len(skeleton) - 1
    first = last
    while (
        first - 1 in widths
        and skeleton[first - 1].get("activation") == "relu"
        and _but_units(skeleton[first - 1]) == _but_units(skeleton[last - 1])
    ):
        first -= 1
    return (first, last - first) if first < last else None


def placed(mine, depth):
    """Layout `mine` as a program whose stack is `depth` layers deep holds it: its layers after its
    own stack (and what follows them) move down, and the layers between are `skipped`."""
    if mine.stack is None or mine.stack[1] == depth:
        return mine
    first, own = mine.stack
    end, extra = first + own, depth - own

    def at(position):
        return position if position < end else position + extra

    copy = {k: v for k, v in mine.skeleton[first].items() if k != "name"}  # Keras names are unique
    return Layout(
        (*mine.skeleton[:end], *(dict(copy) for _ in range(extra)), *mine.skeleton[end:]),
        (*mine.indices[:end], *(None,) * extra, *mine.indices[end:]),
        {(at(p), k): v for (p, k), v in mine.dropouts.items()},
        {(at(p), a): v for (p, a), v in mine.penalties.items()},
        {at(i): units for i, units in mine.widths.items()},
        (first, depth),
        tuple(range(end, end + extra)),
    )


def paddable(layer, following):
    """Whether a Dense `layer` (a config, its L1/L2 regularizers taken out) followed by a Dense can have
    units of zero weights added without changing what it computes or how it trains."""
    plain = {
        "class_name",
        "name",
        "units",
        "activation",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
    }
    return (
        layer["class_name"] == following["class_name"] == "Dense"
        and set(layer) <= plain  # an L1/L2 penalty, taken out, adds 0 for zeros; others stay in the layer
        and layer.get("activation") in ZERO_AT_ZERO
        and isinstance(layer["units"], int)
    )


def parts(runs):
    """`runs` [(spec, seed, fold)] of one `key`, in parts that each train as one program: a run with
    a Dropout after a paddable layer narrower than the widest there trains apart, with the runs of its
    widths (its masks are drawn for its own units, as its own spec's program draws them)."""
    layouts = {spec.hash: layout(spec) for spec, _, _ in runs}
    widest = {}
    for each in layouts.values():
        for i, units in each.widths.items():
            widest[i] = max(widest.get(i, 0), units)
    stacks = {each.stack for each in layouts.values() if each.stack}
    if len(stacks) > 1:  # mixed depths: the program's stack has one width, its widest
        first, depth = max(stacks)
        top = max(widest.get(i, 0) for i in range(first, first + depth))
        widest.update({i: top for i in range(first, first + depth)})
    split = {}
    for run in runs:
        mine = layouts[run[0].hash]
        dropped = {position for position, _ in mine.dropouts}
        narrower = tuple((i, u) for i, u in sorted(mine.widths.items()) if u < widest[i] and i in dropped)
        split.setdefault(narrower, []).append(run)
    return list(split.values())


def factors(regularizer):
    """(l1, l2) of an L1, L2 or L1L2 regularizer written as spec data, else None."""
    if not isinstance(regularizer, Mapping) or regularizer.get("class_name") not in FACTORS:
        return None
    defaults = FACTORS[regularizer["class_name"]]
    given = {k: v for k, v in regularizer.items() if k != "class_name"}
    if not set(given) <= set(defaults) or not all(_number(v) for v in given.values()):
        return None
    values = {**defaults, **given}
    return float(values.get("l1", 0.0)), float(values.get("l2", 0.0))


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def key(spec, fold=None):
    """Equal for runs whose specs compile to the same program's shapes: what `layout` and
    OPTIMIZER_VALUES take out, the learning rate, epochs, EarlyStopping, `train_fraction` (the
    training arrays are padded to the group's largest) and paddable units are values in it; a cv
    fold's test and validation sizes are part of the data arrays' shapes."""
    training = {section: thaw(getattr(spec, section)) for section in ("data", "compile", "fit")}
    mine = layout(spec)
    training["model"] = [
        {k: v for k, v in layer.items() if k != "units" or i not in mine.widths}
        for i, layer in enumerate(mine.skeleton)
    ]
    if mine.stack:  # its depth is a value: the layers that repeat the stack's first are left out
        del training["model"][mine.stack[0] + 1 : sum(mine.stack)]
    training["data"].pop("train_fraction")
    optimizer = training["compile"]["optimizer"]
    optimizer["class_name"] = optimizer["class_name"].lower()
    for name in ("learning_rate", *OPTIMIZER_VALUES.get(optimizer["class_name"], ())):
        optimizer.pop(name, None)
    training["fit"].pop("epochs")
    training["fit"]["callbacks"] = [
        cb for cb in training["fit"]["callbacks"] if cb["class_name"] not in CALLBACKS
    ]
    if fold is not None:  # the fold's test part, and the validation part carved from its training part
        train, test = datasets.fold_indices(spec.data)[fold]
        share = spec.data["validation_size"] or 0
        training["fold_sizes"] = [len(test), math.ceil(share * len(train))]
    return json.dumps(training, sort_keys=True)
