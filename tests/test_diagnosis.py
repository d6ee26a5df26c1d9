"""harness.diagnosis on synthetic curves of each kind: the right label and the numbers behind it."""

import math

import numpy as np
import pandas as pd
import pytest

from harness import diagnosis
from harness.diagnosis import THRESHOLDS, diagnose


def history(loss, accuracy=None, val_loss=None, val_accuracy=None, seed=0):
    """History rows of one seed from per-epoch lists."""
    frame = pd.DataFrame({"seed": seed, "epoch": np.arange(1, len(loss) + 1), "loss": loss})
    for name, values in (("accuracy", accuracy), ("val_loss", val_loss), ("val_accuracy", val_accuracy)):
        if values is not None:
            frame[name] = values
    return frame


def decaying(start, end, epochs):
    return list(start * (end / start) ** (np.arange(epochs) / (epochs - 1)))


def test_every_threshold_is_documented_in_one_dict():
    assert set(THRESHOLDS) == {
        "diverge_loss_ratio",
        "underfit_train_accuracy",
        "underfit_loss_fraction",
        "overfit_gap",
        "overfit_gap_ratio",
        "overfit_best_epoch_fraction",
        "overfit_val_rise",
        "overfit_val_rise_min",
        "plateau_epochs",
        "plateau_rel_change",
        "oscillation_sign_fraction",
        "oscillation_amplitude",
        "vanishing_ratio",
        "exploding_growth",
        "exploding_update_ratio",
        "dead_relu_fraction",
    }


def test_good_fit():
    curves = history(decaying(1.0, 0.10, 50), [0.97] * 50, decaying(1.0, 0.12, 50))
    result = diagnose(
        curves, {"train_loss": 0.10, "val_loss": 0.12, "train_accuracy": 0.97, "test_loss": 0.13}
    )
    assert result.label == "good fit"
    assert result.gap == pytest.approx(0.02) and result.gap_source == "val"
    assert (result.best_epoch, result.last_epoch) == (50, 50)
    assert result.val_rise == pytest.approx(0.0)
    assert result.train_accuracy == 0.97 and result.loss_ratio == pytest.approx(1.0)


def test_overfitting_by_gap():
    curves = history(decaying(1.0, 0.05, 40), [1.0] * 40, decaying(1.0, 0.40, 40))
    result = diagnose(curves, {"train_loss": 0.05, "val_loss": 0.40, "train_accuracy": 1.0})
    assert result.label == "overfitting"
    assert result.gap == pytest.approx(0.35)  # > 0.10 and 0.40 >= 1.5 x 0.05
    assert "0.350" in result.reason


def test_overfitting_by_a_validation_loss_that_turned_up():
    val = decaying(1.0, 0.20, 20) + list(np.linspace(0.20, 0.30, 81)[1:])  # minimum 0.20 at epoch 20 of 100
    curves = history(decaying(1.0, 0.25, 100), [0.95] * 100, val)
    result = diagnose(curves, {"train_loss": 0.25, "val_loss": 0.30, "train_accuracy": 0.95})
    assert result.gap == pytest.approx(0.05)  # too small for the gap rule: the curve decides
    assert result.label == "overfitting"
    assert result.best_epoch == 20 and result.last_epoch == 100
    assert result.val_rise == pytest.approx(0.5)


def test_early_stopping_patience_is_not_overfitting():
    val = decaying(1.0, 0.20, 17) + [0.22, 0.25, 0.26]  # best at 17 of 20: stopped by patience 3
    result = diagnose(
        history(decaying(1.0, 0.18, 20), [0.96] * 20, val),
        {"train_loss": 0.18, "val_loss": 0.20, "train_accuracy": 0.96},
    )
    assert result.val_rise == pytest.approx(0.3)
    assert (
        result.best_epoch == 17
        and result.best_epoch > THRESHOLDS["overfit_best_epoch_fraction"] * result.last_epoch
    )
    assert result.label == "good fit"


def test_underfitting_by_train_accuracy():
    result = diagnose(
        history(decaying(1.1, 0.8, 30), [0.6] * 30),
        {"train_loss": 0.8, "train_accuracy": 0.6, "test_loss": 0.85},
    )
    assert result.label == "underfitting"
    assert result.train_accuracy == 0.6 and result.gap_source == "test" and result.gap == pytest.approx(0.05)
    assert "0.600 < 0.9" in result.reason


def test_underfitting_by_loss_against_chance_level():
    final = {"train_loss": 0.7, "train_accuracy": 0.95, "test_loss": 0.7}
    assert diagnose(None, final).label == "good fit"  # chance level unknown: only accuracy can say
    result = diagnose(None, final, chance_loss=math.log(3))  # 0.7 > 0.5 x ln 3 = 0.549
    assert result.label == "underfitting" and "chance" in result.reason


