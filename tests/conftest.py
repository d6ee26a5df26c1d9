"""Shared fixtures: tiny valid specs, temporary experiment directories, bad-spec cases.

Nothing here imports Keras; modules that need it take it from `harness.backend`, the one
place that brings it up (quiet, one thread), in any order.
"""

import copy
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# -- a tiny valid spec ------------------------------------------------------------------

TINY = {
    "name": "tiny",
    "description": "a tiny iris net for tests",
    "data": {"dataset": "iris"},
    "model": [
        {"class_name": "Dense", "units": 4, "activation": "relu"},
        {"class_name": "Dense", "units": 3, "activation": "softmax"},
    ],
    "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 2, "batch_size": 16},
    "seeds": [0],
    "tags": ["tiny"],
}
# the article's iris network (TINY's layers) for 30 epochs, unshuffled, 2 seeds
IRIS_NET = {
    **TINY,
    "name": "iris_net",
    "fit": {"epochs": 30, "batch_size": 10, "shuffle": False},
    "seeds": [0, 1],
}


def changed(spec, changes):
    """A deep copy of `spec` with {dotted.path: value} set (a plain setter, not the harness's)."""
    out = copy.deepcopy(spec)
    for path, value in changes.items():
        parts = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = out
        for part in parts[:-1]:
            if isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                node = node[part]
        node[parts[-1]] = copy.deepcopy(value)
    return out


@pytest.fixture
def tiny_spec():
    """A fresh copy of a tiny valid experiment dict (iris, 4-3 net, 2 epochs, one seed)."""
    return copy.deepcopy(TINY)


@pytest.fixture
def write_experiments(tmp_path):
    """write_experiments(experiments, module="exps.py", directory=None) -> the directory.

    Writes a module declaring `EXPERIMENTS = [...]` (or, given a string, that source text)
    into a temporary experiments directory (default: tmp_path / "experiments").
    """

    def write(experiments, module="exps.py", directory=None):
        directory = Path(directory or tmp_path / "experiments")
        directory.mkdir(parents=True, exist_ok=True)
        text = experiments if isinstance(experiments, str) else f"EXPERIMENTS = {experiments!r}\n"
        (directory / module).write_text(text)
        return directory

    return write


# -- stored results without training: one runs.csv row, its history, a results folder ----------


def run_row(spec, seed, fold=None, spec_hash=None, **values):
    """A runs.csv row of `spec` (a Spec, or an experiment name) for `seed` (and `fold`): status ok and
    plausible numbers, any of them replaced by `values`."""
    name = spec if isinstance(spec, str) else spec.name
    row = {
        "experiment": name,
        "seed": seed,
        "spec_hash": spec_hash or (getattr(spec, "hash", None) or "abc123"),
        "status": "ok",
        "error": "",
        "epochs_run": 10,
        "best_epoch": 8,
        "train_loss": 0.20,
        "train_accuracy": 0.95,
        "val_loss": 0.25,
        "val_accuracy": 0.90,
        "test_loss": 0.30,
        "test_accuracy": 0.90,
        "fit_seconds": 1.5,
        **({} if fold is None else {"fold": fold}),
    }
    row.update(values)
    return row


def history_rows(row, epochs=None, **curves):
    """history.csv rows for a runs.csv `row`: per epoch e, loss 1/e, accuracy 0.95, val_loss 1.2/e and
    val_accuracy 0.9, or `curves` {column: function of e}."""
    curves = curves or {
        "loss": lambda e: 1.0 / e,
        "accuracy": lambda e: 0.95,
        "val_loss": lambda e: 1.2 / e,
        "val_accuracy": lambda e: 0.9,
    }
    keys = {k: row[k] for k in ("experiment", "seed", "spec_hash", "fold") if k in row}
    return [
        {**keys, "epoch": e, **{column: f(e) for column, f in curves.items()}}
        for e in range(1, (epochs or int(row.get("epochs_run", 10))) + 1)
    ]


def store_results(root, spec, rows, history=None):
    """Write `spec`'s folder under `root` as a run would: spec.json, runs.csv (`rows`) and history.csv
    (`history`, default: `history_rows` of each row); returns the folder."""
    import pandas as pd

    folder = Path(root) / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(spec.to_json())
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
    history = history if history is not None else [h for r in rows for h in history_rows(r)]
    pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
    return folder


@pytest.fixture
def fake_results():
    """The helpers that write results without training: .row (run_row), .history (history_rows) and
    .store (store_results)."""
    from types import SimpleNamespace

    return SimpleNamespace(row=run_row, history=history_rows, store=store_results)


