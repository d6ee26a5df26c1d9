"""harness.training.rows: a finished run's rows, built the same way for either trainer."""

import math

from conftest import TINY

from harness import results
from harness.spec import from_dict
from harness.training import rows

SPEC = from_dict(TINY)


def build(history=None, scores=None, fold=None, **changes):
    history = history or {"loss": [1.0, 0.5], "accuracy": [0.3, 0.6]}
    scores = scores or {"train": {"loss": 0.6, "accuracy": 0.7}, "test": {"loss": 0.8, "accuracy": 0.5}}
    settings = dict(
        penalty=0.0,
        diverged=False,
        dead_relu=lambda: (0.25, "0.dense"),
        fit_seconds=2.0,
        params=35,
        pipeline="a pipeline",
        deterministic=True,
    )
    return rows.build(SPEC, 3, fold, history, scores, **{**settings, **changes})


def test_best_epoch_is_the_lowest_validation_loss_else_training_loss():
    assert rows.best_epoch({"loss": [3.0, 1.0, 2.0]}) == 2
    assert rows.best_epoch({"loss": [3.0, 1.0, 2.0], "val_loss": [1.0, 2.0, 0.5]}) == 3
    assert rows.best_epoch({"loss": [float("nan"), 2.0, 1.0]}) == 3
    assert rows.best_epoch({}) is None
    assert rows.best_epoch({"loss": [float("nan")]}) is None


def test_a_row_has_every_documented_column_and_history_a_row_per_epoch():
    row, history = build()
    assert set(results.RUN_COLUMNS) - set(row) == {"val_loss", "val_accuracy"}  # scores had no val part
    assert (row["experiment"], row["seed"], row["spec_hash"], row["status"]) == ("tiny", 3, SPEC.hash, "ok")
    assert (row["epochs_run"], row["best_epoch"], row["seconds_per_epoch"], row["fit_seconds"]) == (
        2,
        2,
        1.0,
        2.0,
    )
    assert (row["dead_relu_fraction"], row["dead_relu_layer"]) == (0.25, "0.dense")
    assert history == [
        {"experiment": "tiny", "seed": 3, "spec_hash": SPEC.hash, "epoch": 1, "loss": 1.0, "accuracy": 0.3},
        {"experiment": "tiny", "seed": 3, "spec_hash": SPEC.hash, "epoch": 2, "loss": 0.5, "accuracy": 0.6},
    ]
    assert "fold" not in row and "fold" not in history[0]
    row, history = build(fold=1)
    assert row["fold"] == 1 and all(h["fold"] == 1 for h in history)


def test_losses_leave_out_the_weight_penalty_and_keep_it_beside():
    row, _ = build(penalty=0.25)
    assert (row["train_loss"], row["test_loss"], row["loss_penalty"]) == (0.35, 0.55, 0.25)
    assert row["train_accuracy"] == 0.7  # other metrics as evaluated


def test_a_run_that_diverged_is_marked_and_not_asked_for_dead_units():
    asked = []
    row, _ = build(diverged=True, dead_relu=lambda: asked.append(1) or (0.5, "x"))
    assert row["status"] == "diverged" and asked == [] and math.isnan(row["dead_relu_fraction"])
    row, _ = build(scores={"train": {"loss": float("nan")}, "test": {"loss": 1.0}})
    assert row["status"] == "diverged"  # a non-finite final loss is divergence too
