"""harness.training.per_run: the Keras `fit` trainer, one run after another, in this process.

Each run is iris, 2-4 epochs: about a second. Where runs are stored, skipped or sent to workers is the
scheduler's (tests/training/test_scheduler.py).
"""

import copy

import numpy as np
import pytest
from conftest import TINY

from harness import results
from harness.spec import from_dict
from harness.training import per_run
from harness.training.backend import keras
from harness.training.groups import Group

METRICS = ["epochs_run", "best_epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "params"]


def make_spec(**changes):
    raw = {**copy.deepcopy(TINY), "fit": {"epochs": 3, "batch_size": 16}, "seeds": [0, 1]}
    for section, values in changes.items():
        raw[section] = {**raw[section], **values} if isinstance(values, dict) else values
    return from_dict(raw)


def group(spec, seeds=None, fold=None):
    return Group(
        tuple((spec, seed, fold) for seed in seeds or spec.seeds), "per-run", keras.backend.backend()
    )


@pytest.fixture(scope="module")
def trained():
    """tiny: 3 epochs, seeds 0 and 1, trained once as a group: (spec, [(row, history)], epochs reported)."""
    spec, epochs = make_spec(), []
    made = list(per_run.train(group(spec), on_epoch=epochs.append))
    return spec, made, epochs


def test_a_run_gives_its_row_and_history(trained):
    spec, made, epochs = trained
    assert [row["seed"] for row, _ in made] == [0, 1]
    row, history = made[0]
    assert set(results.RUN_COLUMNS) - set(row) == {"val_loss", "val_accuracy"}  # no validation split
    assert (row["experiment"], row["spec_hash"], row["status"], row["error"]) == (
        spec.name,
        spec.hash,
        "ok",
        "",
    )
    assert "fold" not in row and row["epochs_run"] == 3 and row["params"] == 35
    assert 0 <= row["test_accuracy"] <= 1 and row["train_loss"] > 0 and row["fit_seconds"] > 0
    assert row["backend"] == keras.backend.backend() and row["deterministic"] is True
    assert row["pipeline"].endswith("steps_per_execution=8")  # 120 training samples in batches of 16
    assert [(h["seed"], h["epoch"]) for h in history] == [(0, 1), (0, 2), (0, 3)]
    assert list(history[0])[:4] == results.HISTORY_KEYS and {"loss", "accuracy"} <= set(history[0])
    assert epochs == [1, 2, 3, 1, 2, 3]  # on_epoch hears each epoch of each run


def test_best_epoch_without_validation_is_the_lowest_training_loss(trained):
    _, made, _ = trained
    for row, history in made:
        assert row["best_epoch"] == int(np.argmin([h["loss"] for h in history])) + 1


def test_the_same_seed_gives_the_same_run_and_another_seed_another(trained):
    spec, made, _ = trained
    again, history = per_run.run(spec, 1)
    assert {k: again[k] for k in METRICS} == {k: made[1][0][k] for k in METRICS}
    assert history == made[1][1]
    assert made[0][0]["train_loss"] != made[1][0]["train_loss"]


def test_a_run_that_raises_is_a_failed_row_and_the_next_run_goes_on(monkeypatch):
    spec = make_spec(fit={"epochs": 2})
    real = per_run.run

    def flaky(spec, seed, *args, **kwargs):
        if seed == 0:
            raise RuntimeError("out of luck\nsecond line")
        return real(spec, seed, *args, **kwargs)

    monkeypatch.setattr(per_run, "run", flaky)
    (failed, no_history), (ok, history) = per_run.train(group(spec))
    assert (failed["seed"], failed["status"], failed["error"]) == (0, "failed", "RuntimeError: out of luck")
    assert (
        failed["spec_hash"] == spec.hash and failed["backend"] == keras.backend.backend() and no_history == []
    )
    assert (ok["seed"], ok["status"], len(history)) == (1, "ok", 2)


def test_validation_fills_the_val_columns_and_best_epoch():
    row, history = per_run.run(make_spec(data={"validation_size": 0.25}, fit={"epochs": 4}), 0)
    val_loss = [h["val_loss"] for h in history]
    assert len(history) == 4 and all(np.isfinite([h["val_accuracy"] for h in history]))
    assert row["best_epoch"] == int(np.argmin(val_loss)) + 1
    # the stored val_loss is that of the final model, i.e. of the last epoch
    assert row["val_loss"] == pytest.approx(val_loss[-1], rel=1e-4, abs=1e-5)


def test_early_stopping_stops_and_history_follows():
    stop = {"class_name": "EarlyStopping", "monitor": "val_loss", "patience": 0, "min_delta": 10.0}
    row, history = per_run.run(
        make_spec(data={"validation_size": 0.25}, fit={"epochs": 5, "callbacks": [stop]}), 0
    )
    # no epoch improves val_loss by 10, so Keras stops after the second epoch (patience 0)
    assert row["epochs_run"] == 2 and len(history) == 2


def test_losses_leave_out_the_weight_penalty():
    compile_ = {
        "optimizer": "adam",
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy", "sparse_categorical_crossentropy"],
    }
    model = copy.deepcopy(TINY["model"])
    model[0]["kernel_regularizer"] = {"class_name": "L2", "l2": 0.1}
    row, _ = per_run.run(make_spec(compile=compile_, model=model, fit={"epochs": 2}), 0)
    assert row["loss_penalty"] > 0.01
    for part in ("train", "test"):
        assert row[f"{part}_loss"] == pytest.approx(row[f"{part}_sparse_categorical_crossentropy"], abs=1e-5)
    plain, _ = per_run.run(from_dict(TINY), 0)
    assert plain["loss_penalty"] == 0.0


def test_a_cv_run_trains_on_its_fold():
    spec = make_spec(data={"cv": {"folds": 3}}, fit={"epochs": 1})
    made = [per_run.run(spec, 0, fold) for fold in range(3)]
    assert [row["fold"] for row, _ in made] == [0, 1, 2]
    assert [(h["seed"], h["fold"], h["epoch"]) for _, history in made for h in history] == [
        (0, 0, 1),
        (0, 1, 1),
        (0, 2, 1),
    ]
    assert len({row["test_loss"] for row, _ in made}) == 3  # three held-out parts


def test_a_spec_without_cv_gives_the_numbers_of_before():
    """Measured on TensorFlow before data.cv existed: same hash, same numbers, no fold key."""
    spec = from_dict(TINY)
    row, history = per_run.run(spec, 1)
    assert spec.hash == "f31214811ee5" and "fold" not in row and "fold" not in history[0]
    if keras.backend.backend() == "tensorflow":
        assert row["train_loss"] == pytest.approx(1.4994670152664185, rel=1e-6)
        assert row["test_loss"] == pytest.approx(1.5145108699798584, rel=1e-6)
        assert row["test_accuracy"] == pytest.approx(0.1, abs=1e-6)