# What the harness itself writes to stderr; other lines there are other libraries'.
OWN_LINE_STARTS = ("error:", "note:", "Traceback", "interrupted")
# TensorFlow's and abseil's start-up lines, which harness.backend keeps off the terminal.
START_UP_LINES = (
    "All log messages before absl::InitializeLog",
    "oneDNN custom operations",
    "This TensorFlow binary",
)


def own_lines(err):
    """The lines of `err` the harness wrote itself (its errors, notes, a traceback), in order."""
    return [line for line in err.splitlines() if line.startswith(OWN_LINE_STARTS)]


def start_up_lines(err):
    """TensorFlow's start-up lines in `err`, which should never reach the terminal."""
    return [line for line in err.splitlines() if any(s in line for s in START_UP_LINES)]


@pytest.fixture(autouse=True)
def _no_user_experiment_dirs(monkeypatch):
    """Tests see the project's experiments/ plus what they add, never the user's own dirs."""
    monkeypatch.delenv("HARNESS_EXPERIMENTS", raising=False)


@pytest.fixture
def keras_ready():
    """Keras, brought up the harness's way, for in-process commands that reach it."""
    from harness.training import backend  # noqa: F401


@pytest.fixture
def harness_env():
    """Environment for `python -m harness` subprocesses: this checkout importable, and
    nothing set that the harness should set itself (TensorFlow's log level)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_EXPERIMENTS", "TF_CPP_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


PYTHON = sys.executable

# -- bad specs, one per class of mistake, with the text the error must carry ------------
# (id, changes to TINY, field path in the message, fragments the message must contain)

_DROPOUT = lambda rate: [  # noqa: E731
    {"class_name": "Dense", "units": 4, "activation": "relu"},
    {"class_name": "Dropout", "rate": rate},
    {"class_name": "Dense", "units": 3, "activation": "softmax"},
]
_ONEHOT = {"data.labels": "onehot", "compile.loss": "categorical_crossentropy"}

BAD_SPECS = [
    # repeated k-fold
    ("cv_one_fold", {"data.cv": {"folds": 1}}, "data.cv.folds", ["got 1", "integer >= 2"]),
    ("cv_not_a_dict", {"data.cv": 5}, "data.cv", ["got 5", '{"folds": K, "repeats": R}']),
    ("cv_zero_repeats", {"data.cv": {"folds": 3, "repeats": 0}}, "data.cv.repeats", ["got 0", ">= 1"]),
    ("cv_unknown_field", {"data.cv": {"folds": 3, "repeat": 2}}, "data.cv.repeat", ["unknown field"]),
    (
        "cv_with_resplit",
        {"data.cv": {"folds": 3}, "data.resplit": True},
        "data.resplit",
        ["cannot be combined with data.cv"],
    ),
    # unknown names that need no Keras
    (
        "unknown_dataset",
        {"data.dataset": "irsi"},
        "data.dataset",
        ["got 'irsi'", "allowed: iris, wine, breast_cancer, digits, csv", "Did you mean 'iris'?"],
    ),
    (
        "unknown_section",
        {"modle": []},
        "modle",
        ["unknown section 'modle'", "allowed:", "Did you mean 'model'?"],
    ),
    (
        "unknown_fit_field",
        {"fit.epoch": 3},
        "fit.epoch",
        ["unknown field", "allowed: epochs, batch_size", "Did you mean 'epochs'?"],
    ),
    (
        "unknown_labels",
        {"data.labels": "one_hot"},
        "data.labels",
        ["got 'one_hot'", "allowed: integer, onehot", "Did you mean 'onehot'?"],
    ),
    (
        "unknown_scale",
        {"data.scale": "standart"},
        "data.scale",
        ["got 'standart'", "'standard', 'minmax' or null", "Did you mean 'standard'?"],
    ),
    # wrong types
    ("units_str", {"model.0.units": "4"}, "model.0.units", ["got '4'", "must be a positive integer"]),
    ("units_float", {"model.0.units": 2.5}, "model.0.units", ["got 2.5", "must be a positive integer"]),
    ("units_bool", {"model.0.units": True}, "model.0.units", ["got True", "must be a positive integer"]),
    ("epochs_str", {"fit.epochs": "10"}, "fit.epochs", ["got '10'", "must be a positive integer"]),
    ("fit_not_dict", {"fit": [1, 2]}, "fit", ["got [1, 2]", "must be a dict"]),
    ("model_not_list", {"model": {"class_name": "Dense"}}, "model", ["must be a non-empty list of layers"]),
    ("model_empty", {"model": []}, "model", ["got []", "must be a non-empty list of layers"]),
    ("layer_not_dict", {"model.0": "Dense"}, "model.0", ["got 'Dense'", "'class_name'"]),
    (
        "activation_not_str",
        {"model.0.activation": 3},
        "model.0.activation",
        ["got 3", "name of a Keras activation"],
    ),
    ("shuffle_not_bool", {"fit.shuffle": "yes"}, "fit.shuffle", ["got 'yes'", "true or false"]),
    ("loss_not_str", {"compile.loss": 7}, "compile.loss", ["got 7", "name of a Keras loss"]),
    (
        "metrics_not_list",
        {"compile.metrics": "accuracy"},
        "compile.metrics",
        ["got 'accuracy'", "list of metric names"],
    ),
    (
        "learning_rate_negative",
        {"compile.optimizer": {"class_name": "adam", "learning_rate": -0.1}},
        "compile.optimizer.learning_rate",
        ["got -0.1", "positive number"],
    ),
    ("seeds_zero", {"seeds": 0}, "seeds", ["got 0", "positive count or a non-empty list"]),
    ("seeds_repeated", {"seeds": [1, 1]}, "seeds", ["got [1, 1]", "distinct non-negative integers"]),
    ("tags_str", {"tags": "iris"}, "tags", ["got 'iris'", "list of strings"]),
    ("name_with_slash", {"name": "a/b"}, "name", ["got 'a/b'", "no '/'"]),
    # out-of-range numbers
    ("units_zero", {"model.0.units": 0}, "model.0.units", ["got 0", "must be a positive integer"]),
    ("units_negative", {"model.0.units": -3}, "model.0.units", ["got -3", "must be a positive integer"]),
    (
        "dropout_one",
        {"model": _DROPOUT(1.0)},
        "model.1.rate",
        ["got 1.0", "a dropout rate must be in [0, 1)"],
    ),
    (
        "dropout_negative",
        {"model": _DROPOUT(-0.1)},
        "model.1.rate",
        ["got -0.1", "a dropout rate must be in [0, 1)"],
    ),
    (
        "dropout_str",
        {"model": _DROPOUT("0.5")},
        "model.1.rate",
        ["got '0.5'", "a dropout rate must be in [0, 1)"],
    ),
    ("epochs_zero", {"fit.epochs": 0}, "fit.epochs", ["got 0", "must be a positive integer"]),
    ("epochs_negative", {"fit.epochs": -5}, "fit.epochs", ["got -5", "must be a positive integer"]),
    ("batch_size_zero", {"fit.batch_size": 0}, "fit.batch_size", ["got 0", "must be a positive integer"]),
    (
        "batch_size_negative",
        {"fit.batch_size": -8},
        "fit.batch_size",
        ["got -8", "must be a positive integer"],
    ),
    ("test_size_zero", {"data.test_size": 0}, "data.test_size", ["got 0", "strictly between 0 and 1"]),
    ("test_size_one", {"data.test_size": 1.0}, "data.test_size", ["got 1.0", "strictly between 0 and 1"]),
    ("test_size_above", {"data.test_size": 1.5}, "data.test_size", ["got 1.5", "strictly between 0 and 1"]),
    ("test_size_str", {"data.test_size": "0.2"}, "data.test_size", ["got '0.2'", "strictly between 0 and 1"]),
    (
        "validation_size_zero",
        {"data.validation_size": 0},
        "data.validation_size",
        ["got 0", "strictly between 0 and 1"],
    ),
    (
        "validation_size_one",
        {"data.validation_size": 1},
        "data.validation_size",
        ["got 1", "strictly between 0 and 1"],
    ),
    (
        "validation_size_negative",
        {"data.validation_size": -0.2},
        "data.validation_size",
        ["got -0.2", "strictly between 0 and 1"],
    ),
    # the output layer against the data set, the loss against the labels
    (
        "output_units_mismatch",
        {"model.1.units": 4},
        "model.1.units",
        ["got 4", "one unit per class", "iris has 3 classes"],
    ),
    (
        "sparse_loss_onehot_labels",
        {"data.labels": "onehot"},
        "compile.loss",
        ["got 'sparse_categorical_crossentropy'", "integer labels", "'onehot'", "'categorical_crossentropy'"],
    ),
    (
        "categorical_loss_integer_labels",
        {"compile.loss": "categorical_crossentropy"},
        "compile.loss",
        ["got 'categorical_crossentropy'", "needs data.labels 'onehot'", "'sparse_categorical_crossentropy'"],
    ),
    (
        "mse_integer_labels",
        {"compile.loss": "mse"},
        "compile.loss",
        ["got 'mse'", "needs data.labels 'onehot'"],
    ),
    (
        "binary_loss_three_classes",
        {"compile.loss": "binary_crossentropy"},
        "model.1.units",
        ["got 3", "binary_crossentropy needs two classes and one output unit", "iris has 3 classes"],
    ),
    (
        "binary_loss_three_classes_one_unit",
        {"compile.loss": "binary_crossentropy", "model.1.units": 1},
        "model.1.units",
        ["got 1", "binary_crossentropy needs two classes", "iris has 3 classes"],
    ),
    # a validation metric monitored without a validation split
    (
        "early_stopping_val_loss_no_validation",
        {"fit.callbacks": [{"class_name": "EarlyStopping", "monitor": "val_loss", "patience": 2}]},
        "fit.callbacks.0.monitor",
        ["got 'val_loss'", "data.validation_size is null"],
    ),
    (
        "early_stopping_default_monitor_no_validation",  # EarlyStopping monitors val_loss by default
        {"fit.callbacks": [{"class_name": "EarlyStopping", "patience": 2}]},
        "fit.callbacks.0.monitor",
        ["'val_loss'", "data.validation_size is null"],
    ),
]

# Keras names: caught by harness.models.check, which needs Keras.
KERAS_BAD_SPECS = [
    (
        "unknown_layer",
        {"model.0.class_name": "Dens"},
        "model.0.class_name",
        ["'Dens' is not a Keras layer", "keras.layers", "Did you mean 'Dense'?"],
    ),
    (
        "unknown_activation",
        {"model.0.activation": "rellu"},
        "model.0.activation",
        ["'rellu' is not a Keras activation", "allowed: ", "relu, relu6", "Did you mean 'relu'?"],
    ),
    (
        "unknown_optimizer",
        {"compile.optimizer": "adamm"},
        "compile.optimizer.class_name",
        ["'adamm' is not a Keras optimizer", "allowed: ", "sgd", "Did you mean 'adam'?"],
    ),
    (
        "unknown_loss",
        {"compile.loss": "sparse_categorical_crossentropyy"},
        "compile.loss",
        [
            "'sparse_categorical_crossentropyy' is not a Keras loss",
            "allowed include: ",
            "Did you mean 'sparse_categorical_crossentropy'?",
        ],
    ),
    (
        "unknown_callback",
        {"fit.callbacks": [{"class_name": "EarlyStoping", "monitor": "loss"}]},
        "fit.callbacks.0.class_name",
        [
            "'EarlyStoping' is not a Keras callback",
            "allowed: ",
            "ReduceLROnPlateau",
            "Did you mean 'EarlyStopping'?",
        ],
    ),
    (
        "unknown_layer_argument",
        {"model.0.unit": 4},
        "model.0.unit",
        ["Dense has no argument 'unit'", "Did you mean 'units'?"],
    ),
    (
        "unknown_optimizer_argument",
        {"compile.optimizer": {"class_name": "adam", "learning_rat": 0.1}},
        "compile.optimizer.learning_rat",
        ["Adam has no argument 'learning_rat'", "Did you mean 'learning_rate'?"],
    ),
    (
        "unknown_callback_argument",
        {"fit.callbacks": [{"class_name": "EarlyStopping", "monitor": "loss", "patiense": 3}]},
        "fit.callbacks.0.patiense",
        ["EarlyStopping has no argument 'patiense'", "Did you mean 'patience'?"],
    ),
    (
        "unknown_metric",
        {"compile.metrics": ["acuracy"]},
        "compile.metrics.0",
        ["'acuracy' is not a Keras metric", "Did you mean 'accuracy'?"],
    ),
]


def _ids(cases):
    return [case[0] for case in cases]


@pytest.fixture(params=BAD_SPECS, ids=_ids(BAD_SPECS))
def bad_spec(request):
    """(raw experiment dict, field path, message fragments) for each class of bad spec."""
    _, changes, path, fragments = request.param
    return changed(TINY, changes), path, fragments


@pytest.fixture(params=KERAS_BAD_SPECS, ids=_ids(KERAS_BAD_SPECS))
def keras_bad_spec(request):
    """Like `bad_spec`, for mistakes only Keras can tell (unknown layer, activation, ...)."""
    _, changes, path, fragments = request.param
    return changed(TINY, changes), path, fragments


def assert_names_problem(message, name, path, fragments):
    """The message names the experiment and the field, and carries every fragment."""
    assert f"experiment {name!r}" in message, message
    assert f"{path}: " in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.fixture
def check_message():
    return assert_names_problem


def descendants(pid):
    """Ids of every process below `pid` (from /proc: Linux)."""
    children = {}
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read() if entry.isdigit() else None
        except OSError:
            continue
        if stat:
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
