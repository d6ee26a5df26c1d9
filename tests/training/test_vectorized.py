"""harness.engine and harness.groups: many runs as one JAX program, equal to model.fit run by run.

Keras picks its backend once per process and the rest of the test session imports it on
TensorFlow, so everything that needs Keras on JAX runs in one subprocess (this file run as a
script with KERAS_BACKEND=jax), which prints its measurements as JSON; the tests assert on
them. The planner needs neither Keras nor JAX and is tested here directly.
"""

import copy
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import PYTHON, ROOT, TINY

from harness import groups
from harness.errors import HarnessError
from harness.spec import from_dict

IRIS = {
    **TINY,
    "name": "iris_net",
    "model": [
        {"class_name": "Dense", "units": 4, "activation": "relu"},
        {"class_name": "Dense", "units": 3, "activation": "softmax"},
    ],
    "fit": {"epochs": 30, "batch_size": 10, "shuffle": False},
    "seeds": [0, 1],
}
# L2 and BatchNormalization, two metrics, a validation part (breast_cancer, 2 classes)
L2_BN = {
    **TINY,
    "name": "l2_bn",
    "data": {"dataset": "breast_cancer", "validation_size": 0.2, "train_fraction": 0.3},
    "model": [
        {
            "class_name": "Dense",
            "units": 32,
            "activation": "relu",
            "kernel_regularizer": {"class_name": "L2", "l2": 0.01},
        },
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
# 120 training samples in batches of 16: seven full batches and one of 8
UNEVEN = {**IRIS, "name": "uneven", "fit": {"epochs": 30, "batch_size": 16, "shuffle": False}}
DROPOUT = {
    **L2_BN,
    "name": "dropout",
    "model": [L2_BN["model"][0], {"class_name": "Dropout", "rate": 0.5}, *L2_BN["model"][1:]],
}
EARLY = {
    **L2_BN,
    "name": "early",
    "model": [{"class_name": "Dense", "units": 64, "activation": "relu"}, L2_BN["model"][2]],
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
    **IRIS,
    "name": "sgd",
    "data": {"dataset": "iris", "labels": "onehot"},
    "model": [IRIS["model"][0], {"class_name": "Dense", "units": 3}],
    "compile": {
        "optimizer": {"class_name": "sgd", "learning_rate": 0.01},
        "loss": "mean_squared_error",
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 20, "batch_size": 16, "shuffle": True},
}
TIMING = ["fit_seconds", "seconds_per_epoch", "pid", "peak_rss_mb", "finished_at"]


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
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-12)))


# -- measured in a JAX process ----------------------------------------------------------


