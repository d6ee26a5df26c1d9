"""experiments/gradients.py: the health columns show vanishing (deep sigmoid) and exploding (lr too high)."""

import pandas as pd

from harness import registry
from harness.diagnosis import training_problems
from harness.training import per_run


def _problems(name):
    row, epochs = per_run.run(registry.discover()[name], 0)
    return {f["problem"] for f in training_problems(pd.DataFrame(epochs), row)}


def test_deep_sigmoid_vanishes_and_relu_does_not():
    assert "vanishing gradients" in _problems("deep_sigmoid")
    assert "vanishing gradients" not in _problems("deep_sigmoid_relu")


def test_lr_too_high_explodes_and_a_lower_rate_does_not():
    assert "exploding gradients" in _problems("lr_too_high")
    assert "exploding gradients" not in _problems("lr_too_high_lower")