def test_diverged_non_finite_loss():
    result = diagnose(
        history([1.0, 0.9, float("inf"), float("nan")], [0.5] * 4),
        {"train_loss": float("nan"), "train_accuracy": 0.3},
    )
    assert result.label == "diverged" and result.reason == "non-finite loss"


def test_diverged_exploding_loss():
    result = diagnose(
        history([1.0, 0.8, 2.0, 5.0, 4.0], [0.9] * 5), {"train_loss": 4.0, "train_accuracy": 0.9}
    )
    assert result.label == "diverged"
    assert result.loss_ratio == pytest.approx(5.0)


def test_stored_status_diverged():
    assert diagnose(None, {"status": "diverged", "train_loss": float("nan")}).label == "diverged"


def test_without_validation_the_gap_uses_the_test_loss():
    result = diagnose(
        history(decaying(1.0, 0.02, 60), [1.0] * 60),
        {"train_loss": 0.02, "test_loss": 0.30, "train_accuracy": 1.0},
    )
    assert result.gap_source == "test" and result.gap == pytest.approx(0.28)
    assert math.isnan(result.best_epoch) and math.isnan(result.val_rise)
    assert result.label == "overfitting"


def test_history_alone_is_enough():
    result = diagnose(history(decaying(1.0, 0.1, 10), decaying(0.5, 0.98, 10), decaying(1.0, 0.5, 10)))
    assert result.train_loss == pytest.approx(0.1) and result.train_accuracy == pytest.approx(0.98)
    assert result.gap == pytest.approx(0.4) and result.label == "overfitting"


def test_thresholds_can_be_overridden():
    final = {"train_loss": 0.1, "val_loss": 0.12, "train_accuracy": 0.93}
    assert diagnose(None, final).label == "good fit"
    assert diagnose(None, final, thresholds={"underfit_train_accuracy": 0.95}).label == "underfitting"


def test_majority_and_counts():
    assert diagnosis.majority(["overfitting"] * 5) == "overfitting (5/5)"
    labels = ["good fit", "overfitting", "overfitting", "good fit", "diverged"]
    assert diagnosis.majority(labels) == "overfitting (2/5)"  # tie with good fit: the problem is reported
    assert diagnosis.counts(labels) == "diverged:1; overfitting:2; good fit:2"
    assert diagnosis.majority(["good fit", "good fit", "underfitting"]) == "good fit (2/3)"
    assert diagnosis.majority([]) == ""


def test_diagnose_runs_matches_history_by_seed():
    runs = pd.DataFrame(
        [
            {"seed": 0, "status": "ok", "train_loss": 0.1, "val_loss": 0.12, "train_accuracy": 0.97},
            {"seed": 1, "status": "ok", "train_loss": 0.05, "val_loss": 0.5, "train_accuracy": 1.0},
        ]
    )
    hist = pd.concat(
        [
            history(decaying(1.0, 0.1, 5), val_loss=decaying(1.0, 0.12, 5), seed=0),
            history(decaying(1.0, 0.05, 8), val_loss=decaying(1.0, 0.5, 8), seed=1),
        ]
    )
    table = diagnosis.diagnose_runs(runs, hist)
    assert list(table["label"]) == ["good fit", "overfitting"]
    assert list(table["last_epoch"]) == [5, 8]
    assert table["gap"].tolist() == pytest.approx([0.02, 0.45])


def test_a_history_of_many_runs_is_split_by_run_key_once_in_epoch_order():
    two = pd.concat([history([0.9, 0.5, 0.7], seed=1), history([1.0, 0.8], seed=0)])
    two["fold"] = [np.nan, np.nan, np.nan, 2.0, 2.0]
    two["val_loss"] = np.nan  # a column never recorded
    two = two.iloc[[2, 0, 1, 4, 3]]  # epochs out of order
    by_run = diagnosis.epoch_columns_by_run(two, ["seed", "fold"])
    assert set(by_run) == {(1, None), (0, 2)}
    assert by_run[(1, None)]["loss"].tolist() == [0.9, 0.5, 0.7]
    assert by_run[(0, 2)]["loss"].tolist() == [1.0, 0.8]
    assert "val_loss" not in by_run[(0, 2)]
    run = pd.Series({"seed": np.int64(1), "fold": np.nan})
    assert diagnosis.run_key(run, ["seed", "fold"]) == (1, None)
    one = two[two["seed"] == 1]
    final = {"train_loss": 0.6, "test_loss": 0.9}
    as_columns, as_frame = diagnose(by_run[(1, None)], final), diagnose(one, final)
    assert pd.Series(as_columns.to_dict()).equals(pd.Series(as_frame.to_dict()))
    assert (as_columns.loss_ratio, as_columns.last_epoch, as_columns.gap) == (1.0, 3.0, pytest.approx(0.3))
    assert diagnosis.epoch_columns_by_run(two, ["seed", "split"]) == {}


# --- training_problems: no convergence, vanishing and exploding gradients (health columns) ---


def _health(loss, **cols):
    import pandas as pd

    return pd.DataFrame({"epoch": range(1, len(loss) + 1), "loss": loss, **cols})


