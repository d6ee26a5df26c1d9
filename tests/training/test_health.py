"""harness.training.health, wired into the per-run trainer: columns, update ratios, the non-finite stop."""

import copy
import math

import pytest

from harness.spec import from_dict
from harness.training import per_run


def _spec(tiny, **fit):
    raw = copy.deepcopy(tiny)
    raw["fit"] = {"epochs": 3, "batch_size": 16, **fit}
    return from_dict(raw)


def test_health_columns_in_history_and_seconds_per_epoch():
    from conftest import TINY

    row, epochs = per_run.run(_spec(TINY), 0)
    assert row["status"] == "ok" and row["seconds_per_epoch"] > 0
    cols = [c for c in epochs[0] if c.startswith(("update_ratio.", "weight_norm."))]
    assert any(c.startswith("update_ratio.0.") for c in cols) and any(
        c.startswith("weight_norm.0.") for c in cols
    )
    assert all("," not in c and " " not in c for c in cols)
    for e in epochs:
        assert all(math.isfinite(e[c]) and e[c] >= 0 for c in cols)
    assert any(e[c] > 0 for e in epochs for c in cols if c.startswith("update_ratio."))


def test_nonfinite_stops_training_and_marks_diverged():
    from conftest import TINY

    raw = copy.deepcopy(TINY)
    raw["compile"] = {**raw.get("compile", {}), "optimizer": {"class_name": "SGD", "learning_rate": 1e30}}
    raw["fit"] = {"epochs": 20, "batch_size": 16}
    row, epochs = per_run.run(from_dict(raw), 0)
    assert row["status"] == "diverged"
    assert row["epochs_run"] < 20


def test_update_ratio_and_weight_norm_match_a_hand_computed_sgd_step():
    import numpy as np

    from harness.training.backend import keras
    from harness.training.health import Health

    x = np.array([[1.0, 2.0], [0.5, -1.0], [-2.0, 0.0]], dtype="float32")
    y = np.array([[1.0], [0.0], [2.0]], dtype="float32")
    w0, b0 = np.array([[0.3], [-0.2]], dtype="float32"), np.array([0.1], dtype="float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([w0, b0])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    health = Health()
    model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0, callbacks=[health])
    # mse = mean((xw + b - y)^2): dL/dw = 2/n x^T r, dL/db = 2/n sum(r), one full-batch step of 0.1
    r = x @ w0 + b0 - y
    grad = np.concatenate([(2 / 3 * x.T @ r).ravel(), [2 / 3 * r.sum()]])
    start = np.concatenate([w0.ravel(), b0])
    end = start - 0.1 * grad
    assert health.history["update_ratio.0.dense"][0] == pytest.approx(
        np.linalg.norm(end - start) / np.linalg.norm(start), rel=1e-5
    )
    assert health.history["weight_norm.0.dense"][0] == pytest.approx(np.linalg.norm(end), rel=1e-5)


def test_dead_relu_counts_units_silent_on_every_input():
    import numpy as np

    from harness.training.backend import keras
    from harness.training.health import dead_relu

    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]
    )
    kernel = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype="float32")
    model.layers[0].set_weights([kernel, np.array([0.0, 0.0, -1.0, -5.0], dtype="float32")])
    x = np.array([[1.0, 0.5], [0.2, 0.3]], dtype="float32")  # units 2 and 3 are <= 0 for both inputs
    assert dead_relu(model, x) == (0.5, "0.dense")
    assert dead_relu(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), x) == (0.0, "")
