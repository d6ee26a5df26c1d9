"""The vectorized trainer: a group of runs trained as one compiled JAX program.

A group's specs share the program's shapes (`shapes.key`: layer classes and sizes, the data arrays'
shapes, loss, metrics, optimizer class, batching). What else a run's spec says is a value the program
takes per run: its seed (initial weights, shuffles, dropout masks), learning rate and the optimizer
numbers of `shapes.OPTIMIZER_VALUES`, the factors of its L1/L2 regularizers (0 where it has none), its
Dropout rates (0 where it has no Dropout: the input passes through; under vmap the masks other runs
need are computed and its own discarded), EarlyStopping's settings (none: it never stops), its
number of epochs (it stops after its last), its training subset (the training arrays are padded
to the group's largest; each size trains on its own rows, batches and steps), the units of its
paddable hidden layers (`shapes.paddable`: the program has the group's widest, a run's units beyond
its own start and stay at 0); and the depth of its stack of like ReLU layers (`shapes.stacked`: the
program has the group's deepest; the layers a run lacks start as the identity and get no gradient).

Keras keeps Dropout rates, regularizer factors and optimizer numbers as Python constants. So where the
runs of a group differ in one, the program's model (the engine's own, never a spec's) has a layer or
regularizer of this module in its place, whose number is the run's value while the program is
traced; a number all runs share stays Keras' own constant. A call's runs share the call's values:
its training size, and whether any of them has each L1/L2 factor (a term none has is not summed).
A spec's model, its initial weights (the weights Keras builds for the seed, computed without building
a model per run) and its per-epoch numbers are what Keras gives for that spec alone.

Each run's variables are stacked on a leading axis; one run's whole training (epochs as a loop that
ends when the run stops, batches as `jax.lax.scan` through Keras' own stateless `train_step` and
`test_step`) is wrapped in `jax.vmap`; a program of SPLIT_WEIGHTS weights or more has its run axis
split over the host's devices (one core each). A group trains as calls of the compiled program on
equal slices of its runs (runs of one training size and epoch count share a call, and what is left of
them shares one with the size's other runs). Programs are kept for the process: a later group whose
structure a kept program covers (the doctor's verification) calls it again.

Needs Keras on JAX in this process (KERAS_BACKEND=jax before `harness.training.backend` is imported).
"""

import contextlib
import json
import math
import os
import random
import time

import numpy as np

from harness import data as datasets
from harness.spec import thaw
from harness.training import models, rows, shapes
from harness.training.backend import keras
from harness.training.health import column_name, is_relu, worst_dead_relu
from harness.training.shapes import Unsupported

STATS_ENV = "HARNESS_ENGINE_STATS"  # a file to append one JSON line per group to (what bench reads)
PARTS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
# A program of at least this many weights splits its runs over the host's devices, whatever the
# group's size: a split program's numbers differ from an unsplit one's in the last bits (XLA
# compiles the two differently), so a run's numbers must not depend on how many runs share it.
SPLIT_WEIGHTS = 1000
# floats a call may hold in weights and their copies (optimizer slots, gradients, best weights)
FLOAT_BUDGET = 60_000_000
COPIES = 6
# Calls whose weights and copies fit in the CPU's last-level cache (32 MB here) train faster per run:
# the suite's merged program (140k weights a run) trained in 10.6 s in calls of 10, 13.6-15.3 s in 20.
CACHE_FLOATS = 8_000_000
# A call's fixed cost (its loops' steps, the devices' hand-offs) is about a run of a network of this many
# weights: taken as one run of a smaller network, less of a larger one. Measured, a call cost 1.4 runs of
# the iris network (35 weights), 2.5 of a 2k-weight one and under 0.1 of the 140k-weight
# `overfit_baseline` (48 runs in calls of 4 and of 8, on 2 devices, took the same time).
CALL_WEIGHTS = 5_000
# ... and a split program's run costs this much more in a call of one run a device than of two or more
# (`overfit_baseline`: 48 runs in calls of 2 took 3.2 s, of 4 or 8 2.1-2.5 s).
ONE_A_DEVICE = 1.4
# Compiling a program costs about as much as training this many runs of it (5-15 s against 0.1-0.3 s a
# run of the shipped networks): a program compiled for other call sizes is reused below that, until
# the program has measured its own compile and runs (`_Program.compile_runs`).
COMPILE_RUNS = 20


def _check_backend():
    if keras.backend.backend() != "jax":
        raise Unsupported(f"Keras runs on {keras.backend.backend()} in this process, not JAX")


def _values(variables):
    return [np.asarray(v.value) for v in variables]


# -- numbers Keras keeps as Python constants, as per-run values -----------------------------------


class _Number:
    """An optimizer number as the run's traced value. `1 - x`, as Keras writes it, is the run's
    1 - x in double precision rounded to float32 (what the Python constant gives); `x != 0` is
    whether any run of the group has it nonzero (a run at 0 then computes the same numbers)."""

    def __init__(self, value, complement, nonzero):
        self.value, self.complement, self.nonzero = value, complement, nonzero

    def __jax_array__(self):
        return self.value

    def __rsub__(self, other):
        return self.complement if other == 1 else other - self.value

    def __ne__(self, other):
        if other == 0:
            return self.nonzero
        raise TypeError("a traced optimizer number compares with 0 only")

    def __eq__(self, other):
        return not self.__ne__(other)

    __hash__ = object.__hash__


