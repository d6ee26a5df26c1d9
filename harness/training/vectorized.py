"""The vectorized trainer: a group of runs trained as one compiled JAX program.

Each run's variables are stacked on a leading axis; one run's whole training (epochs and
batches as `jax.lax.scan`, Keras' own stateless `train_step`/`test_step`, which go through
`model.stateless_call` and `optimizer.stateless_apply`) is wrapped in `jax.vmap` and jit-
compiled once for the group. Early stopping, the non-finite stop and the health columns are
computed inside the program per run; a stopped run's updates are masked, so it keeps what
Keras keeps. Rows are made by `rows.build`, as the per-run trainer's are.

Needs Keras on JAX in this process (KERAS_BACKEND=jax before `harness.training.backend` is imported).
"""

import os
import time
from pathlib import Path

import numpy as np

from harness import data as datasets
from harness.training import models, rows
from harness.training.backend import keras
from harness.training.groups import Unsupported, key
from harness.training.health import column_name, is_relu, worst_dead_relu

CACHE_ENV = "HARNESS_CACHE"


def cache_dir():
    """Where JAX keeps compiled programs between invocations: $HARNESS_CACHE/jax, else
    ~/.cache/harness/jax."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "harness")
    return Path(root) / "jax"


def enable_compile_cache():
    import jax

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # an unwritable cache only costs compile time
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def _check_backend():
    if keras.backend.backend() != "jax":
        raise Unsupported(f"Keras runs on {keras.backend.backend()} in this process, not JAX")


def _values(variables):
    return [np.asarray(v.value) for v in variables]


def _initial_state(spec, seed, n_features):
    """A run's initial (trainable, non-trainable) values: built exactly as the per-run path builds them."""
    models.seed_everything(seed)
    model = models.build(spec, n_features)
    return _values(model.trainable_variables), _values(model.non_trainable_variables)


def _learning_rate(spec):
    lr = models.optimizer(spec).learning_rate
    return float(np.asarray(keras.ops.convert_to_numpy(lr)))


