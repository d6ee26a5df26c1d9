"""Search spaces in specs: a grid or random search expands, at load time, into named trial variants.

An experiment with `"search": {"grid": {PATH: [values, ...], ...}}` stands for the cross
product of those values; with `"search": {"random": {PATH: DISTRIBUTION, ...}, "trials": N,
"seed": S}` for N points drawn with numpy's Generator(S), a DISTRIBUTION being
`{"loguniform": [low, high]}`, `{"uniform": [low, high]}`, `{"int": [low, high]}` (both
ends included) or `{"choice": [values]}`. The rest of the experiment is the trials' base:
each trial is a variant of it named `SEARCH[label=value,...]` (a label is the path's last
part, or the whole path when that is ambiguous), tagged with the search's name.
"""

import dataclasses
import itertools
import json
import math
from collections import Counter

from harness.errors import SpecError
from harness.spec import derived_name, is_number, resolve

KINDS = ("grid", "random")
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
SHAPE = (
    "{'grid': {path: [values]}} or {'random': {path: {'loguniform': [low, high]}}, 'trials': N, 'seed': S}"
)


@dataclasses.dataclass(frozen=True)
class Search:
    """The search a trial belongs to: its name, kind, searched paths, trial count and base spec."""

    name: str
    kind: str
    paths: tuple
    trials: int
    seed: int = None
    base: object = None  # the search experiment without its search: the trials' base Spec

    def summary(self):
        """'grid of 10 trials over learning_rate × class_name' (or 'random search of ...')."""
        over = " × ".join(labels(self.paths).values())
        if self.kind == "grid":
            return f"grid of {self.trials} trials over {over}"
        return f"random search of {self.trials} trials over {over} (seed {self.seed})"


def split(raw):
    """(the experiment dict without its search, the search dict or None)."""
    if not isinstance(raw, dict) or "search" not in raw:
        return raw, None
    return {k: v for k, v in raw.items() if k != "search"}, raw["search"]


def labels(paths):
    """{path: label}: a path's last part, or the whole path when that part is an index or repeats."""
    last = {p: str(p).split(".")[-1] for p in paths}
    counts = Counter(last.values())
    return {
        p: last[p] if counts[last[p]] == 1 and not last[p].lstrip("-").isdigit() else str(p) for p in paths
    }


