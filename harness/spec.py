"""Experiment specs: plain data that round-trips through JSON, checked before any training.

A spec is a dict with the sections below; `resolve` fills defaults, applies a variant's
overrides to its base, validates everything that can be checked without Keras and returns
an immutable `Spec`. Keras names (layers, activations, optimizers, ...) are checked by
`harness.training.models.check` once Keras is imported.
"""

import copy
import difflib
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from types import MappingProxyType

from harness import data as datasets
from harness.errors import HarnessError, SpecError

DEFAULTS = {
    "description": "",
    "data": {
        "dataset": "iris",
        "path": None,
        "target": None,
        "test_size": 0.2,
        "split_seed": 42,
        "resplit": False,
        "cv": None,
        "scale": "standard",
        "validation_size": None,
        "train_fraction": 1.0,
        "labels": "integer",
    },
    "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 100, "batch_size": 32, "callbacks": [], "shuffle": True},
    "seeds": 5,
    "tags": [],
}
SECTIONS = ("name", "description", "data", "model", "compile", "fit", "seeds", "tags")
VARIANT_KEYS = ("name", "description", "base", "overrides", "seeds", "tags")
SCALERS = ("standard", "minmax", None)
LABELS = ("integer", "onehot")
# Keras callbacks whose `monitor` defaults to "val_loss" (checked without importing Keras).
MONITORS_VAL_LOSS = ("EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint", "OrbaxCheckpoint")
# The parts of a spec that decide what is trained; their hash keys stored runs.
TRAINING_SECTIONS = ("data", "model", "compile", "fit")
# A name is its results folder's name: printable ASCII but / and \, not starting with '.', '-'
# or a space, at most NAME_MAX characters. Derived names (`--set`, search trials) escape the rest.
NAME_MAX = 200
NAME_CHARACTERS = "ASCII letters, digits, spaces and punctuation, but no '/' and no '\\'"


def name_problem(name):
    """Why `name` cannot be an experiment's name (and folder), or None."""
    bad = sorted({c for c in name if not " " <= c <= "~" or c in "/\\"})
    if bad:
        return f"not allowed: {', '.join(repr(c) for c in bad)}; a name is made of {NAME_CHARACTERS}"
    if name[0] in ".- " or name[-1] == " ":
        return "a name cannot start with '.', '-' or a space, nor end with a space"
    if len(name) > NAME_MAX:
        return f"{len(name)} characters; at most {NAME_MAX}"
    return None


def name_text(value):
    """Text as it may appear in a derived name: characters a name cannot hold (and %) as %XX."""
    return "".join(
        c if " " <= c <= "~" and c not in "/\\%" else "".join(f"%{b:02X}" for b in c.encode()) for c in value
    )


def derived_name(base, label):
    """`base[label]` (a `--set` variant or a search's trial), escaped; one too long keeps its start
    and gets a hash of the whole instead, so every derived name is a valid one."""
    name = f"{base}[{name_text(label)}]"
    if len(name) > NAME_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[: NAME_MAX - 12]}~{digest}]"
    return name