class _Program:
    """What one group shares: the representative model, its layout, and the jitted function."""

    def __init__(self, spec, split):
        self.spec = spec
        models.seed_everything(0)
        model = models.compile_model(models.build(spec, split.n_features), spec)
        batch = spec.fit["batch_size"]
        model._symbolic_build(data_batch=(split.x_train[:batch], split.y_train[:batch]))
        opt = model.optimizer
        if getattr(opt, "use_ema", False) or getattr(opt, "gradient_accumulation_steps", None):
            raise Unsupported("optimizer with use_ema or gradient_accumulation_steps")
        lr_variable = getattr(opt, "_learning_rate", None)
        names = [id(v) for v in opt.variables]
        if not isinstance(lr_variable, keras.Variable) or id(lr_variable) not in names:
            raise Unsupported("a learning-rate schedule")
        self.model, self.lr_index = model, names.index(id(lr_variable))
        self.optimizer_values = _values(opt.variables)
        self.metrics_values = _values(model.metrics_variables)
        self.log_names = list(model.get_metrics_result())
        # health: per layer with weights, which trainable / non-trainable variables it owns
        trainable = {id(v): i for i, v in enumerate(model.trainable_variables)}
        non_trainable = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
        self.layers = []
        for i, layer in enumerate(model.layers):
            if layer.weights:
                owned = [
                    ("t", trainable[id(w)]) if id(w) in trainable else ("n", non_trainable[id(w)])
                    for w in layer.weights
                ]
                self.layers.append((column_name(i, layer), owned))
        self.relu_layers = [(i, column_name(i, layer)) for i, layer in enumerate(model.layers) if is_relu(layer)]
        self.stopper = self._early_stopping()
        self.has_val = split.x_val is not None
        self.function = None

    def _early_stopping(self):
        """EarlyStopping's settings as Keras itself resolves them (monitor direction, min_delta sign)."""
        stoppers = [c for c in models.callbacks(self.spec) if isinstance(c, keras.callbacks.EarlyStopping)]
        if not stoppers:
            return None
        if len(stoppers) > 1:
            raise Unsupported("more than one EarlyStopping")
        cb = stoppers[0]
        cb.set_model(self.model)
        try:
            cb._set_monitor_op()
        except ValueError as exc:
            raise Unsupported(str(exc).splitlines()[0]) from None
        greater = cb.monitor_op is keras.ops.greater
        return {
            "monitor": cb.monitor,
            "greater": greater,
            "min_delta": float(cb.min_delta),  # already negative for "less", as Keras keeps it
            "patience": int(cb.patience),
            "baseline": None if cb.baseline is None else float(cb.baseline),
            "restore": bool(cb.restore_best_weights),
            "start_from_epoch": int(cb.start_from_epoch),
        }

    def build(self, shared_data):
        import jax
        import jax.numpy as jnp

        model, spec, stopper = self.model, self.spec, self.stopper
        epochs, batch, shuffle = spec.fit["epochs"], spec.fit["batch_size"], spec.fit["shuffle"]
        metrics0 = [jnp.asarray(v) for v in self.metrics_values]
        layers, log_names, has_val = self.layers, self.log_names, self.has_val
        val_names = [f"val_{n}" for n in log_names] if has_val else []

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

        def train_epoch(trainable, non_trainable, opt, key, epoch, x, y):
            n = x.shape[0]
            if shuffle:
                order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
                x, y = x[order], y[order]
            full, rest = divmod(n, batch)
            state = (trainable, non_trainable, opt, metrics0)
            logs = None
            if full:
                xs = x[: full * batch].reshape(full, batch, *x.shape[1:])
                ys = y[: full * batch].reshape(full, batch, *y.shape[1:])

                def step(state, data):
                    logs, state = model.train_step(state, data)
                    return state, logs

                state, logs = jax.lax.scan(step, state, (xs, ys))
                logs = {k: v[-1] for k, v in logs.items()}
            if rest:
                logs, state = model.train_step(state, (x[full * batch :], y[full * batch :]))
            return state[:3], jnp.stack([logs[n] for n in log_names])

        def select(flag, new, old):
            return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)

        def one_run(trainable, non_trainable, opt, seed, data):
            x, y, xv, yv, xt, yt = data
            key = jax.random.PRNGKey(seed)
            es = {
                "wait": jnp.int32(0),
                "best": jnp.float32(jnp.nan),
                "has_best": jnp.bool_(False),
                "best_epoch": jnp.int32(0),
                "has_weights": jnp.bool_(False),
                "weights": (trainable, non_trainable) if stopper and stopper["restore"] else (),
            }
            carry0 = (trainable, non_trainable, opt, es, jnp.bool_(True), jnp.bool_(False))

            def epoch_fn(carry, epoch):
                trainable, non_trainable, opt, es, active, diverged = carry
                (t2, n2, o2), train_logs = train_epoch(trainable, non_trainable, opt, key, epoch, x, y)
                logs = train_logs
                if has_val:
                    logs = jnp.concatenate([train_logs, evaluate(t2, n2, xv, yv)])
                norms, ratios = health(t2, n2, (trainable, non_trainable))
                loss = train_logs[log_names.index("loss")]
                nonfinite = ~(jnp.all(jnp.isfinite(norms)) & jnp.isfinite(loss))
                stop = nonfinite
                es2 = es
                if stopper:
                    es2, stop_es = early_stop(es, logs, epoch, (t2, n2))
                    stop = stop | stop_es
                new = (t2, n2, o2, es2, active & ~stop, diverged | nonfinite)
                carry = select(active, new, carry)
                return carry, (logs, norms, ratios, active)

            def early_stop(es, logs, epoch, weights):
                names = log_names + val_names
                if stopper["monitor"] not in names:  # Keras warns and never stops
                    return es, jnp.bool_(False)
                current = logs[names.index(stopper["monitor"])]
                better = jnp.greater if stopper["greater"] else jnp.less

                def improves(value, reference):
                    return better(value - stopper["min_delta"], reference)

                considered = epoch >= stopper["start_from_epoch"]
                es2 = dict(es)
                if stopper["restore"]:
                    first = ~es["has_weights"]
                    es2["weights"] = select(first, weights, es["weights"])
                    es2["best_epoch"] = jnp.where(first, epoch, es["best_epoch"])
                    es2["has_weights"] = jnp.bool_(True)
                es2["wait"] = es["wait"] + 1
                improved = ~es["has_best"] | improves(current, es["best"])
                resets = improved
                if stopper["baseline"] is not None:
                    resets = improved & improves(current, stopper["baseline"])
                es2["best"] = jnp.where(improved, current, es["best"])
                es2["has_best"] = es["has_best"] | improved
                es2["best_epoch"] = jnp.where(improved, epoch, es2["best_epoch"])
                if stopper["restore"]:
                    es2["weights"] = select(improved, weights, es2["weights"])
                es2["wait"] = jnp.where(resets, 0, es2["wait"])
                stop = ~improved & (es2["wait"] >= stopper["patience"]) & (epoch > 0)
                es2 = select(considered, es2, es)
                return es2, considered & stop

            carry, (logs, norms, ratios, ran) = jax.lax.scan(epoch_fn, carry0, jnp.arange(epochs))
            trainable, non_trainable, _, es, _, diverged = carry
            if stopper and stopper["restore"]:
                trainable, non_trainable = select(
                    es["has_weights"], es["weights"], (trainable, non_trainable)
                )
            scores = [evaluate(trainable, non_trainable, x, y)]
            scores += [evaluate(trainable, non_trainable, xv, yv)] if has_val else []
            scores.append(evaluate(trainable, non_trainable, xt, yt))
            _, _, losses = model.stateless_call(
                trainable, non_trainable, x[:1], training=False, return_losses=True
            )
            penalty = sum(losses) if losses else jnp.float32(0.0)
            return {
                "logs": logs,
                "norms": norms,
                "ratios": ratios,
                "ran": ran,
                "diverged": diverged,
                "scores": jnp.stack(scores),
                "penalty": penalty,
                "dead": self._dead_relu(trainable, non_trainable, x),
            }

        data_axis = None if shared_data else 0
        vmapped = jax.vmap(one_run, in_axes=(0, 0, 0, 0, data_axis))
        self.function = jax.jit(vmapped)

    def _dead_relu(self, trainable, non_trainable, x):
        """Per ReLU layer: the fraction of its units that output 0 for every input (inputs `x`)."""
        import jax.numpy as jnp

        model = self.model
        mapping = list(zip(model.trainable_variables, trainable)) + list(
            zip(model.non_trainable_variables, non_trainable)
        )
        fractions, relu = [], {i for i, _ in self.relu_layers}
        with keras.StatelessScope(state_mapping=mapping):
            h = x
            for i, layer in enumerate(model.layers):
                h = layer(h, training=False)
                if i in relu:
                    out = h.reshape(x.shape[0], -1)
                    fractions.append(jnp.mean(jnp.all(out <= 0, axis=0).astype(jnp.float32)))
        return jnp.stack(fractions) if fractions else jnp.zeros(0)


