"""Fit diagnosis of a run from its epoch curves and final metrics: diverged, underfitting, overfitting
or good fit.

Rules are checked in that order and the first that holds decides; every threshold is in
THRESHOLDS, and each diagnosis carries the numbers that decided it so a label can be checked.
"""

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

THRESHOLDS = {
    # Diverged: the training loss at some epoch is more than this many times its first-epoch
    # value. A working optimiser lowers the training loss; tripling it means it is blowing up.
    # (A non-finite loss anywhere is always "diverged".)
    "diverge_loss_ratio": 3.0,
    # Underfitting: final training accuracy (evaluated after fit) below this. A network that
    # cannot classify 90% of the very data it was trained on lacks capacity or training.
    "underfit_train_accuracy": 0.90,
    # Underfitting: final training loss above this fraction of the chance-level loss
    # (cross-entropy of a uniform guess, ln(classes)); used only when that level is known.
    "underfit_loss_fraction": 0.5,
    # Overfitting: held-out loss minus training loss above this (loss units; nats for
    # cross-entropy). 0.1 nats is well beyond the rounding of a good fit...
    "overfit_gap": 0.10,
    # ...and the held-out loss at least this many times the training loss, so that neither a
    # gap over a tiny training loss nor noise of a small validation set counts on its own.
    "overfit_gap_ratio": 1.5,
    # Overfitting from the validation curve: the lowest validation loss came at or before this
    # fraction of the epochs run (well before the end; early stopping's patience stays later)...
    "overfit_best_epoch_fraction": 0.75,
    # ...and the final validation loss rose at least this fraction above that minimum...
    "overfit_val_rise": 0.20,
    # ...and at least this much in absolute terms, so wiggles of a near-zero loss do not count.
    "overfit_val_rise_min": 0.02,
    # No convergence, plateau: over the last `plateau_epochs` epochs the training loss moved by
    # less than this fraction of its value, while training accuracy is below underfit_train_accuracy.
    "plateau_epochs": 5,
    "plateau_rel_change": 0.01,
    # No convergence, oscillation: at least this fraction of consecutive loss deltas change sign,
    # and the mean |delta| is at least this fraction of the mean loss (large amplitude), while
    # training accuracy is below underfit_train_accuracy (dropout makes a fitted net's loss jitter).
    "oscillation_sign_fraction": 0.5,
    "oscillation_amplitude": 0.1,
    # Vanishing gradients: the first weighted layer's mean update ratio is this many times
    # smaller than the last weighted layer's (update ratio = ||w_end - w_start|| / ||w_start||).
    "vanishing_ratio": 100.0,
    # Exploding gradients: some layer's weight norm or update ratio grows by this factor from
    # its first to its largest epoch value (a non-finite value always counts).
    "exploding_growth": 100.0,
    # Exploding gradients also: some layer's update ratio reaches this in one epoch (the epoch's
    # update is ten times the weights themselves), even when it was already that large at epoch 1.
    "exploding_update_ratio": 10.0,
    # Dead ReLU units: at least this fraction of one ReLU layer's units output 0 for every
    # training sample after fit (runs.csv dead_relu_fraction); they pass no gradient again.
    "dead_relu_fraction": 0.5,
}
# The article's remedies per problem (fit labels and training_problems), as `doctor` prints them.
ARTICLE_ADVICE = {
    "overfitting": (
        "more training data; a smaller model (fewer layers / units); regularisation (L1, L2); dropout; "
        "early stopping"
    ),
    "underfitting": "a bigger model; more data; a better optimiser (Adam); less regularisation",
    "diverged": "adjust the learning rate; another optimiser; gradient clipping; weight initialisation",
    "no convergence": (
        "adjust the learning rate; another optimiser; mini-batches; early stopping; regularisation"
    ),
    "vanishing gradients": (
        "ReLU rather than sigmoid/tanh; Adam rather than plain SGD; mini-batches; weight initialisation"
    ),
    "exploding gradients": (
        "gradient clipping; a lower learning rate; weight initialisation; Adam rather than plain SGD"
    ),
    "dead ReLU units": "a lower learning rate; weight initialisation (He); another activation (leaky ReLU)",
}
LABELS = ("diverged", "underfitting", "overfitting", "good fit")  # check order, also tie-break order


@dataclass(frozen=True)
class Diagnosis:
    """A run's label, why, and the numbers behind it (NaN where a number does not apply)."""

    label: str
    reason: str
    gap: float  # held-out loss - training loss, final metrics
    gap_source: str  # "val", "test" or "" (which held-out loss the gap uses)
    best_epoch: float  # 1-based epoch of the lowest validation loss
    last_epoch: float  # epochs run
    val_rise: float  # (final val loss - min val loss) / min val loss
    train_accuracy: float
    train_loss: float
    loss_ratio: float  # max training loss / first-epoch training loss

    def to_dict(self):
        return asdict(self)