def training_hash(spec):
    """The hash of a spec's training sections (a dict, e.g. a spec.json); for a CSV data set
    also of the file's bytes, so a changed file is a changed spec. Built-in data sets hash
    as they always have."""
    training = {key: thaw(spec.get(key)) for key in TRAINING_SECTIONS}
    data = training.get("data")
    if isinstance(data, dict) and data.get("cv") is None:  # counts only when set: older specs keep their hash
        training["data"] = data = {k: v for k, v in data.items() if k != "cv"}
    if isinstance(data, dict) and data.get("dataset") == "csv":
        training["data_sha256"] = datasets.file_hash(data.get("path"))
    blob = json.dumps(training, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def did_you_mean(value, choices):
    """' Did you mean 'x'?' for a near miss among choices, else ''."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    if not close:
        lowered = {str(c).lower(): str(c) for c in choices}
        if str(value).lower() in lowered:
            close = [lowered[str(value).lower()]]
    return f" Did you mean {close[0]!r}?" if close else ""


def _freeze(value):
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value):
    """A frozen spec value back as plain, mutable JSON data."""
    if isinstance(value, (dict, MappingProxyType)):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Spec:
    """A resolved, validated experiment. Immutable: derive new ones with `with_overrides`."""

    name: str
    description: str
    data: MappingProxyType
    model: tuple
    compile: MappingProxyType
    fit: MappingProxyType
    seeds: tuple
    tags: tuple
    base: str = None
    overrides: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    source: str = field(default=None, compare=False)
    search: object = field(default=None, compare=False)  # a trial's harness.search.Search, else None

    def to_dict(self):
        """The resolved spec as JSON-ready data (the form `spec.json` stores)."""
        out = {key: thaw(getattr(self, key)) for key in SECTIONS}
        out["base"] = self.base
        out["overrides"] = thaw(self.overrides)
        return out

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @property
    def hash(self):
        """Identifies what is trained (a CSV file's contents included): equal for specs that
        differ only in name, seeds or tags."""
        return training_hash({key: getattr(self, key) for key in TRAINING_SECTIONS})

    def with_overrides(self, overrides, name=None, source=None):
        """A new spec with `overrides` ({path: value}) applied, validated like any other.

        `source` is where the overrides were written (a variant's module); errors name it."""
        source = source or self.source
        raw = self.to_dict()
        raw["name"] = name or self.name
        raw.pop("base"), raw.pop("overrides")
        apply_overrides(raw, overrides, raw["name"], source)
        spec = from_dict(raw, source=source)
        return _replace(spec, base=self.name, overrides=dict(overrides))

    def with_seeds(self, seeds):
        return _replace(self, seeds=tuple(seeds))

    def __reduce__(self):
        # Read-only mappings do not pickle; worker processes get the plain data instead.
        return (from_dict, (self.to_dict(), self.source))


def set_text(path, value):
    """An override as `--set` takes it, PATH=VALUE: a string bare, any other value as JSON."""
    return f"{path}={value if isinstance(value, str) else json.dumps(value)}"


def set_name(name, overrides):
    """The name of `run NAME --set ...`'s variant: NAME[PATH=VALUE,...], escaped as names must be."""
    return derived_name(name, ",".join(set_text(p, v) for p, v in overrides.items()))


def _replace(spec, **changes):
    values = {f: getattr(spec, f) for f in spec.__dataclass_fields__}
    values.update({k: _freeze(v) for k, v in changes.items()})
    return Spec(**values)


def from_dict(raw, source=None):
    """Fill defaults, normalise and validate a complete (non-variant) experiment dict."""
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpecError(None, "name", f"got {name!r}; every experiment needs a non-empty string name", source)
    problem = name_problem(name)
    if problem:
        shown = name if len(name) <= 80 else name[:60] + "..."
        raise SpecError(shown, "name", f"got {shown!r}; {problem} (a name becomes a results folder)", source)
    for key in raw:
        if key not in SECTIONS and key not in ("base", "overrides"):
            raise SpecError(
                name,
                key,
                f"unknown section {key!r}; allowed: {', '.join(SECTIONS)}.{did_you_mean(key, SECTIONS)}",
                source,
            )
    spec = {key: copy.deepcopy(raw.get(key, DEFAULTS.get(key))) for key in SECTIONS}
    for section in ("data", "compile", "fit"):
        given = spec[section]
        if not isinstance(given, dict):
            raise SpecError(name, section, f"got {given!r}; must be a dict", source)
        for key in given:
            if key not in DEFAULTS[section]:
                allowed = ", ".join(DEFAULTS[section])
                raise SpecError(
                    name,
                    f"{section}.{key}",
                    f"unknown field; allowed: {allowed}.{did_you_mean(key, DEFAULTS[section])}",
                    source,
                )
        spec[section] = {**copy.deepcopy(DEFAULTS[section]), **given}
    spec["seeds"] = seed_list(spec["seeds"], name, source)
    if isinstance(spec["compile"]["optimizer"], str):
        spec["compile"]["optimizer"] = {"class_name": spec["compile"]["optimizer"]}
    if isinstance(spec["data"]["cv"], dict):  # {"folds": K} means one repeat; one spelling, one hash
        spec["data"]["cv"] = {"folds": spec["data"]["cv"].get("folds"), "repeats": 1, **spec["data"]["cv"]}
    validate(spec, source)
    # A stored (`to_dict`) variant keeps its base and overrides, already applied, as a record.
    return Spec(
        **{key: _freeze(spec[key]) for key in SECTIONS},
        base=raw.get("base"),
        overrides=_freeze(copy.deepcopy(raw.get("overrides") or {})),
        source=source,
    )


def resolve(raw, bases, source=None):
    """Resolve a raw experiment dict; a variant ({"base": NAME, "overrides": {...}}) uses `bases`."""
    if not isinstance(raw, dict):
        raise SpecError(None, "", f"an experiment must be a dict, got {type(raw).__name__}", source)
    if raw.get("base") is None:
        return from_dict(raw, source)
    name = raw.get("name")
    for key in raw:
        if key not in VARIANT_KEYS:
            raise SpecError(
                name,
                key,
                f"a variant may set only {', '.join(VARIANT_KEYS)}; "
                "put changes in 'overrides' as {path: value}."
                f"{did_you_mean(key, VARIANT_KEYS)}",
                source,
            )
    base = bases(raw["base"])
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise SpecError(name, "overrides", f"got {overrides!r}; must be a dict of {{path: value}}", source)
    spec = base.with_overrides(overrides, name=name, source=source)
    changes = {"description": raw.get("description", ""), "base": base.name, "overrides": overrides}
    for key in ("seeds", "tags"):
        if key in raw:
            changes[key] = seed_list(raw[key], name, source) if key == "seeds" else raw[key]
    spec = _replace(spec, **changes, source=source)
    validate(spec.to_dict(), source)
    return spec


def seed_list(seeds, name, source=None):
    """`seeds` as written (a count or a list) as a list; a count that is not a positive integer raises."""
    allowed = "must be a positive count or a non-empty list of distinct non-negative integers"
    if isinstance(seeds, bool):
        raise SpecError(name, "seeds", f"got {seeds!r}; {allowed} (true/false is not a count)", source)
    if isinstance(seeds, int):
        if seeds <= 0:
            raise SpecError(name, "seeds", f"got {seeds!r}; {allowed}", source)
        return list(range(seeds))
    return seeds


def parse_path(path):
    return [int(p) if p.lstrip("-").isdigit() else p for p in str(path).split(".")]


def apply_overrides(raw, overrides, name, source=None):
    """Set each `path: value` in the plain dict `raw`, in place.

    A path must lead to an existing field, except that a new key may be added to an object
    that names a Keras class (a layer, optimizer, callback, regularizer), index len(list)
    appends to a list, and `+i` inserts before index i (`model.+1`: a new second layer).
    Overrides apply in order: an index counts the list as the overrides before it left it.
    """
    for path, value in overrides.items():
        parts = parse_path(path)
        if parts[0] not in SECTIONS or parts[0] == "name":
            choices = [s for s in SECTIONS if s != "name"]
            raise SpecError(
                name,
                path,
                f"unknown override path: {parts[0]!r} is not a spec section; "
                f"allowed: {', '.join(choices)}.{did_you_mean(parts[0], choices)}",
                source,
            )
        if (
            parts[0] == "compile"
            and len(parts) > 2
            and parts[1] == "optimizer"
            and isinstance(raw["compile"].get("optimizer"), str)
        ):
            raw["compile"]["optimizer"] = {"class_name": raw["compile"]["optimizer"]}
        node = raw
        for depth, part in enumerate(parts[:-1]):
            node = _step(node, part, parts, depth, name, source)
        last = parts[-1]
        if isinstance(node, list) and isinstance(last, str) and last[:1] == "+":
            if not last[1:].isdigit() or not int(last[1:]) <= len(node):
                raise SpecError(
                    name,
                    path,
                    f"unknown override path: {last!r} does not insert into a list of {len(node)} "
                    f"(+0 to +{len(node)})",
                    source,
                )
            node.insert(int(last[1:]), copy.deepcopy(value))
        elif isinstance(node, list):
            if not isinstance(last, int) or not -len(node) <= last <= len(node):
                raise SpecError(
                    name, path, f"unknown override path: index {last!r} outside a list of {len(node)}", source
                )
            if last == len(node):
                node.append(copy.deepcopy(value))
            else:
                node[last] = copy.deepcopy(value)
        elif isinstance(node, dict):
            if last not in node and "class_name" not in node:
                raise SpecError(
                    name,
                    path,
                    f"unknown override path: no field {last!r} here; "
                    f"fields: {', '.join(map(str, node))}.{did_you_mean(last, list(node))}",
                    source,
                )
            node[last] = copy.deepcopy(value)
        else:
            raise SpecError(
                name,
                path,
                f"unknown override path: {'.'.join(map(str, parts[:-1]))} is {node!r}, not a dict or list",
                source,
            )
    return raw


def _step(node, part, parts, depth, name, source):
    here = ".".join(map(str, parts[: depth + 1]))
    if isinstance(node, dict):
        if part not in node:
            raise SpecError(
                name,
                ".".join(map(str, parts)),
                f"unknown override path: no field {here!r}.{did_you_mean(part, list(node))}",
                source,
            )
        return node[part]
    if isinstance(node, list):
        if not isinstance(part, int) or not -len(node) <= part < len(node):
            raise SpecError(
                name,
                ".".join(map(str, parts)),
                f"unknown override path: {here!r} is outside a list of {len(node)}",
                source,
            )
        return node[part]
    raise SpecError(
        name, ".".join(map(str, parts)), f"unknown override path: {here!r} goes into {node!r}", source
    )


# -- validation of what can be checked without Keras ------------------------------------


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Interval:
    """Numbers of `kind` (int or float, which takes ints too) between `low` and `high`, either
    bound None for unbounded; `closed` is "left", "right", "both" or "neither"."""

    kind: type
    low: float = None
    high: float = None
    closed: str = "both"

    def __contains__(self, value):
        if not (is_int(value) if self.kind is int else is_number(value)):
            return False
        above = self.low is None or (
            value >= self.low if self.closed in ("left", "both") else value > self.low
        )
        below = self.high is None or (
            value <= self.high if self.closed in ("right", "both") else value < self.high
        )
        return above and below


def list_of(kind):
    """A constraint: a list whose items are all of `kind`."""
    return lambda value: isinstance(value, list) and all(isinstance(v, kind) for v in value)


def keras_object(value):
    """A constraint: `{"class_name": "...", ...its config}`."""
    return isinstance(value, dict) and isinstance(value.get("class_name"), str)


def _seed_list(value):
    return (
        isinstance(value, list)
        and bool(value)
        and all(is_int(s) and s >= 0 for s in value)
        and len(set(value)) == len(value)
    )


def _allowed(choices, shown=None, last=None):
    """The 'allowed: ...' text of a choice, with a near miss suggested."""
    return lambda value: f"allowed: {shown or ', '.join(choices)}.{did_you_mean(value, last or choices)}"


KERAS_OBJECT = "must be a dict with a 'class_name' string and its config as further keys"
# What each field may hold: path -> (constraints, any of which may hold, and what the error says is
# allowed, a text or a function of the bad value). A constraint is None (null), a type, an Interval,
# a tuple of choices or a predicate. `*` stands for every item of a list; a field a spec leaves out
# (a layer without `units`) is not checked. Checked in this order, before the checks across fields.
CONSTRAINTS = {
    "description": ([str], "must be a string"),
    "data.dataset": ([datasets.NAMES], _allowed(datasets.NAMES)),
    "data.path": ([object], "checked with data.dataset: a csv dataset needs an existing CSV file"),
    "data.target": ([object], "checked with data.dataset: a csv dataset needs its target column"),
    "data.test_size": ([Interval(float, 0, 1, "neither")], "must be a fraction strictly between 0 and 1"),
    "data.validation_size": (
        [None, Interval(float, 0, 1, "neither")],
        "must be null (no validation split) or a fraction strictly between 0 and 1",
    ),
    "data.train_fraction": ([Interval(float, 0, 1, "right")], "must be a fraction in (0, 1]"),
    "data.split_seed": ([Interval(int, 0, None)], "must be a non-negative integer"),
    "data.resplit": ([bool], "must be true or false"),
    "data.cv": ([object], 'checked by _check_cv: null or {"folds": K, "repeats": R}'),
    "data.scale": ([SCALERS], _allowed(SCALERS, "'standard', 'minmax' or null", SCALERS[:2])),
    "data.labels": ([LABELS], _allowed(LABELS)),
    "model": (
        [lambda v: isinstance(v, list) and bool(v)],
        "must be a non-empty list of layers, each {'class_name': 'Dense', 'units': ..., ...}",
    ),
    "model.*": ([keras_object], f"a layer {KERAS_OBJECT}"),
    "model.*.units": ([Interval(int, 1, None)], "must be a positive integer"),
    "model.*.rate": ([Interval(float, 0, 1, "left")], "a dropout rate must be in [0, 1)"),
    "model.*.activation": ([str, None], "must be the name of a Keras activation or null"),
    "compile.optimizer": ([keras_object], f"an optimizer {KERAS_OBJECT}"),
    "compile.optimizer.learning_rate": (
        [None, dict, Interval(float, 0, None, "neither")],  # a dict: a learning-rate schedule
        "must be a positive number",
    ),
    "compile.loss": ([lambda v: isinstance(v, str) and v != ""], "must be the name of a Keras loss"),
    "compile.metrics": ([list_of(str)], "must be a list of metric names"),
    "fit.epochs": ([Interval(int, 1, None)], "must be a positive integer"),
    "fit.batch_size": ([Interval(int, 1, None)], "must be a positive integer"),
    "fit.shuffle": ([bool], "must be true or false"),
    "fit.callbacks": ([list], "must be a list of callbacks, each {'class_name': 'EarlyStopping', ...}"),
    "fit.callbacks.*": ([keras_object], f"a callback {KERAS_OBJECT}"),
    "seeds": ([_seed_list], "must be a positive count or a non-empty list of distinct non-negative integers"),
    "tags": ([list_of(str)], "must be a list of strings"),
}


def _satisfies(value, constraint):
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and (constraint is not int or not isinstance(value, bool))
    if isinstance(constraint, tuple):
        return value in constraint
    if isinstance(constraint, Interval):
        return value in constraint
    return constraint(value)


def _fields(node, parts, path=()):
    """(path, value) of every field `parts` (with `*` for each list item) reaches in `node`."""
    if not parts:
        yield ".".join(map(str, path)), node
        return
    part, rest = parts[0], parts[1:]
    if part == "*":
        for i, item in enumerate(node if isinstance(node, list) else []):
            yield from _fields(item, rest, (*path, i))
    elif isinstance(node, dict) and part in node:
        yield from _fields(node[part], rest, (*path, part))


def _in_order(spec):
    """(path, value, rule) of every field CONSTRAINTS names, in the table's order, except that
    one list item's fields go together, item by item (model.0.units before model.1.rate)."""
    keys = list(CONSTRAINTS)
    checks = []
    for k, field_path in enumerate(keys):
        parts = field_path.split(".")
        for path, value in _fields(spec, parts):
            if "*" in parts:  # ordered by the list's first `*` entry, then the item, then the table
                first = next(
                    j for j, key in enumerate(keys) if key.startswith(field_path.split("*")[0] + "*")
                )
                order = (first, int(path.split(".")[parts.index("*")]), k)
            else:
                order = (k, -1, k)
            checks.append((order, path, value, CONSTRAINTS[field_path]))
    return [check[1:] for check in sorted(checks, key=lambda check: check[0])]


def validate(spec, source=None):
    """Raise SpecError for the first problem in a filled-in spec dict: each field against
    CONSTRAINTS, then the checks across fields."""
    name = spec["name"]

    def fail(path, value, allowed):
        raise SpecError(name, path, f"got {value!r}; {allowed}", source)

    for path, value, (constraints, allowed) in _in_order(spec):
        if not any(_satisfies(value, c) for c in constraints):
            fail(path, value, allowed(value) if callable(allowed) else allowed)
    data = spec["data"]
    _check_cv(data, fail)
    if data["dataset"] == "csv":
        if not isinstance(data["path"], str) or not os.path.isfile(data["path"]):
            fail("data.path", data["path"], "a csv dataset needs the path of an existing CSV file")
        if not isinstance(data["target"], str):
            fail("data.target", data["target"], "a csv dataset needs the name of its target column")
    for i, callback in enumerate(spec["fit"]["callbacks"]):
        monitor = callback.get("monitor", "val_loss" if callback["class_name"] in MONITORS_VAL_LOSS else None)
        if isinstance(monitor, str) and monitor.startswith("val_") and data["validation_size"] is None:
            fail(
                f"fit.callbacks.{i}.monitor",
                monitor,
                "monitors a validation metric but data.validation_size is null; "
                "set a validation split or monitor a training metric such as 'loss'",
            )
    _check_output(spec, fail, source)


def _check_cv(data, fail):
    """data.cv: null, or {"folds": K >= 2, "repeats": R >= 1} (repeated stratified k-fold)."""
    cv = data["cv"]
    if cv is None:
        return
    shape = 'must be null or {"folds": K, "repeats": R} with integers K >= 2 and R >= 1'
    if not isinstance(cv, dict):
        fail("data.cv", cv, shape)
    for key in cv:
        if key not in ("folds", "repeats"):
            fail(f"data.cv.{key}", cv[key], f"unknown field; {shape}")
    if not is_int(cv.get("folds")) or cv["folds"] < 2:
        fail("data.cv.folds", cv.get("folds"), "must be an integer >= 2 (the number of folds)")
    if not is_int(cv.get("repeats", 1)) or cv.get("repeats", 1) < 1:
        fail(
            "data.cv.repeats", cv.get("repeats"), "must be an integer >= 1 (how often the folds are redrawn)"
        )
    if data["resplit"]:
        fail("data.resplit", True, "cannot be combined with data.cv (the folds already redraw the test part)")


def loss_kind(loss):
    """'sparse', 'binary' or 'dense' (one target column per class) for a Keras loss name."""
    key = loss.lower().replace("_", "")
    if key.startswith("sparse"):
        return "sparse"
    if key.startswith("binary"):
        return "binary"
    return "dense"


def _check_output(spec, fail, source):
    """The last layer with units must match the dataset's classes, and the loss the labels."""
    try:
        classes = datasets.n_classes(spec["data"])
    except SpecError:
        raise
    except HarnessError as exc:  # a CSV file that cannot be trained on
        raise SpecError(spec["name"], "data.path", str(exc), source) from None
    with_units = [(i, layer) for i, layer in enumerate(spec["model"]) if "units" in layer]
    if not with_units:
        return
    i, last = with_units[-1]
    kind = loss_kind(spec["compile"]["loss"])
    labels = spec["data"]["labels"]
    if kind == "binary":
        if classes != 2 or last["units"] != 1:
            fail(
                f"model.{i}.units",
                last["units"],
                f"{spec['compile']['loss']} needs two classes and one output unit; "
                f"{spec['data']['dataset']} has {classes} classes",
            )
        if labels != "integer":
            fail(
                "data.labels",
                labels,
                f"{spec['compile']['loss']} takes integer 0/1 labels; set data.labels to 'integer'",
            )
        return
    if last["units"] != classes:
        fail(
            f"model.{i}.units",
            last["units"],
            f"the output layer needs one unit per class: {spec['data']['dataset']} has {classes} classes",
        )
    if kind == "sparse" and labels != "integer":
        fail(
            "compile.loss",
            spec["compile"]["loss"],
            "takes integer labels but data.labels is 'onehot'; "
            "use 'categorical_crossentropy' or set data.labels to 'integer'",
        )
    if kind == "dense" and labels != "onehot":
        fail(
            "compile.loss",
            spec["compile"]["loss"],
            "compares one column per class, so it needs data.labels 'onehot'; "
            "with integer labels use 'sparse_categorical_crossentropy'",
        )
