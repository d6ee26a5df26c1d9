"""harness.training.vectorized: many runs as one JAX program, equal to model.fit run by run, and a run
in a group of many specs equal to the same run in a group of its own spec.

Keras picks its backend once per process and the rest of the test session imports it on
TensorFlow, so everything that needs Keras on JAX runs in a subprocess (this file run as a
script with KERAS_BACKEND=jax), which prints its measurements as JSON; the tests assert on them.
"""

import copy
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import IRIS_NET, PYTHON, ROOT, TINY

from harness.spec import from_dict

# 120 training samples in batches of 16: seven full batches and one of 8
UNEVEN = {**IRIS_NET, "name": "uneven", "fit": {"epochs": 30, "batch_size": 16, "shuffle": False}}
# breast_cancer (2 classes), a validation part, BatchNormalization, two metrics
PLAIN = {
    **TINY,
    "name": "plain",
    "data": {"dataset": "breast_cancer", "validation_size": 0.2, "train_fraction": 0.3},
    "model": [
        {"class_name": "Dense", "units": 32, "activation": "relu"},
        {"class_name": "BatchNormalization"},
        {"class_name": "Dense", "units": 2, "activation": "softmax"},
    ],
    "compile": {
        "optimizer": {"class_name": "adam", "learning_rate": 0.003},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy", "sparse_categorical_crossentropy"],
    },
    "fit": {"epochs": 15, "batch_size": 16, "shuffle": False},
    "seeds": [0, 1],
}
# trained in one group with PLAIN, so their rates, factors and numbers are the program's values
L2_BN = {**PLAIN, "name": "l2_bn", "model": copy.deepcopy(PLAIN["model"])}
L2_BN["model"][0]["kernel_regularizer"] = {"class_name": "L2", "l2": 0.01}
DROPOUT = {
    **PLAIN,
    "name": "dropout",
    "model": [PLAIN["model"][0], {"class_name": "Dropout", "rate": 0.5}, *PLAIN["model"][1:]],
}
NUMBERS = {
    **PLAIN,
    "name": "numbers",
    "compile": {
        **PLAIN["compile"],
        "optimizer": {
            "class_name": "adam",
            "learning_rate": 0.003,
            "beta_1": 0.8,
            "epsilon": 1e-5,
            "weight_decay": 0.05,
        },
    },
}
EARLY = {
    **PLAIN,
    "name": "early",
    "model": [{"class_name": "Dense", "units": 64, "activation": "relu"}, PLAIN["model"][2]],
    "fit": {"epochs": 40, "batch_size": 16, "shuffle": False},
}
STOPPERS = {
    "restore": {
        "class_name": "EarlyStopping",
        "monitor": "val_loss",
        "patience": 2,
        "restore_best_weights": True,
    },
    "no_restore": {"class_name": "EarlyStopping", "monitor": "val_loss", "patience": 3, "min_delta": 0.001},
    "accuracy": {
        "class_name": "EarlyStopping",
        "monitor": "val_accuracy",
        "patience": 2,
        "baseline": 0.9,
        "start_from_epoch": 3,
        "restore_best_weights": True,
    },
    "train_loss_max": {"class_name": "EarlyStopping", "monitor": "loss", "mode": "max", "patience": 1},
}
# a linear output under mean squared error: SGD at learning rate 10 blows up in the first epoch
SGD = {
    **IRIS_NET,
    "name": "sgd",
    "data": {"dataset": "iris", "labels": "onehot"},
    "model": [IRIS_NET["model"][0], {"class_name": "Dense", "units": 3}],
    "compile": {
        "optimizer": {"class_name": "sgd", "learning_rate": 0.01},
        "loss": "mean_squared_error",
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 20, "batch_size": 16, "shuffle": True},
}
# initial weights: a truncated-normal initializer, a seeded one, BatchNormalization and a Dropout
INITS = {
    **IRIS_NET,
    "name": "inits",
    "model": [
        {"class_name": "Dense", "units": 8, "activation": "relu", "kernel_initializer": "he_normal"},
        {"class_name": "BatchNormalization"},
        {"class_name": "Dropout", "rate": 0.2},
        {
            "class_name": "Dense",
            "units": 3,
            "activation": "softmax",
            "kernel_initializer": {"class_name": "GlorotUniform", "seed": 7},
        },
    ],
}
# what a group's program takes as values: a base and two variants that differ from it in all of them
BASE = {
    **TINY,
    "name": "base",
    "data": {"dataset": "iris", "validation_size": 0.2},
    "model": [
        {"class_name": "Dense", "units": 8, "activation": "relu"},
        {"class_name": "Dense", "units": 3, "activation": "softmax"},
    ],
    "compile": {
        "optimizer": {"class_name": "adam", "learning_rate": 0.01},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
    "fit": {
        "epochs": 12,
        "batch_size": 10,
    },  # 96 rows: nine full batches and one of 6 (48: four and one of 8)
    "seeds": [0, 1],
}
VALUES = [
    BASE,
    {
        **BASE,
        "name": "variant_a",
        "data": {**BASE["data"], "train_fraction": 0.5},
        "model": [
            {**BASE["model"][0], "kernel_regularizer": {"class_name": "L2", "l2": 0.01}},
            {"class_name": "Dropout", "rate": 0.3},
            BASE["model"][1],
        ],
        "compile": {
            **BASE["compile"],
            "optimizer": {"class_name": "adam", "learning_rate": 0.01, "beta_1": 0.8},
        },
        "fit": {**BASE["fit"], "callbacks": [STOPPERS["restore"]]},
    },
    {
        **BASE,
        "name": "variant_b",
        "model": [
            {"class_name": "Dropout", "rate": 0.2},
            {**BASE["model"][0], "activity_regularizer": {"class_name": "L1L2", "l1": 0.001, "l2": 0.001}},
            {"class_name": "Dropout", "rate": 0.5},
            {**BASE["model"][1], "bias_regularizer": {"class_name": "L1", "l1": 0.01}},
        ],
        "compile": {
            **BASE["compile"],
            "optimizer": {"class_name": "adam", "learning_rate": 0.05, "epsilon": 1e-5, "weight_decay": 0.05},
        },
        "fit": {**BASE["fit"], "epochs": 7, "callbacks": [STOPPERS["accuracy"]]},
    },
    {
        **BASE,
        "name": "momentum",
        "compile": {**BASE["compile"], "optimizer": {"class_name": "sgd", "momentum": 0.9}},
    },
    {
        **BASE,
        "name": "no_momentum",
        "compile": {**BASE["compile"], "optimizer": {"class_name": "sgd", "weight_decay": 0.1}},
    },
]
# a hidden layer's units as a value: narrower runs in the program of the widest, zeros beyond their units
WIDE = {
    **PLAIN,
    "name": "wide",
    "model": [
        {"class_name": "Dense", "units": 32, "activation": "relu"},
        {
            "class_name": "Dense",
            "units": 16,
            "activation": "tanh",
            "kernel_regularizer": {"class_name": "L2"},
        },
        PLAIN["model"][-1],
    ],
    "fit": {"epochs": 12, "batch_size": 16, "shuffle": True},
}
WIDTHS = [
    WIDE,
    {
        **WIDE,
        "name": "narrow",
        "model": [{**WIDE["model"][0], "units": 4}, {**WIDE["model"][1], "units": 3}, WIDE["model"][2]],
    },
    {
        **WIDE,
        "name": "wide_dropout",
        "model": [WIDE["model"][0], {"class_name": "Dropout", "rate": 0.5}, *WIDE["model"][1:]],
    },
    # a Dropout after a narrower layer draws masks for its own units: a program of its own widths
    {
        **WIDE,
        "name": "narrow_dropout",
        "model": [
            {**WIDE["model"][0], "units": 8},
            {"class_name": "Dropout", "rate": 0.5},
            *WIDE["model"][1:],
        ],
    },
]
# a stack of like ReLU layers whose depth is a value: two hidden layers (a Dropout after the first, an
# L2 penalty on the second) and one with weight decay (which would move even a layer without
# gradient), in one program (the shipped suites' smaller models: one without)
HIDDEN = {"class_name": "Dense", "units": 8, "activation": "relu"}
DEEP = {
    **IRIS_NET,
    "name": "deep",
    "model": [
        HIDDEN,
        {"class_name": "Dropout", "rate": 0.3},
        {**HIDDEN, "kernel_regularizer": {"class_name": "L2"}},
        IRIS_NET["model"][-1],
    ],
    "fit": {"epochs": 5, "batch_size": 16, "shuffle": True},
}
SHALLOW = {
    **DEEP,
    "name": "shallow_decayed",
    "model": [HIDDEN, IRIS_NET["model"][-1]],
    "compile": {**IRIS_NET["compile"], "optimizer": {"class_name": "adam", "weight_decay": 0.05}},
}
# Dense and Dropout layers only: a partial batch trains in the full batches' step, its extra rows
# weighing 0. Two metrics, and in one group with half the training rows: 120 rows are seven batches
# of 16 and one of 8, 60 rows three and one of 12
ROW_WISE = {
    **TINY,
    "name": "row_wise",
    "model": [TINY["model"][0], {"class_name": "Dropout", "rate": 0.3}, TINY["model"][1]],
    "compile": {**TINY["compile"], "metrics": ["accuracy", "sparse_categorical_crossentropy"]},
    "fit": {"epochs": 6, "batch_size": 16, "shuffle": False},
}
HALF = {**ROW_WISE, "name": "row_wise_half", "data": {"dataset": "iris", "train_fraction": 0.5}}
TIMING = ["fit_seconds", "seconds_per_epoch", "pid", "peak_rss_mb", "finished_at"]
SUITES = ["overfitting", "underfitting", "iris_overfitting", "iris_underfitting"]


def _spec(raw, **changes):
    raw = copy.deepcopy(raw)
    for path, value in changes.items():
        node, parts = raw, path.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return from_dict(raw)


def _relative(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    return float(np.max(np.where(both_nan, 0.0, np.abs(a - b) / np.maximum(np.abs(a), 1e-12)), initial=0.0))


# -- measured in a JAX process ----------------------------------------------------------


def _group(runs):
    from harness.training.groups import Group

    return list(Group(tuple(runs), "vectorized", "jax").train())


def _against_fit(specs):
    """Each spec's seeds trained in one group of all `specs` against model.fit (per_run.run)."""
    from harness.training import per_run

    runs = [(spec, seed, None) for spec in specs for seed in spec.seeds]
    out = {}
    for (spec, seed, _), (row, history) in zip(runs, _group(runs)):
        keras_row, keras_history = per_run.run(spec, seed)
        worst = {}
        for key in keras_history[0]:
            if key not in ("experiment", "seed", "spec_hash", "epoch") and len(history) == len(keras_history):
                values = [h[key] for h in keras_history], [h.get(key) for h in history]
                worst[key] = max(worst.get(key, 0.0), _relative(*values))
        out.setdefault(spec.name, []).append(
            {
                "worst": worst,
                "history_columns": [list(keras_history[0]), list(history[0])],
                "row_columns": [list(keras_row), list(row)],
                "rows": [{k: r[k] for k in r if k not in TIMING} for r in (keras_row, row)],
            }
        )
    return out


def _merged_against_own(specs, seeds):
    """Each run trained in the groups `groups.form` makes of all `specs` against the same run trained
    in a group of its own spec (first, so that its program is its own): worst relative difference of
    every per-epoch column and of the row's scores, and whether epochs_run, best_epoch, status, params,
    the dead-ReLU columns and the history's columns are the same."""
    from harness.training import groups

    own = {}
    for spec in specs:
        for seed, made in zip(seeds, _group([(spec, s, None) for s in seeds])):
            own[(spec.name, seed)] = made
    formed, _ = groups.form([(spec, seed, None) for spec in specs for seed in seeds], engine="vectorized")
    compared = []
    for group in formed:
        for (spec, seed, _), (other, other_history) in zip(group.runs, group.train()):
            row, history = own[(spec.name, seed)]
            worst = {
                key: _relative([h[key] for h in history], [h[key] for h in other_history])
                for key in history[0]
                if key not in ("experiment", "seed", "spec_hash", "epoch")
                and len(history) == len(other_history)
            }
            # a data loss is Keras' loss minus the penalty: compared as Keras evaluated it (the difference
            # of two near numbers would magnify its last bits)
            scores = [k for k in row if k.startswith(("train_", "val_", "test_")) or k == "loss_penalty"]
            with_penalty = lambda r, k: r[k] + (r["loss_penalty"] if k.endswith("_loss") else 0.0)  # noqa: E731
            worst.update(
                {f"row.{k}": _relative(with_penalty(row, k), with_penalty(other, k)) for k in scores}
            )
            same = ("epochs_run", "best_epoch", "status", "params", "dead_relu_fraction", "dead_relu_layer")
            compared.append(
                {
                    "run": f"{spec.name} seed {seed}",
                    "same": {k: [row[k], other[k]] for k in same},
                    "columns": list(history[0]) == list(other_history[0]),
                    "worst": worst,
                    "pipeline": other["pipeline"],
                }
            )
    return {"groups": [group.names() for group in formed], "runs": compared}


def _measure(part):
    """Everything that needs Keras on JAX, as JSON-able results."""
    import numpy as np

    from harness import registry
    from harness.training import models, vectorized

    out = {}
    if part == "suites":
        shipped = registry.discover()
        for tag in SUITES:
            specs = [s for s in shipped.values() if tag in s.tags]
            out[tag] = _merged_against_own(specs, [0])
        return out
    # initial weights without a model per run against the per-run build, for seeds built in another order
    for raw in (INITS, DROPOUT) if part == "core" else (IRIS_NET,):
        spec, n = _spec(raw), 30 if raw is DROPOUT else 4
        initial = vectorized._Initial(spec, n, 5)
        seeds, same = [3, 0, 7, 5], initial.followed
        mine = {s: initial.values(s) for s in seeds}
        for s in reversed(seeds):
            models.seed_everything(s)
            model = models.build(spec, n)
            theirs = [
                np.asarray(v.value)
                for layer in model.layers
                for v in layer.trainable_variables + layer.non_trainable_variables
            ]
            ours = [mine[s][k] for k in sorted(mine[s], key=lambda k: (k[0], k[1] == "n", k[2]))]
            same = (
                same and len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
            )
        out[f"initial_equal.{raw['name']}"] = same
    if part == "core":  # the check's build of a spec is the engine's, and a spec's _Initial is made once
        spec, builds = _spec(INITS, seeds=[4, 2]), []
        build, models.build = models.build, lambda *a: builds.append(a) or build(*a)
        try:
            models.check_specs([spec])
            checked = len(builds)
            initial = vectorized._initial(spec, 4, 2)
            again = vectorized._initial(spec, 4, 9)
        finally:
            models.build = build
        models.seed_everything(2)
        built = vectorized._by_layer(models.build(spec, 4))
        mine = initial.values(2)
        out["check_hands_over"] = {
            "builds": [checked, len(builds)],
            "same_initial": again is initial,
            "equal": initial.followed and all(np.array_equal(mine[k], built[k]) for k in built),
        }

    # per-epoch numbers against model.fit on JAX, shuffle off; Dropout, L2 and optimizer numbers as values
    if part == "core":
        specs = [_spec(PLAIN), *(_spec(raw, seeds=[1]) for raw in (L2_BN, DROPOUT, NUMBERS))]
        out["fit"] = _against_fit(specs)
        out["masked"] = [vectorized._programs[-1].masked]  # BatchNormalization: a step per batch length
        out["fit"].update(_against_fit([_spec(ROW_WISE, seeds=[0, 1]), _spec(HALF, seeds=[2])]))
        program = vectorized._programs[-1]
        out["masked"] += [program.masked, program.structure["sizes"]]
        out["penalty"] = _penalty()
        return out
    out["fit"] = {**_against_fit([_spec(IRIS_NET)]), **_against_fit([_spec(UNEVEN)])}
    out["depths"] = _merged_against_own([_spec(DEEP), _spec(SHALLOW)], [0])
    # early stopping: the four configurations in one group, each against Keras' EarlyStopping
    stoppers = [_spec({**EARLY, "name": label}, **{"fit.callbacks": [cb]}) for label, cb in STOPPERS.items()]
    out["early"] = _against_fit(stoppers)
    _values(out, VALUES[:3])
    _ahead(out, VALUES[:3])
    _values(out, WIDTHS, "widths")
    # two SGD specs that differ in momentum and weight decay: a program of their own
    out["sgd_values"] = _merged_against_own([_spec(raw) for raw in VALUES[3:]], [0, 1])

    # a diverging trial: its mate's numbers equal those it gets beside a healthy trial
    ok = _spec(SGD)
    diverging = _spec({**SGD, "name": "sgd_diverging"}, **{"compile.optimizer.learning_rate": 10.0})
    healthy = _spec({**SGD, "name": "sgd_healthy"}, **{"compile.optimizer.learning_rate": 0.1})
    beside_bad = _group([(ok, 0, None), (diverging, 0, None)])
    beside_good = _group([(ok, 0, None), (healthy, 0, None)])
    out["divergence"] = {
        "statuses": [beside_bad[1][0]["status"], beside_bad[0][0]["status"]],
        "epochs_run": [beside_bad[1][0]["epochs_run"], ok.fit["epochs"]],
        "mate_equal": beside_bad[0][1] == beside_good[0][1]
        and {k: v for k, v in beside_bad[0][0].items() if k not in TIMING}
        == {k: v for k, v in beside_good[0][0].items() if k not in TIMING},
    }

    # group mates: a run's final losses alone, in its experiment's group, and in a bigger mixed group
    spec = _spec(
        {**IRIS_NET, "fit": {"epochs": 30, "batch_size": 10, "shuffle": True}}, seeds=[0, 1, 2, 3, 4]
    )
    other = _spec(
        {**IRIS_NET, "name": "other_lr", "fit": {"epochs": 30, "batch_size": 10, "shuffle": True}},
        **{"compile.optimizer": {"class_name": "adam", "learning_rate": 0.01}},
    )
    alone = [_group([(spec, s, None)])[0][0] for s in spec.seeds]
    together = [r for r, _ in _group([(spec, s, None) for s in spec.seeds])]
    mixed = [
        r for r, _ in _group([(other, 9, None), *[(spec, s, None) for s in spec.seeds], (other, 8, None)])
    ][1:-1]
    largest = 0.0
    for a, b, c in zip(alone, together, mixed):
        for key in ("train_loss", "test_loss"):
            largest = max(largest, _relative(a[key], b[key]), _relative(a[key], c[key]))
    out["group_mates_largest_relative"] = largest

    return out


def _values(out, raws, tag="values"):
    """A group of specs that differ in every value against each spec's own group, and a later group the
    merged program covers."""
    from harness.training import vectorized

    values = [_spec(raw) for raw in raws]
    out[tag] = _merged_against_own(values, [0, 1])
    # a later group that the merged program covers (as the doctor's verification) is trained by it
    kept = [id(p) for p in vectorized._programs]  # each spec's own, then the merged one(s)
    _group([(values[1], 5, None), (values[2], 5, None)])
    out[f"covered.{tag}"] = sorted(id(p) for p in vectorized._programs) == sorted(kept)  # no new program
    return out


def _ahead(out, raws):
    """A group told the specs expected later (as the doctor tells its baseline's) against the same group
    untold: its runs' per-epoch numbers, and whether the expected specs' group then needs no program."""
    from harness.training import vectorized
    from harness.training.groups import Group

    values = [_spec(raw) for raw in raws]
    vectorized._programs.clear()
    runs = tuple((values[0], seed, None) for seed in (0, 1))
    own = _group(runs)
    ready = list(Group(runs, "vectorized", "jax", expected=tuple(values[1:])).train())
    out["ahead.worst"] = max(
        _relative([h[key] for h in history], [h[key] for h in other])
        for (_, history), (_, other) in zip(own, ready)
        for key in history[0]
        if key not in ("experiment", "seed", "spec_hash", "epoch")
    )
    kept = sorted(id(p) for p in vectorized._programs)
    _group([(values[1], 5, None), (values[2], 5, None)])
    out["ahead.programs"] = [len(kept), sorted(id(p) for p in vectorized._programs) == kept]
    return out


def _penalty():
    """An L1 and an L2 term as the program computes them, against the plain term (bit for bit, value
    and gradient), and not summed in a call none of whose runs has the factor."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from harness.training.vectorized import _penalty, _penalty_term, _Program

    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)).astype("float32"))
    out = {"same": [], "skipped": []}
    for term in (jnp.abs, jnp.square):
        for factor in (jnp.float32(0.0), jnp.float32(0.01)):
            plain = jax.value_and_grad(lambda x, t=term, f=factor: _penalty_term(t, x, f))(x)
            gated = jax.jit(jax.value_and_grad(lambda x, s, t=term, f=factor: _penalty(t, x, f, s)))(x, True)
            out["same"].append(all(np.array_equal(a, b) for a, b in zip(plain, gated)))
        skipped = jax.jit(lambda x, s, t=term: _penalty(t, x, jnp.float32(0.01), s))(x, False)
        out["skipped"].append([float(skipped), float(_penalty_term(term, x, jnp.float32(0.01)))])
    runs = [
        {"l1": np.float32([0.0, 0.1]), "l2": np.float32([0.0, 0.0])},
        {"l1": np.float32([0.0, 0.0]), "l2": np.float32([0.0, 0.2])},
    ]
    out["call"] = {k: np.asarray(v).tolist() for k, v in _Program.call_values(1, runs).items()}
    return out


def _measured(tmp_path_factory, part):
    """`_measure(part)` in a subprocess with Keras on JAX: "core" (the default suite's), "more" and
    "suites" (slow)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_EXPERIMENTS", "TF_CPP_MIN_LOG_LEVEL")}
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])  # the harness, and conftest for this file
    env.update(KERAS_BACKEND="jax", HARNESS_CACHE=str(tmp_path_factory.mktemp("cache")), PYTHONPATH=path)
    done = subprocess.run(
        [PYTHON, __file__, "_measure", part], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return _measured(tmp_path_factory, "core")


@pytest.fixture(scope="module")
def measured_more(tmp_path_factory):
    return _measured(tmp_path_factory, "more")


@pytest.mark.parametrize("name", ["inits", "dropout"])
def test_initial_weights_equal_the_per_run_build(measured, name):
    assert measured[f"initial_equal.{name}"] is True  # seeded and BatchNormalization's, Dropout's seed state


def test_the_engine_starts_from_the_checks_build_and_makes_a_specs_initial_weights_once(measured):
    handed = measured["check_hands_over"]
    assert handed["builds"] == [1, 1]  # the check built the spec; the engine built nothing more
    assert handed["same_initial"] is True
    assert handed["equal"] is True  # seed 4's build (the check's) gives seed 2's weights as a build of 2


@pytest.mark.slow
def test_initial_weights_of_the_articles_net_equal_the_per_run_build(measured_more):
    assert measured_more["initial_equal.iris_net"] is True


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("iris_net", marks=pytest.mark.slow),
        pytest.param("uneven", marks=pytest.mark.slow),
        "plain",
        "l2_bn",
        "dropout",
        "numbers",
        "row_wise",
        "row_wise_half",
    ],
)
def test_per_epoch_numbers_equal_model_fit(request, name):
    slow = name in ("iris_net", "uneven")
    measured = request.getfixturevalue("measured_more" if slow else "measured")
    for result in measured["fit"][name]:
        keras_columns, engine_columns = result["history_columns"]
        assert engine_columns == keras_columns
        assert result["row_columns"][0] == result["row_columns"][1]
        assert result["worst"]["loss"] < 1e-5, result["worst"]
        assert max(result["worst"].values()) < 1e-5, result["worst"]
        keras_row, engine_row = result["rows"]
        assert engine_row["pipeline"].startswith("jax.vmap group of")
        for key in ("epochs_run", "best_epoch", "status", "dead_relu_layer"):
            assert engine_row[key] == keras_row[key], key
        assert engine_row["dead_relu_fraction"] == pytest.approx(keras_row["dead_relu_fraction"])
        for key, value in keras_row.items():
            if isinstance(value, float) and key.endswith(("loss", "accuracy", "penalty", "crossentropy")):
                assert engine_row[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_a_partial_batch_trains_as_a_full_one_where_each_row_goes_through_on_its_own(measured):
    """Then the program traces one step for every batch (see test_per_epoch_numbers_equal_model_fit)."""
    assert measured["masked"] == [False, True, [60, 120]]


@pytest.mark.slow
@pytest.mark.parametrize("label", list(STOPPERS))
def test_early_stopping_stops_and_keeps_what_keras_does(measured_more, label):
    stopped_early = 0
    for result in measured_more["early"][label]:
        keras_row, engine_row = result["rows"]
        assert engine_row["epochs_run"] == keras_row["epochs_run"]
        assert engine_row["best_epoch"] == keras_row["best_epoch"]
        for key in (
            "test_loss",
            "val_loss",
            "train_loss",
            "test_accuracy",
            "val_accuracy",
        ):  # the weights kept
            assert engine_row[key] == pytest.approx(keras_row[key], rel=1e-5), key
        stopped_early += keras_row["epochs_run"] < EARLY["fit"]["epochs"]
    assert stopped_early  # the configuration does stop within the epochs


@pytest.mark.slow
def test_a_diverging_trial_leaves_its_group_mates_alone(measured_more):
    result = measured_more["divergence"]
    assert result["statuses"] == ["diverged", "ok"]
    assert result["epochs_run"][0] < result["epochs_run"][1]
    assert result["mate_equal"] is True


@pytest.mark.slow
def test_a_runs_numbers_do_not_depend_on_its_group_mates(measured_more):
    largest = measured_more["group_mates_largest_relative"]
    print(f"largest relative difference of a final loss across groupings: {largest:.2e}")
    assert largest < 1e-4


def _assert_merged_equals_own(result):
    """Same epochs_run, best_epoch, status and columns; per-epoch losses and metrics within 1e-6
    relative, health columns within 1e-4 (an update ratio divides a small difference of weights)."""
    for run in result["runs"]:
        for key, (own, merged) in run["same"].items():
            assert merged == own or merged != merged and own != own, (run["run"], key)  # NaN: both NaN
        assert run["columns"], run["run"]
        health = {k: v for k, v in run["worst"].items() if k.startswith(("weight_norm.", "update_ratio."))}
        numbers = {k: v for k, v in run["worst"].items() if k not in health}
        assert max(numbers.values()) <= 1e-6, (run["run"], {k: v for k, v in numbers.items() if v > 1e-6})
        assert max(health.values()) <= 1e-4, (run["run"], {k: v for k, v in health.items() if v > 1e-4})


def _worst(result):
    """The largest relative differences over all runs: (losses and metrics, health columns)."""
    numbers = health = 0.0
    for run in result["runs"]:
        for key, value in run["worst"].items():
            if key.startswith(("weight_norm.", "update_ratio.")):
                health = max(health, value)
            else:
                numbers = max(numbers, value)
    return numbers, health


@pytest.mark.slow  # the default suite trains four specs' values in one program against Keras (above)
def test_a_run_trained_beside_other_specs_equals_it_in_its_own_specs_group(measured_more):
    """Dropout rates, L1/L2 factors, optimizer numbers, EarlyStopping, epochs and the training subset
    as values: one program for three specs, each run as its own spec's group trains it."""
    result = measured_more["values"]
    assert result["groups"] == [["base", "variant_a", "variant_b"]]
    _assert_merged_equals_own(result)
    assert {run["pipeline"] for run in result["runs"]} == {"jax.vmap group of 6"}
    assert (
        measured_more["covered.values"] is True
    )  # two of the specs again: the three specs' program, no new one


@pytest.mark.slow
def test_a_group_told_the_specs_expected_later_trains_as_before_and_their_group_needs_no_program(
    measured_more,
):
    """The doctor's baseline, told its remedies: its runs' numbers within 1e-6 of its own program's,
    and the remedies' group then trains in that program (2 programs: its own, and the told one)."""
    assert measured_more["ahead.worst"] <= 1e-6
    assert measured_more["ahead.programs"] == [2, True]


@pytest.mark.slow
def test_a_narrower_hidden_layer_trains_in_its_wider_mates_program_as_in_its_own(measured_more):
    """Units as a value: zeros beyond a run's own units change none of its numbers, its parameter count
    or its dead-ReLU fraction; a Dropout after a narrower layer keeps its run apart."""
    result = measured_more["widths"]
    assert result["groups"] == [["wide", "narrow", "wide_dropout"], ["narrow_dropout"]]
    _assert_merged_equals_own(result)
    assert measured_more["covered.widths"] is True


@pytest.mark.slow  # three programs compiled: 22 s of the default suite's
def test_a_shallower_stack_trains_in_its_deeper_mates_program_as_in_its_own(measured_more):
    """Depth as a value: a one-layer run in a three-layer program passes through two identity layers
    that get no gradient (nor weight decay), and its numbers, columns and dead-ReLU layer are its own."""
    result = measured_more["depths"]
    assert result["groups"] == [["deep", "shallow_decayed"]]
    _assert_merged_equals_own(result)


@pytest.mark.slow
def test_sgd_momentum_and_weight_decay_are_values_too(measured_more):
    result = measured_more["sgd_values"]
    assert result["groups"] == [["momentum", "no_momentum"]]
    _assert_merged_equals_own(result)


@pytest.mark.slow
def test_the_shipped_suites_merged_equal_each_spec_alone(tmp_path_factory):
    measured = _measured(tmp_path_factory, "suites")
    for tag in SUITES:
        print(tag, "largest relative differences (losses and metrics, health):", *_worst(measured[tag]))
    for tag in SUITES:
        _assert_merged_equals_own(measured[tag])
    assert [len(g) for g in measured["overfitting"]["groups"]] == [8]  # the smaller model too


@pytest.mark.slow  # the default suite pins iris_baseline's runs exactly (tests/test_experiments.py)
def test_two_invocations_store_bit_identical_runs(write_experiments, tmp_path, harness_env):
    raw = {**copy.deepcopy(IRIS_NET), "name": "twice", "seeds": [0, 1, 2]}
    raw["fit"] = {"epochs": 5, "batch_size": 16, "shuffle": True}
    raw["search"] = {"grid": {"compile.optimizer.learning_rate": [0.001, 0.1]}}
    directory = write_experiments([raw])
    env = {**harness_env, "HARNESS_CACHE": str(tmp_path / "cache")}
    stored = []
    for attempt in ("a", "b"):
        done = subprocess.run(
            [
                PYTHON,
                "-m",
                "harness",
                "--experiments",
                str(directory),
                "run",
                "twice",
                "--results",
                str(tmp_path / attempt),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        assert "6 runs to do" in done.stderr
        runs = pd.concat(pd.read_csv(p) for p in sorted((tmp_path / attempt).glob("*/runs.csv")))
        history = pd.concat(pd.read_csv(p) for p in sorted((tmp_path / attempt).glob("*/history.csv")))
        stored.append((runs.drop(columns=TIMING).to_csv(index=False), history.to_csv(index=False)))
        assert set(runs["pipeline"]) == {"jax.vmap group of 6"}  # both learning rates in one program
        assert set(runs["backend"]) == {"jax"}
    assert stored[0] == stored[1]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["iris_baseline", "overfit_baseline"])
def test_twenty_seeds_agree_with_the_per_run_engine(experiment, tmp_path, harness_env):
    """Shuffling on: the two engines' mean test accuracy and loss over 20 seeds agree (two-sample 95% CI)."""
    from scipy import stats

    runs = {}
    for engine in ("vectorized", "per-run"):
        command = [PYTHON, "-m", "harness", "run", experiment, "--seeds", "20", "--engine", engine]
        command += ["--results", str(tmp_path / engine)]
        done = subprocess.run(
            command, cwd=ROOT, env=harness_env, capture_output=True, text=True, timeout=3600
        )
        assert done.returncode == 0, done.stderr
        runs[engine] = pd.read_csv(tmp_path / engine / experiment / "runs.csv")
    assert runs["vectorized"]["pipeline"].str.startswith("jax.vmap group of 20").all()
    for column in ("test_accuracy", "test_loss"):
        a, b = runs["vectorized"][column], runs["per-run"][column]
        interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        print(
            f"{experiment} {column}: vectorized {a.mean():.4f}, per-run {b.mean():.4f}, "
            f"95% CI of the difference {interval.low:.4f}..{interval.high:.4f}"
        )
        assert interval.low <= 0 <= interval.high, (column, a.mean(), b.mean())


if __name__ == "__main__":
    if sys.argv[1:2] == ["_measure"]:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("KERAS_BACKEND", "jax")
        print(json.dumps(_measure(sys.argv[2])))


def test_a_call_size_already_compiled_is_reused_while_its_padding_costs_less_than_a_compile():
    """5 runs on 2 devices fit calls of 6; a program compiled for calls of 10 pads 4 more runs, far
    cheaper than compiling again (the doctor's first extension step did so, 11 s); one for calls of 64
    pads more than a compile costs."""
    from harness.training.vectorized import _run_axis

    assert _run_axis([5], 2, 256) == 6
    assert _run_axis([5], 2, 256, compiled=[10]) == 10
    assert _run_axis([5], 2, 256, compiled=[64]) == 6
    assert _run_axis([5], 2, 256, compiled=[9]) == 6  # not a multiple of the devices
    assert _run_axis([140], 2, 20) == 20
    assert _run_axis([140], 2, 9) == 8  # never above the limit


def test_calls_of_a_large_network_hold_few_runs_and_pad_the_longer_runs_least():
    """A call of the 140k-weight network costs under a tenth of a run: the suite's 140 runs (100, 20 of
    more data and 20 that may stop) go in calls of 4 without a padded run, not 8 (12 padded); a padded
    run of more data costs its 19 steps an epoch; one run a device trains 1.4 times slower a run."""
    from harness.training.vectorized import _run_axis

    assert _run_axis([100, 20, 20], 2, 9) == 8  # a call costing a run: fewer calls
    assert _run_axis([100, 20, 20], 2, 9, call_runs=0.04) == 4
    assert _run_axis([16, 6], 2, 9, call_runs=0.04) == 8
    assert _run_axis([16, 6], 2, 9, call_runs=0.04, work=[5, 19]) == 6
    assert _run_axis([2], 2, 256, call_runs=0.04) == 2
    assert _run_axis([5], 2, 256, call_runs=0.04) == 6  # not 3 calls of one run a device


def test_what_is_left_of_a_sizes_partitions_shares_calls_rather_than_padding():
    """Runs of one training size that may stop, or have other epochs, fill their own calls; what is left
    of each goes in calls together: 6 runs and 6 that may stop in calls of 4 make 3 calls, not 4 with 4
    padded runs. Another size never shares a call."""
    from harness.training.vectorized import _calls

    partitions = {
        (0, 30, False): [0, 1, 2, 3, 4, 5],
        (0, 30, True): [6, 7, 8, 9, 10, 11],
        (1, 30, False): [12],
    }
    assert _calls(partitions, 4) == [
        ([0, 1, 2, 3], 0),
        ([6, 7, 8, 9], 0),
        ([4, 5, 10, 11], 0),
        ([12, 12, 12, 12], 1),
    ]
    assert _calls({(0, 30, False): [0, 1]}, 2) == [([0, 1], 0)]


def test_one_sort_shuffles_a_runs_own_rows_as_jax_permutation_and_leaves_the_padding_in_order():
    """The program shuffles every training size with one sort: its first `own` rows are
    `jax.random.permutation(key, own)`, bit for bit, then `own..largest-1`."""
    import jax
    import numpy as np

    from harness.training.vectorized import _one_sort, _shuffled

    assert _one_sort(364) and not _one_sort(5000)
    for seed in range(5):
        for own in (1, 8, 72, 291, 364):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), own)
            expected = np.concatenate([jax.random.permutation(key, own), np.arange(own, 364)])
            np.testing.assert_array_equal(_shuffled(key, own, 364), expected)


def test_a_penalty_no_run_of_the_call_has_is_not_summed_and_otherwise_is_the_plain_terms(measured):
    """A call sums an L1/L2 term only when one of its runs has the factor nonzero; where it does, the
    value and gradient are the plain term's, bit for bit."""
    penalty = measured["penalty"]
    assert penalty["same"] == [True] * 4
    assert [s[0] for s in penalty["skipped"]] == [0.0, 0.0] and all(s[1] > 0 for s in penalty["skipped"])
    assert penalty["call"] == {"size": 1, "l1": [False, True], "l2": [False, True]}
