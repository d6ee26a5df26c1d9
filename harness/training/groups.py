"""Groups: the unit of work. Every run trains as part of a group; no Keras or JAX is imported here.

The vectorized trainer takes a group of runs whose specs share the program's shapes (`key`): the
layer classes and sizes, the data arrays' shapes, loss, metrics, optimizer class and batching. What
else differs between them is a value the program takes per run (`layout` and OPTIMIZER_VALUES say
which): seeds, folds, learning rates and other optimizer numbers, L1/L2 factors, Dropout rates,
EarlyStopping's settings, epochs and the training subset (`train_fraction`). The per-run trainer
takes a group of one and trains it with Keras `fit`. Groups past MAX_RUNS runs are cut into groups
of equal size; a spec the vectorized trainer cannot take forms groups of one.
"""

import importlib.util
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from harness import data as datasets
from harness.errors import HarnessError
from harness.spec import thaw

ENGINES = ("auto", "vectorized", "per-run")
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
MAX_RUNS = 500  # per group: the engine trains it in calls of fewer runs, which bound its memory


class Unsupported(Exception):
    """The vectorized trainer cannot take this group (raised while it builds or runs the program);
    its runs train again as groups of one on the per-run trainer."""


@dataclass(frozen=True)
class Group:
    """Runs [(spec, seed, fold)] trained together by one trainer on one Keras backend."""

    runs: tuple
    trainer: str  # "vectorized" or "per-run"
    backend: str  # the Keras backend it trains on ("jax" for the vectorized trainer)
    fast: bool = True  # per-run: the harness's input pipeline (False: plain NumPy, as the article)
    verbose: bool = False  # per-run: Keras' own epoch lines

    def train(self, on_epoch=None):
        """Yield (runs.csv row, history rows) per run: the vectorized trainer when its program ends
        (or raises Unsupported), the per-run trainer after each run."""
        if self.trainer == "vectorized":
            from harness.training import vectorized

            return vectorized.train(self)
        from harness.training import per_run

        return per_run.train(self, on_epoch)

    def names(self):
        """The experiments of the group, in order, each once."""
        return list(dict.fromkeys(spec.name for spec, _, _ in self.runs))


def choose(engine, backend=None, verbose=False):
    """'vectorized' or 'per-run' for a command's --engine and --backend; a user mistake raises."""
    if engine not in ENGINES:
        raise HarnessError(f"--engine {engine!r}: allowed: {', '.join(ENGINES)}")
    if engine == "per-run":
        return "per-run"
    jax_installed = importlib.util.find_spec("jax") is not None
    if engine == "vectorized":
        if backend and backend != "jax":
            raise HarnessError(
                f"--engine vectorized trains on JAX; drop --backend {backend} or use --engine per-run"
            )
        if not jax_installed:
            raise HarnessError("--engine vectorized needs JAX: pip install jax")
        if verbose:
            raise HarnessError(
                "--engine vectorized has no Keras epoch output; drop -v or use --engine per-run"
            )
        return "vectorized"
    if (backend and backend != "jax") or not jax_installed or verbose:
        return "per-run"
    return "vectorized"


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
    `penalties`, {(skeleton layer, argument): regularizer as the spec writes it}."""

    skeleton: tuple
    indices: tuple
    dropouts: dict
    penalties: dict


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
    return Layout(tuple(skeleton), tuple(indices), dropouts, penalties)


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
    OPTIMIZER_VALUES take out, the learning rate, epochs, EarlyStopping and `train_fraction` (the
    training arrays are padded to the group's largest) are values in it; a cv fold's test and
    validation sizes are part of the data arrays' shapes."""
    training = {section: thaw(getattr(spec, section)) for section in ("data", "compile", "fit")}
    training["model"] = list(layout(spec).skeleton)
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


def _cut(runs, max_runs=None):
    """`runs` cut into pieces of (nearly) equal size, at most MAX_RUNS each; a piece takes every
    k-th run, so the pieces of a group of several specs hold them all (and share one program)."""
    count = math.ceil(len(runs) / (max_runs or MAX_RUNS))
    return [runs[i::count] for i in range(count)]


def form(todo, engine="auto", backend=None, verbose=False, fast=True, max_runs=None):
    """(groups, notes) for `todo` [(spec, seed, fold)]: vectorized groups first, then groups of one
    for the per-run trainer; a note says which runs go per-run and why, one line per reason."""
    per_run_backend = backend or default_backend()
    alone = lambda run: Group((run,), "per-run", per_run_backend, fast, verbose)  # noqa: E731
    if choose(engine, backend, verbose) == "per-run":
        return [alone(run) for run in todo], []
    grouped, single, why = {}, [], {}
    for spec, seed, fold in todo:
        reason = unsupported(spec)
        if reason:
            single.append(alone((spec, seed, fold)))
            why.setdefault(reason, {}).setdefault(spec.name, []).append(seed)
        else:
            grouped.setdefault(key(spec, fold), []).append((spec, seed, fold))
    vectorized = [
        Group(tuple(part), "vectorized", "jax") for runs in grouped.values() for part in _cut(runs, max_runs)
    ]
    return vectorized + single, [fallback_note(runs, reason) for reason, runs in why.items()]


def regroup(group, backend=None, fast=True):
    """A group the vectorized trainer could not take, as groups of one for the per-run trainer."""
    return [Group((run,), "per-run", backend or default_backend(), fast) for run in group.runs]


def default_backend():
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def fallback_note(runs, reason):
    """'per-run path for iris_x (seeds 0-4), ...: <reason>' from {name: seeds} or a Group."""
    if isinstance(runs, Group):
        by_name = {}
        for spec, seed, _ in runs.runs:
            by_name.setdefault(spec.name, []).append(seed)
        runs = by_name
    named = ", ".join(f"{name} ({_seeds(seeds)})" for name, seeds in list(runs.items())[:4])
    more = f" and {len(runs) - 4} more experiments" if len(runs) > 4 else ""
    return f"per-run path for {named}{more}: {reason}"


def _seeds(seeds):
    seeds = sorted(set(seeds))
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
