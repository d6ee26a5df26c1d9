"""Groups: the unit of work. Every run trains as part of a group; no Keras or JAX is imported here.

The vectorized trainer takes a group of runs whose specs share the program's shapes (`shapes.key`)
and trains it as one program; the per-run trainer takes a group of one and trains it with Keras
`fit`. Groups past MAX_RUNS runs are cut into groups of equal size; a spec the vectorized trainer
cannot take (`shapes.unsupported`) forms groups of one.
"""

import importlib.util
import math
import os
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.training.shapes import MAX_RUNS, key, layout, parts, unsupported

ENGINES = ("auto", "vectorized", "per-run")


@dataclass(frozen=True)
class Group:
    """Runs [(spec, seed, fold)] trained together by one trainer on one Keras backend."""

    runs: tuple
    trainer: str  # "vectorized" or "per-run"
    backend: str  # the Keras backend it trains on ("jax" for the vectorized trainer)
    fast: bool = True  # per-run: the harness's input pipeline (False: plain NumPy, as the article)
    verbose: bool = False  # per-run: Keras' own epoch lines
    expected: tuple = ()  # vectorized: specs a later group will train, whose runs its program takes too

    def train(self, on_epoch=None):
        """Yield (runs.csv row, history rows) per run: the vectorized trainer when its program ends
        (or raises shapes.Unsupported), the per-run trainer after each run."""
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


def _cut(runs, max_runs=None):
    """`runs` cut into pieces of (nearly) equal size, at most MAX_RUNS each; a piece takes every
    k-th run, so the pieces of a group of several specs hold them all (and share one program)."""
    count = math.ceil(len(runs) / (max_runs or MAX_RUNS))
    return [runs[i::count] for i in range(count)]


def form(todo, engine="auto", backend=None, verbose=False, fast=True, max_runs=None, expected=()):
    """(groups, notes) for `todo` [(spec, seed, fold)]: vectorized groups first, then groups of one
    for the per-run trainer; a note says which runs go per-run and why, one line per reason. Specs
    `expected` to train later (the doctor's remedies) go with the group whose program can take them
    as it is (`ahead`), so that their own groups find it compiled."""
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
        Group(tuple(piece), "vectorized", "jax", expected=ahead(part, expected))
        for runs in grouped.values()
        for part in parts(runs)
        for piece in _cut(part, max_runs)
    ]
    return vectorized + single, [fallback_note(runs, reason) for reason, runs in why.items()]


def ahead(runs, specs):
    """Those of `specs` whose runs the program of `runs` (one part of one key) can take without
    costing its own runs more: the same shapes, the same part, no unit wider and no stack deeper."""
    spec, _, fold = runs[0]
    mine = {s.hash: layout(s) for s, _, _ in runs}
    widest, deepest = {}, max((each.stack or (0, 0))[1] for each in mine.values())
    for each in mine.values():
        for i, units in each.widths.items():
            widest[i] = max(widest.get(i, 0), units)

    def fits(theirs):
        return (theirs.stack or (0, 0))[1] <= deepest and all(
            units <= widest.get(i, 0) for i, units in theirs.widths.items()
        )

    taken = [
        s
        for s in {s.hash: s for s in specs}.values()
        if s.hash not in mine and not unsupported(s) and key(s, fold) == key(spec, fold) and fits(layout(s))
    ]
    together = next(p for p in parts([*runs, *((s, None, fold) for s in taken)]) if runs[0] in p)
    return tuple(s for s, seed, _ in together if seed is None)


def regroup(group, backend=None, fast=True):
    """A group the vectorized trainer could not take, as groups of one for the per-run trainer."""
    return [Group((run,), "per-run", backend or default_backend(), fast) for run in group.runs]


def default_backend():
    """The per-run trainer's Keras backend when none is asked for: $KERAS_BACKEND, else tensorflow."""
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