def _stack(arrays):
    return [np.stack(a) for a in zip(*arrays)]


def train(group):
    """Train `group` as one program; yield each run's (runs.csv row, history rows) when it ends.

    Its specs must compile to the same program (`groups.form` forms groups so). Raises
    Unsupported, naming the cause, when the program cannot be built, traced or run (a layer
    that fails under vmap, a schedule, ...): those runs then train on the per-run trainer."""
    _check_backend()
    enable_compile_cache()
    try:
        made = _train(group.runs)
    except Unsupported:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise Unsupported(f"{type(exc).__name__}: {first}"[:300]) from exc
    yield from made


def _train(runs):
    import jax

    spec0 = runs[0][0]
    if len({key(spec, fold) for spec, _, fold in runs}) > 1:
        raise Unsupported("the runs do not compile to one program (harness.training.groups forms groups)")
    splits = [datasets.load_split(spec.data, seed, fold) for spec, seed, fold in runs]
    split0 = splits[0]
    program = _Program(spec0, split0)
    n_features = split0.n_features
    initial = [_initial_state(spec, seed, n_features) for spec, seed, _ in runs]
    trainable = _stack([t for t, _ in initial])
    non_trainable = _stack([n for _, n in initial])
    optimizer = []
    for i, value in enumerate(program.optimizer_values):
        stacked = np.stack([value] * len(runs))
        if i == program.lr_index:
            stacked = np.asarray([_learning_rate(spec) for spec, _, _ in runs], dtype=value.dtype)
        optimizer.append(stacked)
    seeds = np.asarray([seed for _, seed, _ in runs], dtype=np.uint32)

    def parts(split):
        return [split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test]

    shared = all(_same(s, split0) for s in splits)
    data = (
        parts(split0) if shared else [None if a[0] is None else np.stack(a) for a in zip(*map(parts, splits))]
    )
    program.build(shared)
    start = time.perf_counter()
    out = program.function(trainable, non_trainable, optimizer, seeds, data)
    out = jax.tree_util.tree_map(np.asarray, out)
    seconds = time.perf_counter() - start
    params = int(program.model.count_params())
    made = [
        _rows(program, run, i, out, seconds / len(runs), params, len(runs)) for i, run in enumerate(runs)
    ]
    del program, initial
    keras.backend.clear_session()
    return made


def _same(a, b):
    return all(
        (u is None and v is None) or (u is not None and v is not None and np.array_equal(u, v))
        for u, v in zip(
            (a.x_train, a.y_train, a.x_val, a.y_val, a.x_test, a.y_test),
            (b.x_train, b.y_train, b.x_val, b.y_val, b.x_test, b.y_test),
        )
    )


def _rows(program, run, i, out, fit_seconds, params, size):
    """The rows of run `i` of the group, from the program's outputs."""
    spec, seed, fold = run
    names = program.log_names + ([f"val_{n}" for n in program.log_names] if program.has_val else [])
    epochs_run = int(np.sum(out["ran"][i]))
    order = sorted(range(len(program.log_names)), key=lambda k: program.log_names[k])  # Keras' order
    if program.has_val:
        order += [len(program.log_names) + k for k in order]
    history = {names[k]: [float(v) for v in out["logs"][i, :epochs_run, k]] for k in order}
    for k, (layer, _) in enumerate(program.layers):
        history[f"weight_norm.{layer}"] = [float(v) for v in out["norms"][i, :epochs_run, k]]
        history[f"update_ratio.{layer}"] = [float(v) for v in out["ratios"][i, :epochs_run, k]]
    parts = ["train", "val", "test"] if program.has_val else ["train", "test"]
    scores = {
        part: {program.log_names[k]: out["scores"][i, j, k] for k in order[: len(program.log_names)]}
        for j, part in enumerate(parts)
    }
    dead = [(float(f), layer) for f, (_, layer) in zip(out["dead"][i], program.relu_layers)]
    return rows.build(
        spec,
        seed,
        fold,
        history,
        scores,
        penalty=float(out["penalty"][i]),
        diverged=bool(out["diverged"][i]),
        dead_relu=lambda: worst_dead_relu(dead),
        fit_seconds=fit_seconds,
        params=params,
        pipeline=f"jax.vmap group of {size}",
        deterministic=True,
    )