def _problems(frame, **kw):
    from harness.diagnosis import training_problems

    return {f["problem"]: f for f in training_problems(frame, **kw)}


def test_plateau_with_low_accuracy_is_no_convergence():
    frame = _health([1.2, 1.1, 1.099, 1.0985, 1.098, 1.098, 1.0978, 1.0977], accuracy=[0.34] * 8)
    found = _problems(frame)
    assert found["no convergence"]["evidence"]["kind"] == "plateau"
    assert found["no convergence"]["evidence"]["epochs"] == [3, 8]
    assert "learning rate" in found["no convergence"]["remedies"]
    assert (
        _problems(_health([1.2, 1.1, 1.099, 1.0985, 1.098, 1.098, 1.0978, 1.0977], accuracy=[0.97] * 8)) == {}
    )


def test_oscillating_loss_is_no_convergence():
    found = _problems(_health([1.0, 2.0, 0.8, 2.2, 0.7, 2.1, 0.9, 2.0], accuracy=[0.5] * 8))
    assert "no convergence" in found
    from harness.diagnosis import training_problems

    kinds = {
        f["evidence"]["kind"] for f in training_problems(_health([1.0, 2.0, 0.8, 2.2, 0.7, 2.1, 0.9, 2.0]))
    }
    assert "oscillation" in kinds
    # a fitted network whose loss jitters (dropout) is not "no convergence"
    jitter = _health([0.04, 0.02, 0.05, 0.02, 0.04, 0.02, 0.05, 0.03], accuracy=[0.98] * 8)
    assert "no convergence" not in _problems(jitter, final={"train_accuracy": 0.98})


def test_first_layer_far_slower_than_last_is_vanishing():
    n = 6
    frame = _health(
        list(np.linspace(1.0, 0.5, n)),
        **{
            "update_ratio.0.dense": [1e-6] * n,
            "update_ratio.1.dense": [1e-4] * n,
            "update_ratio.9.dense": [1e-3] * n,
        },
    )
    found = _problems(frame)
    ev = found["vanishing gradients"]["evidence"]
    assert (
        ev["first_layer"] == "0.dense"
        and ev["last_layer"] == "9.dense"
        and ev["factor"] == pytest.approx(1000)
    )
    assert "ReLU" in found["vanishing gradients"]["remedies"]
    healthy = _health(
        list(np.linspace(1.0, 0.5, n)),
        **{"update_ratio.0.dense": [1e-3] * n, "update_ratio.1.dense": [2e-3] * n},
    )
    assert "vanishing gradients" not in _problems(healthy)


def test_growing_or_nonfinite_weights_are_exploding():
    frame = _health([1.0, 3.0, 30.0, 300.0], **{"weight_norm.0.dense": [1.0, 10.0, 500.0, 1e4]})
    ev = _problems(frame)["exploding gradients"]["evidence"]
    assert ev["growth"] == pytest.approx(1e4) and ev["epochs"] == [1, 4]
    assert "clipping" in _problems(frame)["exploding gradients"]["remedies"]
    nan = _health([1.0, 5.0, float("nan")], **{"weight_norm.0.dense": [1.0, 2.0, float("nan")]})
    assert _problems(nan)["exploding gradients"]["evidence"]["nonfinite_epoch"] == 3
    assert _problems(_health([1.0, float("inf")]))["exploding gradients"]["evidence"]["nonfinite_epoch"] == 2
    assert "exploding gradients" not in _problems(
        _health([1.0, 0.8, 0.7], **{"weight_norm.0.dense": [1.0, 1.1, 1.2]})
    )


def test_huge_update_ratio_from_the_first_epoch_is_exploding_not_vanishing():
    frame = _health(
        [1.0, 2.0, 1.0, 2.0], **{"update_ratio.0.dense": [2e4] * 4, "update_ratio.2.dense": [9e7] * 4}
    )
    found = _problems(frame)
    assert found["exploding gradients"]["evidence"]["peak"] == pytest.approx(2e4)
    assert "vanishing gradients" not in found


def test_mostly_dead_relu_layer_is_reported_with_its_layer():
    curves = history(decaying(1.0, 0.2, 10), [0.95] * 10, decaying(1.0, 0.3, 10))
    found = diagnosis.training_problems(
        curves, {"train_accuracy": 0.95, "dead_relu_fraction": 0.75, "dead_relu_layer": "0.dense"}
    )
    dead = [f for f in found if f["problem"] == "dead ReLU units"]
    assert dead and dead[0]["evidence"]["layer"] == "0.dense" and dead[0]["evidence"]["dead_fraction"] == 0.75
    assert "leaky ReLU" in dead[0]["remedies"]
    assert not [
        f
        for f in diagnosis.training_problems(curves, {"train_accuracy": 0.95, "dead_relu_fraction": 0.25})
        if f["problem"] == "dead ReLU units"
    ]