def _measure():
    """Everything that needs Keras on JAX: the engine against model.fit (runner.run_seed)."""
    import numpy as np

    from harness import engine, models, runner

    out = {}
    # initial weights: the engine's per-seed build against the per-run path's, built in another order
    for raw in (IRIS, DROPOUT):
        spec = _spec(raw)
        seeds = [3, 0, 7]
        engine_side = [engine._initial_state(spec, s, 30 if raw is DROPOUT else 4) for s in seeds]
        same = True
        for s, (trainable, non_trainable) in reversed(list(zip(seeds, engine_side))):
            runner.seed_everything(s)
            model = models.compile_model(models.build(spec, 30 if raw is DROPOUT else 4), spec)
            theirs = [np.asarray(v.value) for v in model.trainable_variables + model.non_trainable_variables]
            same = same and all(np.array_equal(a, b) for a, b in zip(trainable + non_trainable, theirs))
            same = same and len(theirs) == len(trainable + non_trainable)
        out[f"initial_equal.{raw['name']}"] = same

    # per-epoch numbers against model.fit on JAX, shuffle off, no dropout
    for raw in (IRIS, L2_BN, UNEVEN):
        spec = _spec(raw)
        grouped = engine.run_group([(spec, s) for s in spec.seeds])
        worst, rows = {}, []
        for seed, (row, history) in zip(spec.seeds, grouped):
            keras_row, keras_history = runner.run_seed(spec, seed)
            assert len(history) == len(keras_history)
            for key in keras_history[0]:
                if key not in ("experiment", "seed", "spec_hash", "epoch"):
                    values = [h[key] for h in keras_history], [h.get(key) for h in history]
                    worst[key] = max(worst.get(key, 0.0), _relative(*values))
            rows.append((keras_row, row))
        out[f"fit.{raw['name']}"] = {
            "worst": worst,
            "history_columns": [list(keras_history[0]), list(history[0])],
            "row_columns": [list(rows[0][0]), list(rows[0][1])],
            "rows": [[{k: r[k] for k in r if k not in TIMING} for r in pair] for pair in rows],
        }

    # early stopping, each configuration against Keras' EarlyStopping on the same curve
    for label, stopper in STOPPERS.items():
        spec = _spec(EARLY, **{"fit.callbacks": [stopper]})
        grouped = engine.run_group([(spec, s) for s in spec.seeds])
        pairs = []
        for seed, (row, _) in zip(spec.seeds, grouped):
            keras_row, _ = runner.run_seed(spec, seed)
            pairs.append(
                {
                    k: [keras_row[k], row[k]]
                    for k in (
                        "epochs_run",
                        "best_epoch",
                        "test_loss",
                        "val_loss",
                        "train_loss",
                        "test_accuracy",
                    )
                }
            )
        out[f"early.{label}"] = pairs

    # a diverging trial: its mate's numbers equal those it gets beside a healthy trial
    ok = _spec(SGD)
    diverging = _spec({**SGD, "name": "sgd_diverging"}, **{"compile.optimizer.learning_rate": 10.0})
    healthy = _spec({**SGD, "name": "sgd_healthy"}, **{"compile.optimizer.learning_rate": 0.1})
    beside_bad = engine.run_group([(ok, 0), (diverging, 0)])
    beside_good = engine.run_group([(ok, 0), (healthy, 0)])
    out["divergence"] = {
        "statuses": [beside_bad[1][0]["status"], beside_bad[0][0]["status"]],
        "epochs_run": [beside_bad[1][0]["epochs_run"], ok.fit["epochs"]],
        "mate_equal": beside_bad[0][1] == beside_good[0][1]
        and {k: v for k, v in beside_bad[0][0].items() if k not in TIMING}
        == {k: v for k, v in beside_good[0][0].items() if k not in TIMING},
    }

    # group mates: a run's final losses alone, in its experiment's group, and in a bigger mixed group
    spec = _spec({**IRIS, "fit": {"epochs": 30, "batch_size": 10, "shuffle": True}}, seeds=[0, 1, 2, 3, 4])
    other = _spec(
        {**IRIS, "name": "other_lr", "fit": {"epochs": 30, "batch_size": 10, "shuffle": True}},
        **{"compile.optimizer": {"class_name": "adam", "learning_rate": 0.01}},
    )
    alone = [engine.run_group([(spec, s)])[0][0] for s in spec.seeds]
    together = [r for r, _ in engine.run_group([(spec, s) for s in spec.seeds])]
    mixed = [r for r, _ in engine.run_group([(other, 9), *[(spec, s) for s in spec.seeds], (other, 8)])][1:-1]
    largest = 0.0
    for a, b, c in zip(alone, together, mixed):
        for key in ("train_loss", "test_loss"):
            largest = max(largest, _relative(a[key], b[key]), _relative(a[key], c[key]))
    out["group_mates_largest_relative"] = largest
    return out


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_EXPERIMENTS", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(KERAS_BACKEND="jax", HARNESS_CACHE=str(tmp_path_factory.mktemp("cache")), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [PYTHON, __file__, "_measure"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_initial_weights_equal_the_per_run_paths(measured):
    assert measured["initial_equal.iris_net"] is True
    assert measured["initial_equal.dropout"] is True  # Dropout's seed state included