def _num(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def epoch_columns(history):
    """One run's history as {column: float values in epoch order}, leaving out columns that are
    entirely blank (not recorded). Every check reads this; a DataFrame is converted once, since each
    lookup in one costs about 0.1 ms and a run's checks read twenty columns."""
    if history is None:
        return {}
    if isinstance(history, dict):
        return history
    if "epoch" in history and not history["epoch"].is_monotonic_increasing:  # stored histories are sorted
        history = history.sort_values("epoch", kind="stable")
    return _recorded({name: _floats(history[name]) for name in history.columns})


def epoch_columns_by_run(history, keys):
    """{key values: epoch_columns} for the runs of a history, keyed by `keys` values as a tuple (a
    missing fold matches a missing fold); the columns are taken from the frame once for all runs."""
    if history is None or not len(history) or any(k not in history for k in keys):
        return {}
    ordered = history.sort_values([*keys, "epoch"] if "epoch" in history else keys, kind="stable")
    arrays = {name: _floats(ordered[name]) for name in ordered.columns}
    runs = ordered.groupby(keys, sort=False, dropna=False).indices
    return {
        _key(key): _recorded({name: values[rows] for name, values in arrays.items()})
        for key, rows in runs.items()
    }


def run_key(run, keys):
    """A runs.csv row's key in `epoch_columns_by_run`."""
    return _key(tuple(run[k] for k in keys))


def _key(values):
    """Key values as a tuple of Python numbers, NaN as None (so that a missing fold matches)."""
    values = values if isinstance(values, tuple) else (values,)
    return tuple(None if pd.isna(v) else v.item() if hasattr(v, "item") else v for v in values)


def _floats(column):
    if not pd.api.types.is_numeric_dtype(column):  # text columns, or a stored cell that is damaged
        column = pd.to_numeric(column, errors="coerce")
    return column.to_numpy(dtype=float)


def _recorded(columns):
    return {name: values for name, values in columns.items() if len(values) and not np.isnan(values).all()}


def _column(history, name):
    """A column of `epoch_columns`; empty when absent or entirely blank."""
    return history.get(name, np.array([]))


def diagnose(history=None, final=None, chance_loss=None, thresholds=None):
    """Diagnose one run from its history rows (epoch, loss, accuracy, val_loss, ...; a DataFrame or
    `epoch_columns`) and runs.csv row.

    Final metrics (evaluated after fit, without dropout) are preferred over the last history
    epoch; without a validation split the gap uses test loss - train loss.
    """
    t = {**THRESHOLDS, **(thresholds or {})}
    final = dict(final) if final is not None else {}
    history = epoch_columns(history)
    loss, val_loss = _column(history, "loss"), _column(history, "val_loss")
    last_epoch = float(len(loss)) if len(loss) else _num(final.get("epochs_run"))

    train_loss = _num(final.get("train_loss"))
    if math.isnan(train_loss) and len(loss):
        train_loss = float(loss[-1])
    train_accuracy = _num(final.get("train_accuracy"))
    accuracy = _column(history, "accuracy")
    if math.isnan(train_accuracy) and len(accuracy):
        train_accuracy = float(accuracy[-1])

    held_out, gap_source = _num(final.get("val_loss")), "val"
    if math.isnan(held_out) and len(val_loss):
        held_out = float(val_loss[-1])
    if math.isnan(held_out):
        held_out, gap_source = _num(final.get("test_loss")), "test"
    if math.isnan(held_out):
        gap_source = ""
    gap = held_out - train_loss

    has_val = len(val_loss) > 0 and np.isfinite(val_loss).any()
    best_epoch = float(np.nanargmin(val_loss) + 1) if has_val else math.nan
    val_rise = math.nan
    if has_val and np.isfinite(val_loss[-1]):
        low = float(np.nanmin(val_loss))
        val_rise = (float(val_loss[-1]) - low) / low if low > 0 else (math.inf if val_loss[-1] > low else 0.0)
    loss_ratio = (
        float(np.max(loss) / loss[0]) if len(loss) and np.isfinite(loss).all() and loss[0] > 0 else math.nan
    )

    numbers = dict(
        gap=gap,
        gap_source=gap_source,
        best_epoch=best_epoch,
        last_epoch=last_epoch,
        val_rise=val_rise,
        train_accuracy=train_accuracy,
        train_loss=train_loss,
        loss_ratio=loss_ratio,
    )
    label, reason = _decide(t, numbers, loss, val_loss, final, held_out, chance_loss)
    return Diagnosis(label=label, reason=reason, **numbers)


def _decide(t, n, loss, val_loss, final, held_out, chance_loss):
    """The first rule that holds, as (label, reason)."""
    finals = [_num(final.get(k)) for k in ("train_loss", "val_loss", "test_loss") if k in final]
    if not np.isfinite(loss).all() or not np.isfinite(val_loss).all() or any(math.isinf(v) for v in finals):
        return "diverged", "non-finite loss"
    if str(final.get("status", "ok")) == "diverged":
        return "diverged", "stored with status 'diverged' (non-finite final loss)"
    if n["loss_ratio"] > t["diverge_loss_ratio"]:
        return (
            "diverged",
            f"training loss rose to {n['loss_ratio']:.1f}x its first epoch (> {t['diverge_loss_ratio']}x)",
        )
    if n["train_accuracy"] < t["underfit_train_accuracy"]:
        return (
            "underfitting",
            f"final train accuracy {n['train_accuracy']:.3f} < {t['underfit_train_accuracy']}",
        )
    if chance_loss and n["train_loss"] > t["underfit_loss_fraction"] * chance_loss:
        return (
            "underfitting",
            f"final train loss {n['train_loss']:.3f} > {t['underfit_loss_fraction']} "
            f"x chance loss {chance_loss:.3f}",
        )
    if n["gap"] > t["overfit_gap"] and held_out >= t["overfit_gap_ratio"] * n["train_loss"]:
        return (
            "overfitting",
            f"{n['gap_source']} loss - train loss = {n['gap']:.3f} > {t['overfit_gap']}, "
            f"and >= {t['overfit_gap_ratio']}x train loss",
        )
    if (
        n["best_epoch"] <= t["overfit_best_epoch_fraction"] * n["last_epoch"]
        and n["val_rise"] >= t["overfit_val_rise"]
        and float(val_loss[-1]) - float(np.nanmin(val_loss)) >= t["overfit_val_rise_min"]
    ):
        return (
            "overfitting",
            f"best val epoch {n['best_epoch']:.0f} of {n['last_epoch']:.0f}, "
            f"val loss then rose {n['val_rise']:.0%}",
        )
    return "good fit", "no rule fired"


def majority(labels):
    """'label (k/n)' for the most common label; ties go to the more serious label (LABELS order)."""
    counts = Counter(labels)
    if not counts:
        return ""
    rank = {label: i for i, label in enumerate(LABELS)}
    label = min(counts, key=lambda lab: (-counts[lab], rank.get(lab, len(LABELS))))
    return f"{label} ({counts[label]}/{sum(counts.values())})"


def counts(labels):
    """'label:k; ...' for every label present, in LABELS order (the full split behind `majority`)."""
    c = Counter(labels)
    order = [lab for lab in LABELS if lab in c] + sorted(lab for lab in c if lab not in LABELS)
    return "; ".join(f"{lab}:{c[lab]}" for lab in order)


def diagnose_runs(runs, history, chance_loss=None, thresholds=None):
    """One row per run of runs.csv rows: seed (and fold), label, reason and the deciding numbers."""
    rows = []
    keys = ["seed", "fold"] if "fold" in runs and history is not None and "fold" in history else ["seed"]
    by_run = epoch_columns_by_run(history, keys)
    for _, run in runs.iterrows():
        rows.append(
            {
                **{k: run[k] for k in keys},
                **diagnose(by_run.get(run_key(run, keys)), run.to_dict(), chance_loss, thresholds).to_dict(),
            }
        )
    columns = [*keys, *Diagnosis.__dataclass_fields__]
    return pd.DataFrame(rows, columns=columns)


def chance_loss(spec):
    """ln(classes) for a cross-entropy loss (the loss of a uniform guess), else None."""
    if "crossentropy" not in str(spec.get("compile", {}).get("loss", "")).replace("_", "").lower():
        return None
    try:
        from harness.data import n_classes

        return math.log(n_classes(spec["data"]))
    except Exception:  # a moved CSV file: judge without the chance level
        return None


def layer_series(history, prefix):
    """{'<i>.<name>': values in epoch order} for history columns `prefix.<i>.<name>`, by layer index."""
    history = epoch_columns(history)
    out = {c[len(prefix) + 1 :]: v for c, v in history.items() if c.startswith(prefix + ".")}
    return dict(sorted(out.items(), key=lambda kv: int(kv[0].split(".")[0])))


def training_problems(history, final=None, thresholds=None):
    """No convergence, vanishing and exploding gradients in one run's history (with health columns),
    and dead ReLU units in its final row.

    Returns a list of {"problem", "evidence" (numbers and epochs that decided it), "remedies"}.
    """
    t = {**THRESHOLDS, **(thresholds or {})}
    history = epoch_columns(history)
    loss = _column(history, "loss")
    acc = _num((final or {}).get("train_accuracy"))
    if math.isnan(acc):
        accs = _column(history, "accuracy")
        acc = float(accs[-1]) if len(accs) else math.nan
    found = [
        *_no_convergence(loss, acc, t),
        *_vanishing_gradients(history, t),
        *_exploding_gradients(history, loss, t),
        *_dead_units(final or {}, len(loss), t),
    ]
    for f in found:
        f["remedies"] = ARTICLE_ADVICE[f["problem"]]
    return found


def _no_convergence(loss, acc, t):
    """A loss that plateaus or oscillates while training accuracy stays low."""
    found = []
    n = int(t["plateau_epochs"])
    if len(loss) > n and np.isfinite(loss).all():
        tail = loss[-(n + 1) :]
        change = float(abs(tail[-1] - tail[0]) / max(abs(tail[0]), 1e-12))
        if change < t["plateau_rel_change"] and not acc >= t["underfit_train_accuracy"]:
            found.append(
                {
                    "problem": "no convergence",
                    "evidence": {
                        "kind": "plateau",
                        "rel_change": change,
                        "train_accuracy": acc,
                        "epochs": [len(loss) - n, len(loss)],
                    },
                }
            )
        delta = np.diff(loss)
        if len(delta) >= 3:
            flips = float(np.mean(np.sign(delta[1:]) != np.sign(delta[:-1])))
            amplitude = float(np.mean(np.abs(delta)) / max(float(np.mean(np.abs(loss))), 1e-12))
            if (
                flips >= t["oscillation_sign_fraction"]
                and amplitude >= t["oscillation_amplitude"]
                and not acc >= t["underfit_train_accuracy"]
            ):
                found.append(
                    {
                        "problem": "no convergence",
                        "evidence": {
                            "kind": "oscillation",
                            "sign_change_fraction": flips,
                            "amplitude": amplitude,
                            "epochs": [1, len(loss)],
                        },
                    }
                )
    return found


def _vanishing_gradients(history, t):
    """The last weighted layer moves far more per epoch than the first."""
    found = []
    ratios = layer_series(history, "update_ratio")
    if len(ratios) >= 2:
        (first, r0), (last, r1) = next(iter(ratios.items())), list(ratios.items())[-1]
        m0, m1 = float(np.nanmean(r0)), float(np.nanmean(r1))
        if (
            np.isfinite([m0, m1]).all()
            and 0 < m1 < t["exploding_update_ratio"]
            and (m0 == 0 or m1 / m0 >= t["vanishing_ratio"])
        ):
            found.append(
                {
                    "problem": "vanishing gradients",
                    "evidence": {
                        "first_layer": first,
                        "first_update_ratio": m0,
                        "last_layer": last,
                        "last_update_ratio": m1,
                        "factor": m1 / m0 if m0 else math.inf,
                        "epochs": [1, len(r0)],
                    },
                }
            )
    return found


def _exploding_gradients(history, loss, t):
    """A layer's weights or updates grow without bound or become non-finite, or the loss does."""
    for prefix in ("weight_norm", "update_ratio"):
        for layer, v in layer_series(history, prefix).items():
            bad = np.flatnonzero(~np.isfinite(v))
            start = float(v[0]) if len(v) else math.nan
            peak = int(np.nanargmax(v)) if np.isfinite(v).any() else 0
            growth = float(v[peak] / start) if start > 0 and np.isfinite(v).any() else math.nan
            big = prefix == "update_ratio" and np.isfinite(v).any() and v[peak] >= t["exploding_update_ratio"]
            if len(bad) or growth >= t["exploding_growth"] or big:
                return [
                    {
                        "problem": "exploding gradients",
                        "evidence": {
                            "column": f"{prefix}.{layer}",
                            "first": start,
                            "peak": float(v[peak]),
                            "growth": growth,
                            "nonfinite_epoch": int(bad[0]) + 1 if len(bad) else None,
                            "epochs": [1, int(bad[0]) + 1 if len(bad) else peak + 1],
                        },
                    }
                ]
    if len(loss) and not np.isfinite(loss).all():
        bad = int(np.flatnonzero(~np.isfinite(loss))[0]) + 1
        return [
            {
                "problem": "exploding gradients",
                "evidence": {"column": "loss", "nonfinite_epoch": bad, "epochs": [1, bad]},
            }
        ]
    return []


def _dead_units(final, epochs, t):
    """A ReLU layer whose units output 0 for every training sample after fit."""
    found = []
    dead = _num(final.get("dead_relu_fraction"))
    if dead >= t["dead_relu_fraction"]:
        found.append(
            {
                "problem": "dead ReLU units",
                "evidence": {
                    "layer": final.get("dead_relu_layer", ""),
                    "dead_fraction": dead,
                    "epochs": [epochs, epochs],
                },
            }
        )
    return found