class _Dropout(keras.layers.Layer):
    """keras.layers.Dropout at the run's rate: at rate 0 the input passes through."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.keep, self.on = 1.0, False  # the run's 1 - rate and rate > 0 while the program is traced
        self.seed_generator = keras.random.SeedGenerator(0)
        self.built = True

    def call(self, inputs, training=False):
        if not training:
            return inputs
        import jax

        seed = self.seed_generator.next()  # as keras.random.dropout draws it
        mask = jax.random.bernoulli(seed, p=self.keep, shape=inputs.shape)
        dropped = jax.lax.select(mask, inputs / self.keep, jax.numpy.zeros_like(inputs))
        return jax.numpy.where(self.on, dropped, inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


class _Skippable(keras.layers.Dense):
    """keras.layers.Dense in a deeper program than some run's spec: for that run it starts as the
    identity and gets no gradient, so no elementwise optimizer moves it (save weight decay)."""

    active = True  # whether the run has the layer, while the program is traced

    def call(self, inputs, training=None):
        import jax

        def held(variable):
            weight = keras.ops.convert_to_tensor(variable)
            return jax.numpy.where(self.active, weight, jax.lax.stop_gradient(weight))

        x = keras.ops.matmul(inputs, held(self.kernel))
        if self.bias is not None:
            x = keras.ops.add(x, held(self.bias))
        return self.activation(x) if self.activation is not None else x


class _Penalty(keras.regularizers.Regularizer):
    """keras.regularizers.L1L2 at the run's factors; a factor of 0 adds nothing (as Keras' `if self.l1`).
    A term no run of the call has (`summed` false, one value for the whole call) is not computed."""

    def __init__(self, uses_l1, uses_l2):
        self.uses = (uses_l1, uses_l2)
        self.l1 = self.l2 = 0.0  # the run's factors while the program is traced
        self.summed = (True, True)  # whether any run of the call has each factor nonzero, while traced

    def __call__(self, x):
        ops, total = keras.ops, None
        x, terms = ops.convert_to_tensor(x), (ops.absolute, ops.square)  # x: a variable's value
        for uses, factor, summed, term in zip(self.uses, (self.l1, self.l2), self.summed, terms):
            if uses:
                part = _penalty(term, x, ops.cast(factor, x.dtype), summed)
                total = part if total is None else total + part
        return total


def _penalty_term(term, x, factor):
    return keras.ops.where(factor != 0, factor * keras.ops.sum(term(x)), keras.ops.zeros((), x.dtype))


def _penalty(term, x, factor, summed):
    """`_penalty_term`, not summed where `summed` is false (no run of the call has the factor); its
    gradient is the plain term's, elementwise, so it still fuses into the optimizer's update."""
    import jax

    @jax.custom_jvp
    def gated(x, factor, summed):
        zero = keras.ops.zeros((), x.dtype)
        return jax.lax.cond(summed, lambda: _penalty_term(term, x, factor), lambda: zero)

    @gated.defjvp
    def _(primals, tangents):
        x, factor, summed = primals
        _, tangent = jax.jvp(lambda x: _penalty_term(term, x, factor), (x,), tangents[:1])
        return gated(x, factor, summed), tangent

    return gated(x, factor, summed)


# -- a group's specs: what each says, and what their program shares ------------------------------


class _Spec:
    """One spec of a group, resolved once: its layout, optimizer numbers, EarlyStopping (as the
    program's values) and initial weights."""

    def __init__(self, spec):
        self.spec, self.layout = spec, shapes.layout(spec)
        optimizer = models.optimizer(spec)
        names = shapes.OPTIMIZER_VALUES.get(spec.compile["optimizer"]["class_name"].lower(), ())
        self.numbers = {name: _plain(getattr(optimizer, name, None)) for name in names}
        self.learning_rate = float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        self.stopper = self.initial = self.values = None  # set once the program is known


def _plain(value):
    return None if value is None else float(np.asarray(keras.ops.convert_to_numpy(value)))


def _structure(specs, split, sizes):
    """What the group's program is made of, as JSON-able data: equal structures are one program.
    A Dropout rate, regularizer or optimizer number all specs share is a constant in it (Keras'
    own); one they differ in is traced (None, or listed in "traced")."""
    rates, configs = {}, {}
    for s in specs:
        for slot in s.layout.dropouts:
            rates[slot] = set()
        for slot in s.layout.penalties:
            configs[slot] = []
    for s in specs:
        for slot in rates:
            rates[slot].add(s.layout.dropouts.get(slot, (0.0,))[0])
        for slot in configs:
            configs[slot].append(s.layout.penalties.get(slot))
    penalties = []
    for slot, given in sorted(configs.items()):
        pairs = [shapes.factors(c) or (0.0, 0.0) for c in given]
        constant = given[0] if all(c == given[0] for c in given) else None
        penalties.append([*slot, constant, [any(p[0] for p in pairs), any(p[1] for p in pairs)]])
    first = specs[0].spec
    optimizer, traced = thaw(first.compile["optimizer"]), []
    optimizer.pop("learning_rate", None)  # a value: the run's is set into the optimizer's variable
    for name in specs[0].numbers:
        values = {s.numbers[name] for s in specs}
        if len(values) > 1:
            traced.append(name)
            optimizer[name] = max(v for v in values if v is not None)  # SGD builds momenta if any is nonzero
    stoppers = [cb for s in specs for cb in s.spec.fit["callbacks"] if cb["class_name"] == "EarlyStopping"]
    deepest = next(s for s in specs if not s.layout.skipped)
    skeleton, widths = [dict(layer) for layer in deepest.layout.skeleton], {}
    for s in specs:
        for i, units in s.layout.widths.items():
            widths[i] = max(widths.get(i, 0), units)
    skipped = sorted({i for s in specs for i in s.layout.skipped})
    if skipped:  # a skipped layer passes its input on: the stack has one width
        stack = range(deepest.layout.stack[0], sum(deepest.layout.stack))
        widths.update(dict.fromkeys(stack, max(widths[i] for i in stack)))
    for i, units in widths.items():
        skeleton[i]["units"] = units
    return {
        "skeleton": skeleton,
        "paddable": sorted(widths),
        "skipped": skipped,
        "dropouts": [[*slot, next(iter(r)) if len(r) == 1 else None] for slot, r in sorted(rates.items())],
        "penalties": penalties,
        "optimizer": optimizer,
        "traced": traced,
        "loss": first.compile["loss"],
        "metrics": list(first.compile["metrics"]),
        "batch": first.fit["batch_size"],
        "shuffle": first.fit["shuffle"],
        "epochs": max(s.spec.fit["epochs"] for s in specs),
        "stopping": bool(stoppers),
        "restoring": any(cb.get("restore_best_weights", False) for cb in stoppers),
        "sizes": list(sizes),
        "shapes": {p: _shape(getattr(split, p), p in PARTS[:2]) for p in PARTS},
        "n_features": split.n_features,
    }


def _shape(array, padded):
    """An array's shape and dtype as text; rows as None for the training arrays (padded to the
    largest training size)."""
    if array is None:
        return None
    return f"{(None if padded else array.shape[0], *array.shape[1:])} {array.dtype}"


class _Initial:
    """A spec's initial weights for any seed, as `models.build` makes them after
    `models.seed_everything(seed)`, without building a model per seed: building draws one number
    from Python's `random` per random initializer and per Dropout, in layer order, and the weights
    follow from those numbers. Checked bit for bit against one real build; a model whose weights
    this cannot follow is built per seed."""

    def __init__(self, spec, n_features, seed):
        self.spec, self.n_features = spec, n_features
        seed, model = models.seeded_build(spec, n_features, seed)
        self.count, self.params = 4 * len(model.layers) + 8, int(model.count_params())
        drawn = {value: k for k, value in enumerate(_draws(seed, self.count))}
        self.sources, self.followed = {}, True
        for i, layer in enumerate(model.layers):
            states = {id(g.state) for g in vars(layer).values() if isinstance(g, keras.random.SeedGenerator)}
            for kind, variables in (("t", layer.trainable_variables), ("n", layer.non_trainable_variables)):
                for j, variable in enumerate(variables):
                    self.sources[(i, kind, j)] = self._source(layer, variable, id(variable) in states, drawn)
        built = _by_layer(model)
        if self.followed:
            mine = self.values(seed)
            self.followed = mine.keys() == built.keys() and all(
                mine[k].dtype == built[k].dtype and np.array_equal(mine[k], built[k]) for k in built
            )
        del model

    def _source(self, layer, variable, is_state, drawn):
        value = np.asarray(variable.value)
        if is_state:  # a SeedGenerator's state: [its drawn seed, 0]
            k = drawn.get(int(value[0])) if value.shape == (2,) and value[1] == 0 else None
            return ("value", value) if k is None else ("seed", k, value.dtype)
        initializer = getattr(layer, f"{variable.name}_initializer", None)
        if not isinstance(initializer, keras.initializers.Initializer):
            self.followed = False
            return ("value", value)
        seed = getattr(initializer, "seed", None)
        if isinstance(seed, int) and seed in drawn:
            return ("random", initializer, drawn[seed], tuple(variable.shape), variable.dtype)
        if seed is not None and not isinstance(seed, int):  # seeded by a SeedGenerator
            self.followed = False
        return ("value", value)  # not random, or seeded by the spec: the same for every seed

    def values(self, seed):
        """{(layer index, "t" or "n", index in the layer's trainable / non-trainable variables): value}."""
        if not self.followed:
            models.seed_everything(seed)
            return _by_layer(models.build(self.spec, self.n_features))
        draws, out = _draws(seed, self.count), {}
        for key, source in self.sources.items():
            if source[0] == "value":
                out[key] = source[1]
            elif source[0] == "seed":
                out[key] = np.asarray([draws[source[1]], 0], dtype=source[2])
            else:
                _, initializer, k, shape, dtype = source
                saved, initializer.seed = initializer.seed, draws[k]
                try:
                    out[key] = np.asarray(initializer(shape, dtype=dtype))
                finally:
                    initializer.seed = saved
        return out


_initials = {}  # (spec hash, n_features): its _Initial, for every group of the spec in this process


def _initial(spec, n_features, seed):
    """The spec's `_Initial`, made once per process (the doctor trains a remedy's seeds in two looks)."""
    key = (spec.hash, n_features)
    if key not in _initials:
        if len(_initials) >= 256:  # a long notebook session: forget the oldest
            del _initials[next(iter(_initials))]
        _initials[key] = _Initial(spec, n_features, seed)
    return _initials[key]


def _draws(seed, count):
    """The first `count` numbers Keras draws for default seeds after `random.seed(seed)`."""
    generator = random.Random(seed)
    return [generator.randint(1, int(1e9)) for _ in range(count)]


def _by_layer(model):
    return {
        (i, kind, j): np.asarray(v.value)
        for i, layer in enumerate(model.layers)
        for kind, variables in (("t", layer.trainable_variables), ("n", layer.non_trainable_variables))
        for j, v in enumerate(variables)
    }


# -- the program ----------------------------------------------------------------------------------


class _Program:
    """A group structure's program: the engine's model of it, its layout, and its compiled functions."""

    def __init__(self, structure, example):
        self.structure = s = structure
        models.seed_everything(0)
        self.entries, self.dropouts, self.penalties, made = [], [], [], []  # traced ones, in values order
        self.skippable = []
        at = {}
        for position, k, rate in s["dropouts"]:
            at.setdefault(position, []).append((k, rate))
        regularized = {}
        for layer, argument, constant, uses in s["penalties"]:
            regularized.setdefault(layer, []).append((argument, constant, uses))

        def dropouts_after(position):
            for k, rate in at.get(position, []):
                layer = _Dropout() if rate is None else models.layer({"class_name": "Dropout", "rate": rate})
                self.dropouts += [layer] if rate is None else []
                made.append(layer)
                self.entries.append(("dropout", (position, k)))

        dropouts_after(-1)
        for i, config in enumerate(s["skeleton"]):
            config, traced = dict(config), []
            for argument, constant, uses in regularized.get(i, []):
                if constant is None:
                    traced.append((argument, _Penalty(*uses)))
                else:
                    config[argument] = constant
            if i in s["skipped"]:
                layer = _Skippable.from_config(models.keras_config(config)["config"])
                self.skippable.append(layer)
            else:
                layer = models.layer(config)
            for argument, penalty in traced:  # before the layer builds its weights
                setattr(layer, argument, penalty)
                self.penalties.append(penalty)
            made.append(layer)
            self.entries.append(("layer", i))
            dropouts_after(i)
        model = keras.Sequential([keras.Input(shape=(s["n_features"],)), *made], name="program")
        loss = keras.losses.get(s["loss"])
        masked = _masked(loss) if all(_row_wise(layer) for layer in made) else None
        self.masked = masked is not None  # a partial batch trains as a full one whose extra rows weigh 0
        model.compile(
            optimizer=keras.optimizers.get(models.keras_config(s["optimizer"])),
            loss=masked or loss,
            **{"weighted_metrics" if masked else "metrics": list(s["metrics"])},
        )
        model._symbolic_build(data_batch=example)
        opt = model.optimizer
        if getattr(opt, "use_ema", False) or getattr(opt, "gradient_accumulation_steps", None):
            raise Unsupported("optimizer with use_ema or gradient_accumulation_steps")
        lr_variable = getattr(opt, "_learning_rate", None)
        ids = [id(v) for v in opt.variables]
        if not isinstance(lr_variable, keras.Variable) or id(lr_variable) not in ids:
            raise Unsupported("a learning-rate schedule")
        self.model, self.lr_index = model, ids.index(id(lr_variable))
        self.optimizer_values = _values(opt.variables)
        self.metrics_values = _values(model.metrics_variables)
        self.log_names = list(model.get_metrics_result())
        self.val_names = [f"val_{n}" for n in self.log_names] if s["shapes"]["x_val"] else []
        self.keys = {"t": [], "n": []}  # per program variable: (entry, kind, index in the layer's)
        for e, layer in enumerate(model.layers):
            self.keys["t"] += [(e, "t", j) for j in range(len(layer.trainable_variables))]
            self.keys["n"] += [(e, "n", j) for j in range(len(layer.non_trainable_variables))]
        for kind in ("trainable", "non_trainable"):
            in_layers = [id(v) for layer in model.layers for v in getattr(layer, f"{kind}_variables")]
            if in_layers != [id(v) for v in getattr(model, f"{kind}_variables")]:
                raise Unsupported("a model whose variables are not its layers' in order")
        self.dummies = [np.zeros(v.shape, v.dtype) for v in model.non_trainable_variables]
        self.dtypes = [v.dtype for v in model.trainable_variables]
        entry_of = {("layer", i): e for e, (kind, i) in enumerate(self.entries) if kind == "layer"}
        trainable_index = {id(v): i for i, v in enumerate(model.trainable_variables)}
        decays = "weight_decay" in s["traced"] or s["optimizer"].get("weight_decay")
        self.kept = {  # weight decay moves even a layer without gradient: its variables -> its layer's
            trainable_index[id(v)]: k
            for k, position in enumerate(s["skipped"] if decays else ())
            for v in model.layers[entry_of[("layer", position)]].trainable_variables
        }
        self.variable_shapes = {
            kind: [tuple(v.shape) for v in getattr(model, f"{name}_variables")]
            for kind, name in (("t", "trainable"), ("n", "non_trainable"))
        }
        trainable = {id(v): i for i, v in enumerate(model.trainable_variables)}
        non_trainable = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
        self.layers = [  # health: per layer with weights, the trainable / non-trainable variables it owns
            (
                e,
                [
                    ("t", trainable[id(w)]) if id(w) in trainable else ("n", non_trainable[id(w)])
                    for w in layer.weights
                ],
            )
            for e, layer in enumerate(model.layers)
            if layer.weights
        ]
        self.relu_layers = [e for e, layer in enumerate(model.layers) if is_relu(layer)]
        self.regularized = any(  # else its penalty is 0 without a pass to compute it
            type(layer).__name__ == "ActivityRegularization"
            or any(getattr(layer, argument, None) is not None for argument in shapes.PENALTIES)
            for layer in model.layers
        )
        self.functions, self.compiled = {}, {}
        self.compile_seconds = self.slot_seconds = None  # measured: a compile, and a run's place in a call

    def compile_runs(self):
        """How many runs' places in a call a compile of this program costs, as measured on it."""
        if not (self.compile_seconds and self.slot_seconds):
            return COMPILE_RUNS
        return self.compile_seconds / self.slot_seconds

    def spec_index(self, spec, entry):
        """The index in `spec`'s model of the program's layer `entry` (None: the spec has no such Dropout)."""
        kind, what = self.entries[entry]
        return (
            spec.layout.indices[what]
            if kind == "layer"
            else spec.layout.dropouts.get(tuple(what), (0, None))[1]
        )

    def column(self, spec, entry):
        return column_name(self.spec_index(spec, entry), self.model.layers[entry])

    def stopper(self, spec):
        """`spec`'s EarlyStopping as the program's per-run values, resolved as Keras resolves it
        (monitor direction, min_delta's sign); a spec without one never stops."""
        never = {
            "monitor": -1,
            "greater": False,
            "min_delta": 0.0,
            "patience": 0,
            "baseline": math.nan,
            "has_baseline": False,
            "restore": False,
            "start": 0,
        }
        found = [c for c in models.callbacks(spec) if isinstance(c, keras.callbacks.EarlyStopping)]
        if len(found) > 1:
            raise Unsupported("more than one EarlyStopping")
        if not found:
            return never
        cb = found[0]
        cb.set_model(self.model)
        try:
            cb._set_monitor_op()
        except ValueError as exc:
            raise Unsupported(str(exc).splitlines()[0]) from None
        names = self.log_names + self.val_names
        return {
            "monitor": names.index(cb.monitor) if cb.monitor in names else -1,  # else Keras never stops
            "greater": cb.monitor_op is keras.ops.greater,
            "min_delta": float(cb.min_delta),  # already negative for "less", as Keras keeps it
            "patience": int(cb.patience),
            "baseline": math.nan if cb.baseline is None else float(cb.baseline),
            "has_baseline": cb.baseline is not None,
            "restore": bool(cb.restore_best_weights),
            "start": int(cb.start_from_epoch),
        }

    def values(self, spec):
        """The per-run values of `spec`'s runs (numpy), as the program's function takes them."""
        s = self.structure
        dropped = [
            spec.layout.dropouts.get((p, k), (0.0,))[0] for p, k, rate in s["dropouts"] if rate is None
        ]
        pairs = [
            shapes.factors(spec.layout.penalties.get((layer, argument))) or (0.0, 0.0)
            for layer, argument, constant, _ in s["penalties"]
            if constant is None
        ]
        numbers = {}
        for name in s["traced"]:
            value = spec.numbers[name] or 0.0  # no weight decay is a decay of 0
            numbers.update({name: np.float32(value), f"{name}~": np.float32(1.0 - value)})
        out = {
            "keep": np.asarray([1.0 - r for r in dropped], np.float32),
            "on": np.asarray([r > 0 for r in dropped], bool),
            "l1": np.asarray([p[0] for p in pairs], np.float32),
            "l2": np.asarray([p[1] for p in pairs], np.float32),
            "opt": numbers,
            "epochs": np.int32(spec.spec.fit["epochs"]),
            "padded": np.asarray([self._padded(spec, e) for e in self.relu_layers], np.float32),
            "active": np.asarray([p not in spec.layout.skipped for p in s["skipped"]], bool),
        }
        if s["stopping"]:
            types = {"monitor": np.int32, "patience": np.int32, "start": np.int32, "greater": bool}
            types.update(has_baseline=bool, restore=bool)
            out["es"] = {k: types.get(k, np.float32)(v) for k, v in spec.stopper.items()}
        return out

    def _padded(self, spec, entry):
        """How many units the program's layer `entry` has beyond `spec`'s (a narrower Dense)."""
        kind, i = self.entries[entry]
        if kind != "layer" or i not in spec.layout.widths:
            return 0
        return self.structure["skeleton"][i]["units"] - spec.layout.widths[i]

    def initial(self, spec, seed):
        """A run's initial (trainable, non-trainable) values in the program's variable order."""
        values = spec.initial.values(seed)
        out = {}
        for kind in ("t", "n"):
            out[kind] = []
            for i, (e, _, j) in enumerate(self.keys[kind]):
                value = values.get((self.spec_index(spec, e), kind, j))
                shape = self.variable_shapes[kind][i]
                if value is None and kind == "t" and self.entries[e][1] in spec.layout.skipped:
                    value = (np.eye(*shape) if j == 0 else np.zeros(shape)).astype(self.dtypes[i])  # identity
                if value is None and kind == "t":
                    raise Unsupported(f"{spec.spec.name}: its model does not map onto its group's program")
                if value is not None and value.shape != shape:  # a narrower layer's: zeros beyond its units
                    value = np.pad(value, [(0, w - h) for w, h in zip(shape, value.shape)])
                out[kind].append(self.dummies[i] if value is None else value)
        return out["t"], out["n"]

    def _bind(self, values, call=None):
        """Set the run's values (and which penalties any run of its call has) into the program's layers
        and optimizer while tracing (None: unset)."""
        for j, layer in enumerate(self.dropouts):
            layer.keep, layer.on = (values["keep"][j], values["on"][j]) if values else (1.0, False)
        for j, penalty in enumerate(self.penalties):
            penalty.l1, penalty.l2 = (values["l1"][j], values["l2"][j]) if values else (0.0, 0.0)
            penalty.summed = (call["l1"][j], call["l2"][j]) if values else (True, True)
        for j, layer in enumerate(self.skippable):
            layer.active = values["active"][j] if values else True
        optimizer = self.model.optimizer
        for name in self.structure["traced"]:
            plain = self.structure["optimizer"][name]
            number = _Number(values["opt"][name], values["opt"][f"{name}~"], plain != 0) if values else plain
            setattr(optimizer, name, number)

    def function(self, devices, axes):
        """The jitted program for `devices` devices and data parts shared (None) or per run (0)."""
        if (devices, axes) not in self.functions:
            import jax

            mapped = jax.vmap(self._one_run, in_axes=(0, 0, 0, 0, 0, None, axes))
            if devices > 1:
                from jax.sharding import Mesh
                from jax.sharding import PartitionSpec as P

                mesh = Mesh(np.array(jax.devices()[:devices]), ("runs",))
                runs = P("runs")
                specs = (runs, runs, runs, runs, runs, P(), tuple(runs if a == 0 else P() for a in axes))
                mapped = jax.shard_map(mapped, mesh=mesh, in_specs=specs, out_specs=runs, check_vma=False)
            self.functions[(devices, axes)] = jax.jit(mapped)
        return self.functions[(devices, axes)]

    def _one_run(self, trainable, non_trainable, opt, seed, values, call, data):
        self._bind(values, call)
        try:
            return self._training(trainable, non_trainable, opt, seed, values, call["size"], data)
        finally:
            self._bind(None)

    @staticmethod
    def call_values(size, run_values):
        """A call's values, the same for all its runs: its training size, and per traced L1/L2 factor
        whether any of its runs (`run_values`) has it nonzero (else the call sums none of that term)."""
        has = {k: np.any([v[k] != 0 for v in run_values], axis=0) for k in ("l1", "l2")}
        return {"size": np.int32(size), **has}

    def _training(self, trainable, non_trainable, opt, seed, values, size, data):
        """One run's whole training, evaluation and health, traced."""
        import jax
        import jax.numpy as jnp

        model, s = self.model, self.structure
        batch, shuffle, epochs, restoring = s["batch"], s["shuffle"], s["epochs"], s["restoring"]
        metrics0 = [jnp.asarray(v) for v in self.metrics_values]
        layers, log_names = self.layers, self.log_names
        x, y, xv, yv, xt, yt = data
        key = jax.random.PRNGKey(seed)

        def sumsq(trainable, non_trainable, owned, other=None):
            total = 0.0
            for kind, i in owned:
                w = (trainable if kind == "t" else non_trainable)[i].astype(jnp.float32)
                if other is not None:
                    w = w - (other[0] if kind == "t" else other[1])[i].astype(jnp.float32)
                total = total + jnp.sum(w * w)
            return total

        def health(trainable, non_trainable, before):
            norms, ratios = [], []
            for _, owned in layers:
                norm = jnp.sqrt(sumsq(trainable, non_trainable, owned))
                norm0 = jnp.sqrt(sumsq(before[0], before[1], owned))
                delta = jnp.sqrt(sumsq(trainable, non_trainable, owned, before))
                norms.append(norm)
                ratios.append(delta / jnp.maximum(norm0, 1e-12))
            return jnp.stack(norms) if norms else jnp.zeros(0), jnp.stack(ratios) if ratios else jnp.zeros(0)

        def evaluate(trainable, non_trainable, x, y):
            logs, _ = model.test_step((trainable, non_trainable, metrics0), (x, y))
            return jnp.stack([logs[n] for n in log_names])

        sizes, largest = s["sizes"], s["sizes"][-1]
        own = jnp.asarray(sizes, jnp.int32)[size] if len(sizes) > 1 else largest  # the run's own rows
        rests = sorted({n % batch for n in sizes})
        if len(sizes) == 1:  # steps and partial batch known when tracing
            full, rest = divmod(largest, batch)
            rest = rests.index(rest)
        else:  # the run's size is a value: its number of full batches, and which partial batch it has
            full = jnp.asarray([n // batch for n in sizes], jnp.int32)[size]
            rest = jnp.asarray([rests.index(n % batch) for n in sizes], jnp.int32)[size]

        def order(epoch):
            """The run's shuffle of its own rows (`jax.random.permutation` of its size), then the padding."""
            k = jax.random.fold_in(key, epoch)
            if _one_sort(largest):
                return _shuffled(k, own, largest)
            branches = [
                lambda k, n=n: jnp.concatenate([jax.random.permutation(k, n), jnp.arange(n, largest)])
                for n in sizes
            ]
            return jax.lax.switch(size, branches, k)

        def train_epoch(trainable, non_trainable, opt, epoch):
            """An epoch on the run's own rows: its full batches, then its partial batch."""
            xe, ye = x, y
            if shuffle:
                rows = order(epoch)
                xe, ye = x[rows], y[rows]
            if self.masked:  # rows of zeros after the last, for a partial batch to read as a full one
                xe, ye = (jnp.pad(a, [(0, -largest % batch)] + [(0, 0)] * (a.ndim - 1)) for a in (xe, ye))

            def train_step(state, start, length, kept=None):
                xb = jax.lax.dynamic_slice_in_dim(xe, start, length)
                yb = jax.lax.dynamic_slice_in_dim(ye, start, length)
                if kept is None:
                    logs, new = model.train_step(state, (xb, yb))
                else:  # the batch's first `kept` rows are the run's; the others weigh 0
                    with self._counted(kept):
                        weights = (jnp.arange(length) < kept).astype("float32")
                        logs, new = model.train_step(state, (xb, yb, weights))
                return self._keep_skipped(values, state, new), jnp.stack([logs[n] for n in log_names])

            state = (trainable, non_trainable, opt, metrics0), jnp.zeros(len(log_names), jnp.float32)
            if self.masked:  # one traced step for all batches

                def step(i, carry):
                    return train_step(carry[0], i * batch, batch, jnp.minimum(batch, own - i * batch))

                state, logs = jax.lax.fori_loop(0, (own + batch - 1) // batch, step, state)
                return state[:3], logs
            state = jax.lax.fori_loop(0, full, lambda i, carry: train_step(carry[0], i * batch, batch), state)

            def partial(length):
                return lambda carry: train_step(carry[0], full * batch, length) if length else carry

            state, logs = jax.lax.switch(rest, [partial(r) for r in rests], state)
            return state[:3], logs

        def select(flag, new, old):
            return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)

        def early_stop(es, logs, epoch, weights):
            v = values["es"]
            current = logs[jnp.maximum(v["monitor"], 0)]

            def improves(value, reference):
                shifted = value - v["min_delta"]
                return jnp.where(v["greater"], shifted > reference, shifted < reference)

            considered = (v["monitor"] >= 0) & (epoch >= v["start"])
            es2 = dict(es)
            if restoring:
                first = v["restore"] & ~es["has_weights"]
                es2["weights"] = select(first, weights, es["weights"])
                es2["kept"] = jnp.where(first, epoch, es["kept"])
                es2["has_weights"] = es["has_weights"] | v["restore"]
            es2["wait"] = es["wait"] + 1
            improved = ~es["has_best"] | improves(current, es["best"])
            resets = improved & (~v["has_baseline"] | improves(current, v["baseline"]))
            es2["best"] = jnp.where(improved, current, es["best"])
            es2["has_best"] = es["has_best"] | improved
            if restoring:
                es2["weights"] = select(improved & v["restore"], weights, es2["weights"])
                es2["kept"] = jnp.where(improved & v["restore"], epoch, es2["kept"])
            es2["wait"] = jnp.where(resets, 0, es2["wait"])
            stop = ~improved & (es2["wait"] >= v["patience"]) & (epoch > 0)
            return select(considered, es2, es), considered & stop

        es = {"wait": jnp.int32(0), "best": jnp.float32(jnp.nan), "has_best": jnp.bool_(False)}
        if restoring:
            es.update(has_weights=jnp.bool_(False), kept=jnp.int32(0), weights=(trainable, non_trainable))
        n_logs = len(log_names) + len(self.val_names)
        out = {
            "logs": jnp.zeros((epochs, n_logs), jnp.float32),
            "norms": jnp.zeros((epochs, len(layers)), jnp.float32),
            "ratios": jnp.zeros((epochs, len(layers)), jnp.float32),
            "ran": jnp.zeros(epochs, bool),
        }

        def body(carry):
            epoch, trainable, non_trainable, opt, es, _, diverged, out = carry
            (t2, n2, o2), train_logs = train_epoch(trainable, non_trainable, opt, epoch)
            logs = train_logs
            if self.val_names:
                logs = jnp.concatenate([train_logs, evaluate(t2, n2, xv, yv)])
            norms, ratios = health(t2, n2, (trainable, non_trainable))
            loss = train_logs[log_names.index("loss")]
            nonfinite = ~(jnp.all(jnp.isfinite(norms)) & jnp.isfinite(loss))
            stop = nonfinite
            if s["stopping"]:
                es, stop_es = early_stop(es, logs, epoch, (t2, n2))
                stop = stop | stop_es
            out = {
                "logs": out["logs"].at[epoch].set(logs),
                "norms": out["norms"].at[epoch].set(norms),
                "ratios": out["ratios"].at[epoch].set(ratios),
                "ran": out["ran"].at[epoch].set(True),
            }
            return epoch + 1, t2, n2, o2, es, ~stop, diverged | nonfinite, out

        def running(carry):
            return carry[5] & (carry[0] < values["epochs"])

        carry = (jnp.int32(0), trainable, non_trainable, opt, es, jnp.bool_(True), jnp.bool_(False), out)
        ran, trainable, non_trainable, _, es, _, diverged, out = jax.lax.while_loop(running, body, carry)
        kept = ran - 1  # the epoch whose weights the run ends with
        if restoring:
            trainable, non_trainable = select(es["has_weights"], es["weights"], (trainable, non_trainable))
            kept = jnp.where(es["has_weights"], es["kept"], kept)

        def on_training_rows(n):
            return lambda t, n_: (
                evaluate(t, n_, x[:n], y[:n]),
                self._dead_relu(t, n_, x[:n], values["padded"]),
            )

        train_scores, dead = jax.lax.switch(
            size, [on_training_rows(n) for n in sizes], trainable, non_trainable
        )
        scores = [train_scores]
        if self.val_names:  # as evaluated at the end of the epoch whose weights it kept
            scores.append(out["logs"][kept, len(log_names) :])
        scores.append(evaluate(trainable, non_trainable, xt, yt))
        penalty = jnp.float32(0.0)
        if self.regularized:
            _, _, losses = model.stateless_call(
                trainable, non_trainable, x[:1], training=False, return_losses=True
            )
            penalty = sum(losses) if losses else penalty
        return {**out, "diverged": diverged, "scores": jnp.stack(scores), "penalty": penalty, "dead": dead}

    @contextlib.contextmanager
    def _counted(self, rows):
        """While a step is traced, the epoch's mean loss counts its batch as `rows` rows (Keras counts
        the batch's length)."""
        tracker = self.model._loss_tracker
        plain = tracker.update_state
        tracker.update_state = lambda values, sample_weight=None: plain(values, sample_weight=rows)
        try:
            yield
        finally:
            del tracker.update_state

    def _keep_skipped(self, values, old, new):
        """The state `new` after a step, but the layers the run skips as they were (the identity)."""
        if not self.kept:
            return new
        import jax.numpy as jnp

        trainable = list(new[0])
        for i, k in self.kept.items():
            trainable[i] = jnp.where(values["active"][k], trainable[i], old[0][i])
        return (type(new[0])(trainable), *new[1:])

    def _dead_relu(self, trainable, non_trainable, x, padded):
        """Per ReLU layer: the fraction of its units that output 0 for every input (inputs `x`), not
        counting the `padded` units the run does not have (they always output 0)."""
        import jax.numpy as jnp

        model = self.model
        mapping = list(zip(model.trainable_variables, trainable)) + list(
            zip(model.non_trainable_variables, non_trainable)
        )
        fractions, relu = [], set(self.relu_layers)
        with keras.StatelessScope(state_mapping=mapping):
            h = x
            for i, layer in enumerate(model.layers):
                h = layer(h, training=False)
                if i in relu:
                    out = h.reshape(x.shape[0], -1)
                    dead = jnp.sum(jnp.all(out <= 0, axis=0).astype(jnp.float32))
                    pad = padded[len(fractions)]
                    fractions.append((dead - pad) / (out.shape[1] - pad))
        return jnp.stack(fractions) if fractions else jnp.zeros(0)


_programs = []  # the process's most recent PROGRAMS_KEPT programs, the latest last
PROGRAMS_KEPT = 16
SHAPES = ("loss", "metrics", "batch", "shuffle", "shapes", "n_features")  # and the layers (`_wider`)


def _row_wise(layer):
    """Whether `layer` maps each row of a batch on its own (no batch statistics, no activity
    penalty), so that rows added to a batch change nothing of the others'. Dropout too: JAX's
    partitionable threefry draws a row's numbers the same in a longer batch."""
    import jax

    random = (keras.layers.Dropout, _Dropout)
    if isinstance(layer, random) and not jax.config.jax_threefry_partitionable:
        return False
    row_wise = (*random, keras.layers.Dense, keras.layers.Activation, keras.layers.ReLU)
    return isinstance(layer, row_wise) and getattr(layer, "activity_regularizer", None) is None


def _one_sort(n):
    """True when `jax.random.permutation` of up to `n` rows is one stable sort by random keys and
    a shorter draw is the first elements of a longer one (JAX's partitionable Threefry)."""
    import jax

    return jax.config.jax_threefry_partitionable and n <= 2**10


def _shuffled(key, own, largest):
    """`jax.random.permutation(key, own)` followed by `own..largest-1`, for a traced `own`: the
    rows past `own` sort last under the largest key, in their order (the sort is stable)."""
    import jax
    import jax.numpy as jnp

    bits = jax.random.bits(jax.random.split(key)[1], (largest,), jnp.uint32)
    bits = jnp.where(jnp.arange(largest) < own, bits, jnp.uint32(np.iinfo(np.uint32).max))
    return jax.lax.sort_key_val(bits, jnp.arange(largest))[1]


def _masked(loss):
    """`loss` as the mean (or sum) over the rows whose sample weight is 1, or None if it has no such form."""
    if not isinstance(loss, keras.losses.Loss):  # a function: wrapped as Keras' compile wraps it
        from keras.src.losses.losses import LossFunctionWrapper

        name = getattr(loss, "__name__", None)
        return LossFunctionWrapper(loss, name=name, reduction="mean_with_sample_weight")
    if loss.reduction == "sum_over_batch_size":
        loss.reduction = "mean_with_sample_weight"
    return loss if loss.reduction in ("mean_with_sample_weight", "sum") else None


def _program(structure, example):
    """A program of the process that trains groups of `structure` as their own program would (the
    latest such), else a new one."""
    program = next((p for p in reversed(_programs) if _covers(p.structure, structure)), None)
    program = program or _Program(structure, example)
    _programs[:] = [p for p in _programs if p is not program][-(PROGRAMS_KEPT - 1) :] + [program]
    return program


def _covers(have, wanted):
    """Whether a program of structure `have` trains a group of structure `wanted`: the same shapes,
    its sizes and epochs, early stopping if the group has it, and a value wherever a number of the
    group differs from the program's constant (a Dropout or penalty the group lacks: a traced one,
    which its runs set to 0)."""
    if any(have[k] != wanted[k] for k in SHAPES) or wanted["epochs"] > have["epochs"]:
        return False
    if have["paddable"] != wanted["paddable"] or not _wider(have, wanted):
        return False
    if not set(wanted["skipped"]) <= set(have["skipped"]):
        return False
    if not set(wanted["sizes"]) <= set(have["sizes"]):
        return False
    if (wanted["stopping"] and not have["stopping"]) or (wanted["restoring"] and not have["restoring"]):
        return False
    rates = {(p, k): rate for p, k, rate in wanted["dropouts"]}
    for p, k, rate in have["dropouts"]:
        if rate is not None and rate != rates.pop((p, k), 0.0):
            return False
        rates.pop((p, k), None)
    if rates:  # a Dropout the program does not have
        return False
    penalties = {
        (layer, argument): (constant, uses) for layer, argument, constant, uses in wanted["penalties"]
    }
    for layer, argument, constant, uses in have["penalties"]:
        theirs = penalties.pop((layer, argument), (None, [False, False]))
        if constant is not None:
            if theirs[0] != constant:
                return False
        elif not all(mine or not used for mine, used in zip(uses, theirs[1])):
            return False
    if penalties:  # a regularizer the program does not have
        return False
    traced = set(have["traced"])
    if not set(wanted["traced"]) <= traced:
        return False
    names = set(have["optimizer"]) | set(wanted["optimizer"])
    return all(have["optimizer"].get(n) == wanted["optimizer"].get(n) for n in names - traced)


# -- training a group -----------------------------------------------------------------------------


def train(group):
    """Train `group` as one program; yield each run's (runs.csv row, history rows) when it ends.

    Its specs must share the program's shapes (`groups.form` forms groups so). Raises
    Unsupported, naming the cause, when the program cannot be built, traced or run (a layer
    that fails under vmap, a schedule, ...): those runs then train on the per-run trainer."""
    _check_backend()
    try:
        made = _train(group.runs, group.expected)
    except Unsupported:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise Unsupported(f"{type(exc).__name__}: {first}"[:300]) from exc
    yield from made


def _train(runs, expected=()):
    import jax

    if len({shapes.key(spec, fold) for spec, _, fold in runs}) > 1:
        raise Unsupported("the runs do not share one program's shapes (harness.training.groups forms groups)")
    start = time.perf_counter()
    splits = [datasets.load_split(spec.data, seed, fold) for spec, seed, fold in runs]
    specs = {}
    for spec, _, _ in runs:
        if (spec.name, spec.hash) not in specs:
            specs[(spec.name, spec.hash)] = _Spec(spec)
    of = [specs[(spec.name, spec.hash)] for spec, _, _ in runs]
    later = [_Spec(spec) for spec in expected]  # not trained here: the program takes their runs too
    theirs = [datasets.load_split(s.data, s.seeds[0], runs[0][2]) for s in expected]
    sizes = sorted({len(split.x_train) for split in splits + theirs})
    depth = max((s.layout.stack or (0, 0))[1] for s in [*specs.values(), *later])
    for s in [*specs.values(), *later]:  # in the deepest spec's positions
        s.layout = shapes.placed(s.layout, depth)
    structure = _structure(list(specs.values()) + later, splits[0], sizes)
    batch = structure["batch"]
    program = _program(structure, (splits[0].x_train[:batch], splits[0].y_train[:batch]))
    for s in specs.values():
        s.stopper = program.stopper(s.spec)
        s.initial = _initial(s.spec, splits[0].n_features, runs[of.index(s)][1])
        s.values = program.values(s)
    sizes = program.structure["sizes"]  # the program's (a group's own, or more)
    size_of = [sizes.index(len(split.x_train)) for split in splits]
    shared = _shared(splits + theirs)  # an array the expected runs have of their own is per run
    weights = int(program.model.count_params())
    devices = jax.local_device_count() if weights >= SPLIT_WEIGHTS else 1
    per_run = COPIES * max(weights, 1)
    limit = max(1, min(shapes.MAX_RUNS, FLOAT_BUDGET // per_run, max(devices, CACHE_FLOATS // per_run)))
    if limit < devices:
        devices = 1
    partitions = {}  # runs of one training size and epoch count (and whether they may stop) share calls
    for i, (spec, _, _) in enumerate(runs):
        partitions.setdefault((size_of[i], spec.fit["epochs"], of[i].stopper["monitor"] >= 0), []).append(i)
    # a compiled variant that takes per run what this group could pass once takes it stacked
    fits = [
        k
        for k in program.compiled
        if k[1] == devices and all(a == 0 or b is None for a, b in zip(k[2], shared))
    ]
    done = [k[0] for k in fits]
    counts = {k: len(members) for k, members in partitions.items()}
    for s, split in zip(later, theirs):  # their groups will call this program too: a size for them all
        k = (sizes.index(len(split.x_train)), s.spec.fit["epochs"], program.stopper(s.spec)["monitor"] >= 0)
        counts[k] = counts.get(k, 0) + len(s.spec.seeds)
    work = [math.ceil(sizes[k[0]] / batch) * k[1] for k in counts]  # a run's steps
    call_runs = min(1, CALL_WEIGHTS / weights)
    per_call = _run_axis(list(counts.values()), devices, limit, done, program.compile_runs(), call_runs, work)
    shared = next((k[2] for k in fits if k[0] == per_call), shared)
    calls = _calls(partitions, per_call)

    def arguments(members, size):
        """The program's inputs for the runs `members` (their initial weights made now)."""
        initial = [program.initial(of[i], runs[i][1]) for i in members]
        optimizer = [list(program.optimizer_values) for _ in members]
        for i, values in zip(members, optimizer):
            values[program.lr_index] = np.asarray(of[i].learning_rate, values[program.lr_index].dtype)
        per_run = (
            [t for t, _ in initial],
            [n for _, n in initial],
            optimizer,
            [np.uint32(runs[i][1]) for i in members],
            [of[i].values for i in members],
        )
        stacked = [jax.tree_util.tree_map(lambda *a: np.stack(a), *part) for part in per_run]
        data = []
        for name, axis in zip(PARTS, shared):
            arrays = [getattr(splits[i], name) for i in members]
            arrays = [
                _pad(a, sizes[-1]) if a is not None and name in ("x_train", "y_train") else a for a in arrays
            ]
            data.append(arrays[0] if axis is None else np.stack(arrays))
        return (*stacked, program.call_values(size, [of[i].values for i in members]), tuple(data))

    stats = {"trace_s": 0.0, "compile_s": 0.0, "compiled": False, "cache_hit": False}
    first = arguments(*calls[0])
    stats["prepare_s"] = time.perf_counter() - start
    compiled = program.compiled.get((per_call, devices, shared))
    if compiled is None:
        t0 = time.perf_counter()
        lowered = program.function(devices, shared).lower(*first)
        t1 = time.perf_counter()
        hits = _cache_hits()
        compiled = lowered.compile()
        stats.update(trace_s=t1 - t0, compile_s=time.perf_counter() - t1, compiled=True)
        stats["cache_hit"] = _cache_hits() > hits
        program.compiled[(per_call, devices, shared)] = compiled
        if not stats["cache_hit"]:  # a compile read from the cache says nothing of one for other sizes
            program.compile_seconds = stats["trace_s"] + stats["compile_s"]
    t0 = time.perf_counter()
    outs, pending = [], None
    for c, call in enumerate(calls):
        out = compiled(*(first if c == 0 else arguments(*call)))  # runs while the next call's inputs are made
        if pending is not None:
            outs.append(jax.tree_util.tree_map(np.asarray, pending))
        pending = out
    outs.append(jax.tree_util.tree_map(np.asarray, pending))
    seconds = time.perf_counter() - t0
    program.slot_seconds = seconds / (len(calls) * per_call)
    where = {}
    for c, (members, _) in enumerate(calls):
        for position, i in enumerate(members):
            where.setdefault(i, (c, position))
    made = []
    for i, run in enumerate(runs):
        c, position = where[i]
        out = jax.tree_util.tree_map(lambda a, p=position: a[p], outs[c])
        made.append(_rows(program, of[i], run, out, seconds / len(runs), of[i].initial.params, len(runs)))
    _note(runs, stats, per_call, devices, len(calls), seconds)
    keras.backend.clear_session(free_memory=False)  # its full gc.collect cost 0.07-0.2 s a group
    return made


def _calls(partitions, per_call):
    """[(runs, training size)] per call: each partition {(size, epochs, may stop): runs} in calls of
    `per_call`, and what is left of a size's partitions in calls together (a run's numbers do not
    depend on its call's other runs, and a call of one size costs about what its longest run does),
    the last call padded with its last run."""
    calls, leftover = [], {}
    for (size, _, _), members in sorted(partitions.items()):
        whole = len(members) - len(members) % per_call
        calls += [(members[i : i + per_call], size) for i in range(0, whole, per_call)]
        leftover.setdefault(size, []).extend(members[whole:])
    for size, members in sorted(leftover.items()):
        for i in range(0, len(members), per_call):
            called = members[i : i + per_call]
            calls.append((called + [called[-1]] * (per_call - len(called)), size))
    return calls


def _run_axis(counts, devices, limit, compiled=(), compile_runs=COMPILE_RUNS, call_runs=1, work=None):
    """Runs per call for partitions of `counts` runs (a run of each `work` steps): a multiple of
    `devices` up to `limit` with the least cost of padded runs and calls (a call costs `call_runs`
    runs), or one already compiled whose extra runs cost less than a compile (`compile_runs` runs)."""
    work = work or [1] * len(counts)
    mean = sum(c * w for c, w in zip(counts, work)) / sum(counts)

    def cost(r):
        alone = ONE_A_DEVICE if r == devices > 1 else 1
        return sum(math.ceil(c / r) * (r * alone + call_runs) * w for c, w in zip(counts, work)) / mean

    top = min(math.ceil(max(counts) / devices), max(1, limit // devices)) * devices
    best = min(range(devices, top + 1, devices), key=lambda r: (cost(r), -r))
    reuse = [r for r in compiled if r % devices == 0 and r <= limit and cost(r) < cost(best) + compile_runs]
    return min(reuse, key=cost) if reuse else best


def _shared(splits):
    """Per data part, the vmap axis: None where every run has the same array (passed once), else 0."""
    axes = []
    for name in PARTS:
        arrays = [getattr(split, name) for split in splits]
        first = arrays[0]
        same = first is None or all(
            a is first or (a.shape == first.shape and np.array_equal(a, first)) for a in arrays
        )
        axes.append(None if same else 0)
    return tuple(axes)


def _pad(array, size):
    if len(array) == size:
        return array
    return np.concatenate([array, np.zeros((size - len(array), *array.shape[1:]), array.dtype)])


_hits = []


def _cache_hits():
    """Programs this process has loaded from JAX's persistent compilation cache so far."""
    if not _hits:
        import jax

        _hits.append(0)
        jax.monitoring.register_event_listener(
            lambda event, **_: (
                _hits.__setitem__(0, _hits[0] + 1) if event == "/jax/compilation_cache/cache_hits" else None
            )
        )
    return _hits[0]


def _note(runs, stats, per_call, devices, calls, seconds):
    """Append what the group cost to $HARNESS_ENGINE_STATS (bench reads it), when set."""
    path = os.environ.get(STATS_ENV)
    if not path:
        return
    line = {
        "experiments": list(dict.fromkeys(spec.name for spec, _, _ in runs)),
        "runs": len(runs),
        "runs_per_call": per_call,
        "devices": devices,
        "calls": calls,
        **stats,
        "train_s": seconds,
    }
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


def _wider(have, wanted):
    """Whether the layers of structure `have` are those of `wanted`, with as many units or more where
    zeros pad them ("paddable") and no Dropout of `wanted` follows (it draws masks for its units)."""
    dropped = {p for p, _, rate in wanted["dropouts"] if rate != 0.0}
    pairs = list(zip(have["skeleton"], wanted["skeleton"]))
    return len(have["skeleton"]) == len(wanted["skeleton"]) and all(
        a == b
        or (
            i in have["paddable"]
            and i not in dropped
            and {**a, "units": 0} == {**b, "units": 0}
            and a["units"] > b["units"]
        )
        for i, (a, b) in enumerate(pairs)
    )


def _rows(program, spec, run, out, fit_seconds, params, size):
    """The rows of one run of the group, from its slice of the program's outputs."""
    _, seed, fold = run
    log_names = program.log_names
    names = log_names + program.val_names
    epochs_run = int(np.sum(out["ran"]))
    order = sorted(range(len(log_names)), key=lambda k: log_names[k])  # Keras' order
    if program.val_names:
        order += [len(log_names) + k for k in order]
    history = {names[k]: [float(v) for v in out["logs"][:epochs_run, k]] for k in order}
    for k, (entry, _) in enumerate(program.layers):
        if program.spec_index(spec, entry) is None:  # a layer the run skips
            continue
        column = program.column(spec, entry)
        history[f"weight_norm.{column}"] = [float(v) for v in out["norms"][:epochs_run, k]]
        history[f"update_ratio.{column}"] = [float(v) for v in out["ratios"][:epochs_run, k]]
    parts = ["train", "val", "test"] if program.val_names else ["train", "test"]
    scores = {
        part: {log_names[k]: out["scores"][j, k] for k in order[: len(log_names)]}
        for j, part in enumerate(parts)
    }
    dead = [
        (float(f), program.column(spec, entry))
        for f, entry in zip(out["dead"], program.relu_layers)
        if program.spec_index(spec, entry) is not None
    ]
    return rows.build(
        spec.spec,
        seed,
        fold,
        history,
        scores,
        penalty=float(out["penalty"]),
        diverged=bool(out["diverged"]),
        dead_relu=lambda: worst_dead_relu(dead),
        fit_seconds=fit_seconds,
        params=params,
        pipeline=f"jax.vmap group of {size}",
        deterministic=True,
    )