def text(value):
    """A value as it appears in a trial name: strings bare, numbers as Python writes them, the rest as
    JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def trial_name(search_name, overrides):
    tags = labels(list(overrides))
    return derived_name(search_name, ",".join(f"{tags[p]}={text(v)}" for p, v in overrides.items()))


def _check_distribution(dist, fail):
    """Raise (through `fail(message)`) unless `dist` is one well-formed distribution."""
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        fail(
            f"got {dist!r}; a distribution is one of {{'loguniform': [low, high]}}, "
            "{'uniform': [low, high]}, {'int': [low, high]}, {'choice': [values]}"
        )
    kind, args = next(iter(dist.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            fail(f"got {args!r}; 'choice' needs a non-empty list of values")
        return
    if (
        not isinstance(args, list)
        or len(args) != 2
        or not all(is_number(a) for a in args)
        or not args[0] < args[1] + (kind == "int")
    ):
        fail(f"got {args!r}; {kind!r} needs [low, high] with low {'<=' if kind == 'int' else '<'} high")
    if kind == "loguniform" and args[0] <= 0:
        fail(f"got {args!r}; 'loguniform' needs 0 < low < high")
    if kind == "int" and not all(isinstance(a, int) for a in args):
        fail(f"got {args!r}; 'int' needs integer bounds")


def _draw(rng, dist):
    kind, args = next(iter(dist.items()))
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    if kind == "int":
        return int(rng.integers(args[0], args[1], endpoint=True))
    low, high = args
    value = (
        math.exp(rng.uniform(math.log(low), math.log(high)))
        if kind == "loguniform"
        else rng.uniform(low, high)
    )
    return min(max(float(f"{value:.3g}"), low), high)  # 3 significant digits: readable names, still in bounds


def points(name, space, source=None):
    """(kind, [{path: value}, ...]): the search's trials as overrides, in order; a bad search raises
    SpecError."""

    def fail(path, message):
        raise SpecError(name, path, message, source)

    if not isinstance(space, dict) or sum(k in space for k in KINDS) != 1:
        fail("search", f"got {space!r}; a search is {SHAPE}")
    kind = "grid" if "grid" in space else "random"
    allowed = ("grid",) if kind == "grid" else ("random", "trials", "seed")
    for key in space:
        if key not in allowed:
            fail(f"search.{key}", f"a {kind} search takes only {', '.join(allowed)}")
    dims = space[kind]
    if not isinstance(dims, dict) or not dims:
        fail(f"search.{kind}", f"got {dims!r}; an empty search space: give at least one path, as in {SHAPE}")
    for path in dims:
        if not isinstance(path, str) or not path:
            fail(
                f"search.{kind}",
                f"got the path {path!r}; paths are strings such as 'compile.optimizer.learning_rate'",
            )
    if kind == "grid":
        for path, values in dims.items():
            if not isinstance(values, list) or not values:
                fail(f"search.grid.{path}", f"got {values!r}; a grid path needs a non-empty list of values")
            if len({json.dumps(v, sort_keys=True, default=repr) for v in values}) != len(values):
                fail(f"search.grid.{path}", f"got {values!r}; the values repeat")
        return kind, [dict(zip(dims, combo)) for combo in itertools.product(*dims.values())]
    for path, dist in dims.items():
        _check_distribution(dist, lambda message, path=path: fail(f"search.random.{path}", message))
    trials, seed = space.get("trials"), space.get("seed", 0)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials <= 0:
        fail("search.trials", f"got {trials!r}; a random search needs a positive number of trials")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        fail("search.seed", f"got {seed!r}; must be a non-negative integer")
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(seed))
    drawn = [{path: _draw(rng, dist) for path, dist in dims.items()} for _ in range(trials)]
    unique = {trial_name(name, p): p for p in drawn}  # a point drawn twice is one trial
    return kind, list(unique.values())


def trials(base, space, source=None):
    """The trial Specs of the search `space` over the resolved spec `base` (the search experiment's name)."""
    kind, found = points(base.name, space, source)
    paths = tuple(found[0])
    info = Search(
        base.name, kind, paths, len(found), space.get("seed", 0) if kind == "random" else None, base
    )
    tags = list(base.tags) + ([base.name] if base.name not in base.tags else [])
    out = []
    for overrides in found:
        name = trial_name(base.name, overrides)
        raw = {
            "name": name,
            "base": base.name,
            "description": base.description,
            "overrides": overrides,
            "tags": tags,
        }
        try:
            spec = resolve(raw, lambda _: base, source)
        except SpecError as exc:
            searched = [p for p in overrides if exc.path == p or str(exc.path).startswith(f"{p}.")]
            where = f"search.{kind}.{searched[0]}" if searched else f"search.{kind}"
            detail = exc.message if searched and exc.path == searched[0] else f"{exc.path}: {exc.message}"
            raise SpecError(base.name, where, f"{detail} (in trial {name!r})", source) from None
        out.append(dataclasses.replace(spec, search=info))
    return out


def collapse(specs):
    """The specs with each search's trials replaced by one entry: its base, described as the search."""
    out, seen = [], set()
    for spec in specs:
        info = of(spec)
        if info is None:
            out.append(spec)
        elif info.name not in seen:
            seen.add(info.name)
            described = (
                f"{info.summary()}: {info.base.description}" if info.base.description else info.summary()
            )
            out.append(dataclasses.replace(info.base, description=described))
    return out


def complete(specs):
    """Names of the searches all of whose trials are among `specs`."""
    counts = Counter(of(s).name for s in specs if of(s))
    return {of(s).name for s in specs if of(s) and counts[of(s).name] == of(s).trials}


def of(spec):
    """The Search a spec is a trial of, or None (also for objects that are not Specs)."""
    return getattr(spec, "search", None)
