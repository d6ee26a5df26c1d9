"""Which pending runs the vectorized engine trains together (no Keras, no JAX imported here).

A group is every run whose spec compiles to the same program: the same data spec, layers,
loss, metrics, optimizer (but for its learning rate, which enters as a value) and fit
settings; seeds and learning rates may differ. Large groups are cut into chunks of equal
size so memory stays bounded. Specs the engine cannot take go to the per-run path.
"""

import importlib.util
import json
import math
from collections.abc import Mapping

from harness.errors import HarnessError
from harness.spec import thaw

ENGINES = ("auto", "vectorized", "per-run")
CALLBACKS = ("EarlyStopping", "TerminateOnNaN")
MAX_RUNS = 500  # per chunk: past this, more runs only lengthen one call
# floats a chunk may hold in weights and their copies (optimizer slots, gradients, best weights)
FLOAT_BUDGET = 60_000_000
COPIES = 6


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
    """Why the engine cannot train `spec` (a short phrase), or None when it can."""
    names = [cb["class_name"] for cb in spec.fit["callbacks"]]
    other = [n for n in names if n not in CALLBACKS]
    if other:
        return f"callback {other[0]} (the engine takes EarlyStopping and TerminateOnNaN)"
    if names.count("EarlyStopping") > 1:
        return "more than one EarlyStopping"
    if isinstance(spec.compile["optimizer"].get("learning_rate"), Mapping):
        return "a learning-rate schedule"
    return None


def key(spec):
    """Equal for specs that compile to the same program (the learning rate is a value in it)."""
    training = {section: thaw(getattr(spec, section)) for section in ("data", "model", "compile", "fit")}
    training["compile"]["optimizer"].pop("learning_rate", None)
    training["compile"]["optimizer"]["class_name"] = training["compile"]["optimizer"]["class_name"].lower()
    return json.dumps(training, sort_keys=True)


def _weights(spec):
    """A rough count of a spec's weights (Dense layers only), to size chunks without Keras."""
    units = [layer.get("units") for layer in spec.model if isinstance(layer.get("units"), int)]
    return max(1, sum(a * b for a, b in zip(units, units[1:])) + 64 * (units[0] if units else 1))


def chunks(runs, max_runs=None):
    """`runs` cut into chunks of (nearly) equal size, each within the memory budget."""
    limit = max_runs or max(1, min(MAX_RUNS, FLOAT_BUDGET // (COPIES * _weights(runs[0][0]))))
    count = math.ceil(len(runs) / limit)
    size = math.ceil(len(runs) / count)
    return [runs[i : i + size] for i in range(0, len(runs), size)]


def plan(todo, max_runs=None):
    """(chunks [[(spec, seed, fold)]], runs for the per-run path [(spec, seed, fold)], notes [str])
    from `todo` [(spec, seed, fold)].

    A note says which runs fall back and why, one line per reason."""
    grouped, single, why = {}, [], {}
    for spec, seed, fold in todo:
        reason = unsupported(spec) or (None if fold is None else "cross-validation folds (data.cv)")
        if reason:
            single.append((spec, seed, fold))
            why.setdefault(reason, {}).setdefault(spec.name, []).append(seed)
        else:
            grouped.setdefault(key(spec), []).append((spec, seed, fold))
    notes = [fallback_note(runs, reason) for reason, runs in why.items()]
    return [c for runs in grouped.values() for c in chunks(runs, max_runs)], single, notes


def fallback_note(runs, reason):
    """'per-run path for iris_x (seeds 0-4), ...: <reason>' from {name: seeds} or [(spec, seed, fold)]."""
    if not isinstance(runs, dict):
        by_name = {}
        for spec, seed, *_ in runs:
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
