"""Groups: the unit of work. Every run trains as part of a group; no Keras or JAX is imported here.

The vectorized trainer takes a group of runs whose specs compile to the same program (the same
data arrays' shapes, layers, loss, metrics, optimizer but for its learning rate, and fit settings;
seeds, folds and learning rates may differ) and trains them as one JAX program. The per-run
trainer takes a group of one and trains it with Keras `fit`. Large groups are cut into groups of
equal size so memory stays bounded; a spec the vectorized trainer cannot take forms groups of one.
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
MAX_RUNS = 500  # per group: past this, more runs only lengthen one call
# floats a group may hold in weights and their copies (optimizer slots, gradients, best weights)
FLOAT_BUDGET = 60_000_000
COPIES = 6


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


def key(spec, fold=None):
    """Equal for runs that compile to the same program (the learning rate is a value in it; a cv
    fold's sizes are part of the data arrays' shapes)."""
    training = {section: thaw(getattr(spec, section)) for section in ("data", "model", "compile", "fit")}
    training["compile"]["optimizer"].pop("learning_rate", None)
    training["compile"]["optimizer"]["class_name"] = training["compile"]["optimizer"]["class_name"].lower()
    if fold is not None:
        training["fold_sizes"] = [len(part) for part in datasets.fold_indices(spec.data)[fold]]
    return json.dumps(training, sort_keys=True)


def _weights(spec):
    """A rough count of a spec's weights (Dense layers only), to size groups without Keras."""
    units = [layer.get("units") for layer in spec.model if isinstance(layer.get("units"), int)]
    return max(1, sum(a * b for a, b in zip(units, units[1:])) + 64 * (units[0] if units else 1))


def _cut(runs, max_runs=None):
    """`runs` cut into pieces of (nearly) equal size, each within the memory budget."""
    limit = max_runs or max(1, min(MAX_RUNS, FLOAT_BUDGET // (COPIES * _weights(runs[0][0]))))
    count = math.ceil(len(runs) / limit)
    size = math.ceil(len(runs) / count)
    return [runs[i : i + size] for i in range(0, len(runs), size)]


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
    vectorized = [Group(tuple(part), "vectorized", "jax") for runs in grouped.values() for part in _cut(runs, max_runs)]
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
