"""Training health per epoch: weight norms, update ratios, non-finite stop (numpy only)."""

import math
import re

import numpy as np

from harness.training.backend import keras


def column_name(i, layer):
    """CSV-friendly, run-independent column suffix `<index>.<class name>` (Keras' auto names
    vary per process); a private subclass (the engine's) is named as the class it stands in for."""
    name = next(c.__name__ for c in type(layer).__mro__ if not c.__name__.startswith("_"))
    return f"{i}.{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}"


class Health(keras.callbacks.Callback):
    """Records weight_norm.<i>.<name> and update_ratio.<i>.<name> per epoch; stops on NaN/inf."""

    def __init__(self, enabled=True):
        super().__init__()
        self.history, self.stopped_nonfinite, self._start, self.enabled = {}, False, {}, enabled

    def _weights(self):
        out = {}
        for i, layer in enumerate(self.model.layers):
            w = layer.get_weights()
            if w:
                out[column_name(i, layer)] = np.concatenate([np.ravel(a).astype(np.float64) for a in w])
        return out

    def on_train_begin(self, logs=None):
        if self.enabled:
            self._start = self._weights()  # later epochs start from the previous epoch's end weights

    def on_epoch_end(self, epoch, logs=None):
        end, finite = (self._weights() if self.enabled else {}), True
        for key, w in end.items():
            norm = float(np.linalg.norm(w))
            w0 = self._start.get(key)
            ratio = (
                float(np.linalg.norm(w - w0) / max(np.linalg.norm(w0), 1e-12))
                if w0 is not None
                else float("nan")
            )
            self.history.setdefault(f"weight_norm.{key}", []).append(norm)
            self.history.setdefault(f"update_ratio.{key}", []).append(ratio)
            finite = finite and math.isfinite(norm)
        self._start = end
        loss = (logs or {}).get("loss")
        if not finite or (loss is not None and not math.isfinite(float(loss))):
            self.stopped_nonfinite = True
            self.model.stop_training = True


def dead_relu(model, x):
    """(largest fraction of dead units in a ReLU layer, '<i>.<name>' of that layer) on inputs `x`.

    A unit is dead when its ReLU output is 0 for every input: it passes no gradient, so it
    never learns again. (0.0, '') when the model has no ReLU layer."""
    fractions, h = [], x
    for i, layer in enumerate(model.layers):
        h = layer(h, training=False)
        if is_relu(layer):
            out = np.asarray(h).reshape(len(x), -1)
            fractions.append((float(np.mean(np.all(out <= 0, axis=0))), column_name(i, layer)))
    return worst_dead_relu(fractions)


def worst_dead_relu(fractions):
    """(largest fraction, its layer) from [(fraction of dead units, layer column name)] per ReLU layer;
    (0.0, '') without a ReLU layer."""
    worst, where = 0.0, ""
    for fraction, layer in fractions:
        if fraction > worst or not where:
            worst, where = float(fraction), layer
    return worst, where


def is_relu(layer):
    """Whether a layer's output is a ReLU's (a ReLU activation or a ReLU layer)."""
    return (
        getattr(getattr(layer, "activation", None), "__name__", "") == "relu"
        or type(layer).__name__ == "ReLU"
    )
