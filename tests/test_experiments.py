"""The shipped experiment modules: what they define is what was measured (their spec hashes, and
iris_baseline's numbers on each engine), and their shared helpers."""

import csv
import hashlib
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT

from harness import registry

# Spec hashes of the shipped experiments (what is trained). A change here makes their stored
# runs stale: change an entry only when the experiment is meant to change.
SHIPPED_HASHES = {
    "activation_relu": "614a4063d10a",
    "activation_sigmoid": "beed0ddbb60f",
    "activation_tanh": "3133284136b3",
    "deep_sigmoid": "d925dbcf760f",
    "deep_sigmoid_adam": "992d372b6a4b",
    "deep_sigmoid_batchnorm": "b1549dcc8b03",
    "deep_sigmoid_he": "86005f3c7d7e",
    "deep_sigmoid_relu": "02b6e5298b74",
    "iris_baseline": "b83ca0486460",
    "iris_lr_grid[learning_rate=0.0001,class_name=adam]": "4194bfb6a495",
    "iris_lr_grid[learning_rate=0.0001,class_name=sgd]": "65ad33919bb0",
    "iris_lr_grid[learning_rate=0.001,class_name=adam]": "ea7a351c4528",
    "iris_lr_grid[learning_rate=0.001,class_name=sgd]": "c47b806bee92",
    "iris_lr_grid[learning_rate=0.01,class_name=adam]": "a21439a6d248",
    "iris_lr_grid[learning_rate=0.01,class_name=sgd]": "1e51eb25e6f5",
    "iris_lr_grid[learning_rate=0.1,class_name=adam]": "9a88f64cc4c6",
    "iris_lr_grid[learning_rate=0.1,class_name=sgd]": "e702521334d2",
    "iris_lr_grid[learning_rate=1.0,class_name=adam]": "794c091c04d7",
    "iris_lr_grid[learning_rate=1.0,class_name=sgd]": "7a16bbc63f8a",
    "iris_lr_grid[learning_rate=100.0,class_name=adam]": "77fa2c0c99b1",
    "iris_lr_grid[learning_rate=100.0,class_name=sgd]": "ca58d4ec9fce",
    "iris_lr_random[learning_rate=0.000116]": "040c2bdb5e0f",
    "iris_lr_random[learning_rate=0.000146]": "28e478333304",
    "iris_lr_random[learning_rate=0.0012]": "e0578bd29da0",
    "iris_lr_random[learning_rate=0.0267]": "71a33627503a",
    "iris_lr_random[learning_rate=0.0353]": "b90529e978da",
    "iris_lr_random[learning_rate=0.0828]": "6a1f3afad52f",
    "iris_lr_random[learning_rate=0.179]": "97ffc5da8205",
    "iris_lr_random[learning_rate=0.448]": "4e160f7131a5",
    "loss_crossentropy": "8fbc335504bc",
    "loss_mse": "1695fa61cedd",
    "lr_too_high": "c2e61bb72e26",
    "lr_too_high_clipnorm": "bcf8297a1263",
    "lr_too_high_lower": "46dc9b063d47",
    "overfit_baseline": "0970dd01335d",
    "overfit_dropout": "7f143ad25937",
    "overfit_early_stopping": "f8f26c095d2e",
    "overfit_l1": "9a37407df7e5",
    "overfit_l2": "f30470a65356",
    "overfit_l2_dropout": "7e5ef3be8503",
    "overfit_more_data": "ba6d706934b2",
    "overfit_smaller_model": "1884db4dec4c",
    "slow_baseline": "9848b8f300b5",
    "slow_batch_128": "1ef7690df4b3",
    "slow_batch_32": "2c7951e8158b",
    "slow_early_stopping": "d7e7953e0315",
    "underfit_adam": "c0a380b7940e",
    "underfit_baseline": "a01f7fd84534",
    "underfit_higher_lr": "e6a8f1405baa",
    "underfit_less_regularisation": "9fdb04c032cd",
    "underfit_more_capacity": "0b846c209f93",
    "underfit_more_epochs": "bd50451c6dd0",
}


def test_shipped_experiments_train_what_they_always_did():
    specs = registry.discover()
    assert {name: specs[name].hash for name in SHIPPED_HASHES if name in specs} == SHIPPED_HASHES


# iris_baseline's runs.csv as each engine wrote it before the training side moved to harness/training
# (tests/pinned/), but for the columns that are times and process facts; and its history.csv's digest.
# The engine's digest moved once (2026-12-04), when a partial batch began to train as a full one whose
# extra rows weigh 0: the epoch's training loss moved by one float32 ulp in 152 of its 500 epochs,
# every other number of history.csv and runs.csv stayed bit for bit.
PINNED = Path(__file__).parent / "pinned"
VARYING = ("fit_seconds", "seconds_per_epoch", "pid", "peak_rss_mb", "finished_at")
HISTORY_SHA256 = {
    "vectorized": "0d9e757bb0be1af3865914e0b6c6199402af6398f60c07cdf6de30360124e953",
    "per-run": "4a816c2c68ab9011efa53478e0e20e2a760b1ca3e304b43c0594fef76b717706",
}


def fixed_columns(path):
    """A runs.csv's rows as exact strings, without the columns that vary from run to run."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in VARYING} for row in csv.DictReader(f)]


@pytest.mark.parametrize(
    "engine", ["vectorized", pytest.param("per-run", marks=pytest.mark.slow)]
)  # per-run: 5 Keras fits of 100 epochs on TensorFlow
def test_iris_baseline_trains_the_very_numbers_it_always_did(engine, tmp_path, harness_env):
    """Bit for bit: every loss, accuracy and best epoch, and the software versions they were measured
    with (a new version of Keras, JAX, TensorFlow, NumPy or scikit-learn shows here first)."""
    command = [
        PYTHON,
        "-m",
        "harness",
        "run",
        "iris_baseline",
        "--engine",
        engine,
        "--results",
        str(tmp_path),
    ]
    command += ["--backend", "tensorflow"] if engine == "per-run" else []  # what the numbers were made on
    done = subprocess.run(command, cwd=ROOT, env=harness_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "iris_baseline"
    assert fixed_columns(folder / "runs.csv") == fixed_columns(PINNED / f"iris_baseline.{engine}.csv")
    assert hashlib.sha256((folder / "history.csv").read_bytes()).hexdigest() == HISTORY_SHA256[engine]


def test_common_helpers_are_not_an_experiment_module():
    folder = registry.shipped_dir()
    assert (folder / "_common.py").is_file()
    assert all(not source.endswith("_common.py") for _, source in registry.raw_experiments([folder]))


def test_each_directory_gets_its_own_helper_module(tiny_spec, write_experiments, tmp_path):
    for folder, units in (("a", 5), ("b", 7)):
        d = write_experiments(
            f"from _common import WIDTH\nEXPERIMENTS = [{{**{tiny_spec!r}, 'name': '{folder}'}}]\n"
            "EXPERIMENTS[0]['model'][0]['units'] = WIDTH\n",
            directory=tmp_path / folder,
        )
        (d / "_common.py").write_text(f"WIDTH = {units}\n")
    specs = registry.discover([tmp_path / "a", tmp_path / "b"])
    assert (specs["a"].model[0]["units"], specs["b"].model[0]["units"]) == (5, 7)