@pytest.mark.parametrize("name", ["iris_net", "l2_bn", "uneven"])
def test_per_epoch_numbers_equal_model_fit(measured, name):
    result = measured[f"fit.{name}"]
    keras_columns, engine_columns = result["history_columns"]
    assert engine_columns == keras_columns
    assert result["row_columns"][0] == result["row_columns"][1]
    assert result["worst"]["loss"] < 1e-5, result["worst"]
    assert max(result["worst"].values()) < 1e-5, result["worst"]
    for keras_row, engine_row in result["rows"]:
        assert engine_row["pipeline"].startswith("jax.vmap group of 2")
        assert engine_row["epochs_run"] == keras_row["epochs_run"]
        assert engine_row["best_epoch"] == keras_row["best_epoch"]
        assert engine_row["dead_relu_layer"] == keras_row["dead_relu_layer"]
        assert engine_row["dead_relu_fraction"] == pytest.approx(keras_row["dead_relu_fraction"])
        for key, value in keras_row.items():
            if isinstance(value, float) and key.endswith(("loss", "accuracy", "penalty", "crossentropy")):
                assert engine_row[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("label", list(STOPPERS))
def test_early_stopping_stops_and_keeps_what_keras_does(measured, label):
    stopped_early = 0
    for pair in measured[f"early.{label}"]:
        assert pair["epochs_run"][1] == pair["epochs_run"][0]
        assert pair["best_epoch"][1] == pair["best_epoch"][0]
        for key in ("test_loss", "val_loss", "train_loss", "test_accuracy"):  # the weights kept
            assert pair[key][1] == pytest.approx(pair[key][0], rel=1e-5), key
        stopped_early += pair["epochs_run"][0] < EARLY["fit"]["epochs"]
    assert stopped_early  # the configuration does stop within the epochs


def test_a_diverging_trial_leaves_its_group_mates_alone(measured):
    result = measured["divergence"]
    assert result["statuses"] == ["diverged", "ok"]
    assert result["epochs_run"][0] < result["epochs_run"][1]
    assert result["mate_equal"] is True


def test_a_runs_numbers_do_not_depend_on_its_group_mates(measured):
    largest = measured["group_mates_largest_relative"]
    print(f"largest relative difference of a final loss across groupings: {largest:.2e}")
    assert largest < 1e-4


def test_two_invocations_store_bit_identical_runs(write_experiments, tmp_path, harness_env):
    raw = {**copy.deepcopy(IRIS), "name": "twice", "seeds": [0, 1, 2]}
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


# -- the planner (no Keras, no JAX) -----------------------------------------------------


def _runs(*specs):
    return [(s, seed, None) for s in specs for seed in s.seeds]


def test_runs_differing_in_seed_and_learning_rate_share_a_group():
    a = _spec(IRIS)
    b = _spec({**IRIS, "name": "b"}, **{"compile.optimizer": {"class_name": "Adam", "learning_rate": 0.1}})
    c = _spec({**IRIS, "name": "c"}, **{"fit.batch_size": 16})
    chunks, single, notes = groups.plan(_runs(a, b, c))
    assert sorted(len(chunk) for chunk in chunks) == [2, 4]
    assert not single and not notes


def test_unsupported_specs_go_to_the_per_run_path_with_a_line_saying_why():
    plateau = {"class_name": "ReduceLROnPlateau", "monitor": "loss"}
    a = _spec({**IRIS, "name": "plateau", "seeds": [0, 1, 2]}, **{"fit.callbacks": [plateau]})
    schedule = {
        "class_name": "adam",
        "learning_rate": {
            "class_name": "ExponentialDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "decay_rate": 0.9,
        },
    }
    b = _spec({**IRIS, "name": "decay", "seeds": [4]}, **{"compile.optimizer": schedule})
    stop = {"class_name": "EarlyStopping", "monitor": "loss"}
    c = _spec({**IRIS, "name": "stops"}, **{"fit.callbacks": [stop, {"class_name": "TerminateOnNaN"}]})
    chunks, single, notes = groups.plan(_runs(a, b, c))
    assert [len(chunk) for chunk in chunks] == [2]
    assert [(s.name, seed) for s, seed, _ in single] == [
        ("plateau", 0),
        ("plateau", 1),
        ("plateau", 2),
        ("decay", 4),
    ]
    assert notes == [
        "per-run path for plateau (seeds 0-2): callback ReduceLROnPlateau "
        "(the engine takes EarlyStopping and TerminateOnNaN)",
        "per-run path for decay (seed 4): a learning-rate schedule",
    ]


def test_large_groups_are_cut_into_equal_chunks_within_the_memory_budget():
    many = _spec(IRIS, seeds=list(range(1100)))
    assert [len(c) for c in groups.plan(_runs(many))[0]] == [367, 367, 366]
    wide = [{"class_name": "Dense", "units": 2048, "activation": "relu"}] * 3 + [IRIS["model"][1]]
    big = _spec({**IRIS, "model": wide}, seeds=list(range(20)))
    sizes = [len(c) for c in groups.plan(_runs(big))[0]]
    assert max(sizes) < 20 and sum(sizes) == 20 and max(sizes) - min(sizes) <= 1


def test_the_engine_choice_follows_engine_and_backend(monkeypatch):
    assert groups.choose("auto") == "vectorized"
    assert groups.choose("auto", backend="jax") == "vectorized"
    assert groups.choose("auto", backend="tensorflow") == "per-run"
    assert groups.choose("auto", verbose=True) == "per-run"
    assert groups.choose("per-run") == "per-run"
    with pytest.raises(HarnessError, match="--engine vectorized trains on JAX; drop --backend tensorflow"):
        groups.choose("vectorized", backend="tensorflow")
    monkeypatch.setattr(groups.importlib.util, "find_spec", lambda name: None)
    assert groups.choose("auto") == "per-run"
    with pytest.raises(HarnessError, match="needs JAX"):
        groups.choose("vectorized")


if __name__ == "__main__":
    if sys.argv[1:] == ["_measure"]:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("KERAS_BACKEND", "jax")
        measured = json.dumps(_measure())
        if os.environ.get("HARNESS_ENGINE_MEASURED"):  # keep a copy for reports
            with open(os.environ["HARNESS_ENGINE_MEASURED"], "w") as f:
                f.write(measured)
        print(measured)


def test_a_group_is_stored_in_one_write_exactly_as_run_by_run(tmp_path):
    from harness import results

    def run(name, seed, epochs, status="ok"):
        row = {"experiment": name, "seed": seed, "spec_hash": "abc", "status": status, "test_loss": seed / 7}
        history = [
            {"experiment": name, "seed": seed, "spec_hash": "abc", "epoch": e + 1, "loss": seed + e / 3}
            for e in range(epochs)
        ]
        return row, history

    stored_before = [run("a", 5, 2), run("a", 1, 3)]
    group = [run("a", 3, 2), run("a", 1, 4), run("b", 0, 1), run("a", 0, 2, "diverged")]
    for root, store in ((tmp_path / "one_by_one", None), (tmp_path / "at_once", results.save_runs)):
        for row, history in stored_before:
            results.save_run(root, row, history)
        if store:
            store(root, group)
        else:
            for row, history in group:
                results.save_run(root, row, history)
    for name in ("a/runs.csv", "a/history.csv", "b/runs.csv", "b/history.csv"):
        assert (tmp_path / "at_once" / name).read_text() == (tmp_path / "one_by_one" / name).read_text(), name
    assert pd.read_csv(tmp_path / "at_once" / "a" / "runs.csv")["seed"].tolist() == [0, 1, 3, 5]


def test_cross_validation_folds_take_the_per_run_path():
    cv = _spec({**IRIS, "name": "cv", "data": {"dataset": "iris", "cv": {"folds": 2}}})
    chunks, single, notes = groups.plan([(cv, 0, 0), (cv, 0, 1), (cv, 1, 0), (cv, 1, 1)])
    assert not chunks and len(single) == 4
    assert notes == ["per-run path for cv (seeds 0, 1): cross-validation folds (data.cv)"]
