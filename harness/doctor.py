"""`python -m harness doctor NAME`: diagnose an experiment, run the article's remedies for what
it finds on the same seeds, and say for each remedy whether the problem is gone.

Flow: run the experiment (stored seeds are reused) -> diagnose every seed (fit diagnosis and
training health) -> the problems found in at least half of the seeds -> remedy variants derived
from the spec (REMEDIES) -> run them -> per remedy, the seed-paired change of the problem's
metric with its 95% CI, and how many seeds still show the problem.
"""

import math

import numpy as np
import pandas as pd

from harness import compare, diagnosis, results, stats
from harness.data import overlap_ratio
from harness.errors import HarnessError

# Problem -> (per-run metric that measures it, lower is better, what the metric is).
METRICS = {
    "diverged": ("train_accuracy", False, "train accuracy"),
    "exploding gradients": ("train_accuracy", False, "train accuracy"),
    "vanishing gradients": ("gradient_spread", True, "log10(last / first layer update ratio)"),
    "dead ReLU units": ("dead_relu_fraction", True, "largest dead fraction of a ReLU layer"),
    "no convergence": ("train_loss", True, "train loss"),
    "underfitting": ("train_accuracy", False, "train accuracy"),
    "overfitting": ("gap_test_loss", True, "test loss - train loss"),
}
ORDER = list(METRICS)  # most serious first: a diverging network has to train before it can overfit
# What a network with a gradient problem (divergence, exploding, vanishing, dead units) shows
# as well; when one of those is found, its remedies are run, not these.
SYMPTOMS = ("no convergence", "underfitting")


def _hidden(model):
    """Indices of the layers with `units` except the last (the output layer)."""
    sized = [i for i, layer in enumerate(model) if "units" in layer]
    return sized[:-1]


def _optimizer(spec, **changes):
    return {"compile.optimizer": {**spec["compile"]["optimizer"], **changes}}


def _learning_rate(spec):
    opt = spec["compile"]["optimizer"]
    if "learning_rate" in opt:
        return float(opt["learning_rate"])
    from harness.backend import keras  # the optimizer's own default rate

    return float(
        keras.optimizers.get({"class_name": opt["class_name"], "config": {}}).get_config()["learning_rate"]
    )


def _with_hidden(spec, change):
    """The model with `change(layer)` applied to every hidden layer (None when there is none)."""
    model, hidden = [dict(layer) for layer in spec["model"]], _hidden(spec["model"])
    if not hidden:
        return None
    for i in hidden:
        model[i] = change(model[i])
    return {"model": model}


def _after_hidden(spec, extra):
    model, hidden = spec["model"], set(_hidden(spec["model"]))
    if not hidden:
        return None
    return {
        "model": [
            x for i, layer in enumerate(model) for x in ([layer, dict(extra)] if i in hidden else [layer])
        ]
    }


def _batchnorm(spec):
    """Dense (no activation) -> BatchNormalization -> the activation, for each hidden layer."""
    hidden = set(_hidden(spec["model"]))
    model = []
    for i, layer in enumerate(spec["model"]):
        if i in hidden:
            act = layer.get("activation", "linear")
            model += [
                {**layer, "activation": "linear"},
                {"class_name": "BatchNormalization"},
                {"class_name": "Activation", "activation": act},
            ]
        else:
            model.append(layer)
    return {"model": model} if hidden else None


def _saturating(spec):
    return any(spec["model"][i].get("activation") in ("sigmoid", "tanh") for i in _hidden(spec["model"]))


def _regularised(spec):
    return any(k.endswith("_regularizer") for layer in spec["model"] for k in layer) or any(
        layer["class_name"] == "Dropout" for layer in spec["model"]
    )


def _unregularised(spec):
    model = [
        {k: v for k, v in layer.items() if not k.endswith("_regularizer")}
        for layer in spec["model"]
        if layer["class_name"] != "Dropout"
    ]
    return {"model": model}


def _early_stopping(spec):
    if not spec["data"].get("validation_size"):
        return None
    stop = {"class_name": "EarlyStopping", "monitor": "val_loss", "patience": 5, "restore_best_weights": True}
    return {"fit.callbacks": [*spec["fit"]["callbacks"], stop]}


def _adam(spec):
    if spec["compile"]["optimizer"]["class_name"].lower() == "adam":
        return None
    return {"compile.optimizer": {"class_name": "Adam", "learning_rate": 0.001}}


# The article's remedies (../shared/seed-summary.md) per problem: name -> overrides of the
# spec dict, or None where the remedy does not apply (no hidden layer, already Adam, ...).
REMEDIES = {
    "diverged": {
        "clipnorm": lambda s: _optimizer(s, clipnorm=1.0),
        "lower_lr": lambda s: _optimizer(s, learning_rate=_learning_rate(s) / 10),
        "adam": _adam,
    },
    "vanishing gradients": {
        "relu": lambda s: (
            _with_hidden(s, lambda layer: {**layer, "activation": "relu"}) if _saturating(s) else None
        ),
        "relu_he_init": lambda s: (
            _with_hidden(s, lambda layer: {**layer, "activation": "relu", "kernel_initializer": "he_normal"})
            if _saturating(s)
            else None
        ),
        "batchnorm": _batchnorm,
        "adam": _adam,
    },
    "dead ReLU units": {
        "lower_lr": lambda s: _optimizer(s, learning_rate=_learning_rate(s) / 10),
        "he_init": lambda s: _with_hidden(s, lambda layer: {**layer, "kernel_initializer": "he_normal"}),
        "leaky_relu": lambda s: _with_hidden(
            s,
            lambda layer: (
                {**layer, "activation": "leaky_relu"} if layer.get("activation") == "relu" else layer
            ),
        ),
    },
    "no convergence": {
        "lower_lr": lambda s: _optimizer(s, learning_rate=_learning_rate(s) / 10),
        "adam": _adam,
    },
    "underfitting": {
        "more_capacity": lambda s: _with_hidden(s, lambda layer: {**layer, "units": int(layer["units"]) * 4}),
        "adam": _adam,
        "more_epochs": lambda s: {"fit.epochs": int(s["fit"]["epochs"]) * 3},
        "higher_lr": lambda s: _optimizer(s, learning_rate=_learning_rate(s) * 10),
        "less_regularisation": lambda s: _unregularised(s) if _regularised(s) else None,
    },
    "overfitting": {
        "more_data": lambda s: (
            {"data.train_fraction": 1.0} if float(s["data"].get("train_fraction", 1.0)) < 1 else None
        ),
        "smaller_model": lambda s: _with_hidden(
            s, lambda layer: {**layer, "units": max(1, int(layer["units"]) // 4)}
        ),
        "l2": lambda s: _with_hidden(
            s, lambda layer: {**layer, "kernel_regularizer": {"class_name": "L2", "l2": 0.01}}
        ),
        "dropout": lambda s: _after_hidden(s, {"class_name": "Dropout", "rate": 0.5}),
        "early_stopping": _early_stopping,
    },
}
REMEDIES["exploding gradients"] = REMEDIES["diverged"]


def remedy_specs(spec, problems):
    """[(problem, remedy name, variant Spec)] for the problems found, each remedy once (for the first problem it targets)."""
    raw, out, seen = spec.to_dict(), [], set()
    for problem in problems:
        for name, build in REMEDIES[problem].items():
            overrides = build(raw)
            if overrides is None or name in seen:
                continue
            seen.add(name)
            out.append((problem, name, spec.with_overrides(overrides, name=f"{spec.name}[remedy={name}]")))
    return out


def gradient_spread(history):
    """log10 of the last weighted layer's mean update ratio over the first's (NaN without health columns)."""
    layers = diagnosis._layers(history, "update_ratio")
    if len(layers) < 2:
        return math.nan
    first, last = float(np.nanmean(next(iter(layers.values())))), float(np.nanmean(list(layers.values())[-1]))
    return math.log10(last / first) if first > 0 and last > 0 and math.isfinite(first + last) else math.nan


def per_seed(root, spec):
    """One row per stored run of `spec` (ok or diverged; a seed, or a (seed, fold) with cv): its metrics
    and the problems it shows."""
    runs = results.stored_runs(root, spec.name, spec.hash)
    cv = bool(spec.data.get("cv"))
    keys = ["seed", "fold"] if cv and "fold" in runs else ["seed"]
    runs = runs[runs["status"].isin(["ok", "diverged"]) & runs["seed"].isin(spec.seeds)].drop_duplicates(
        keys, keep="last"
    )
    history = results.stored_history(root, spec.name, spec.hash)
    chance = compare._chance_loss(spec.to_dict())
    rows = []
    for _, run in runs.iterrows():
        h = history[history["seed"] == run["seed"]]
        if len(keys) > 1 and "fold" in h:
            h = h[h["fold"] == run["fold"]]
        fit = diagnosis.diagnose(h, run.to_dict(), chance)
        found = {fit.label} - {"good fit"} | {
            p["problem"] for p in diagnosis.training_problems(h, run.to_dict())
        }
        num = lambda key, run=run: pd.to_numeric(run.get(key), errors="coerce")
        rows.append(
            {
                "seed": int(run["seed"]),
                **({"fold": int(run["fold"])} if len(keys) > 1 else {}),
                "status": run["status"],
                "problems": found,
                "train_accuracy": num("train_accuracy"),
                "train_loss": num("train_loss"),
                "test_accuracy": num("test_accuracy"),
                "gap_test_loss": num("test_loss") - num("train_loss"),
                "gradient_spread": gradient_spread(h),
                "dead_relu_fraction": num("dead_relu_fraction"),
                "fit_seconds": num("fit_seconds"),
                "reason": fit.reason,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            *keys,
            "status",
            "problems",
            *dict.fromkeys(m for m, _, _ in METRICS.values()),
            "test_accuracy",
            "fit_seconds",
            "reason",
        ],
    )


def problems_of(seeds):
    """The problems shown by at least half of the seeds, most serious first, with their counts."""
    n = len(seeds)
    counts = {p: sum(p in found for found in seeds["problems"]) for p in ORDER}
    return [p for p in ORDER if n and counts[p] * 2 >= n], counts


def _paired(remedy, base, metric, ratio=0.0):
    """The remedy's change of `metric`, paired by seed (by (seed, fold) with cv); `ratio` corrects for overlap."""
    keys = ["seed", "fold"] if "fold" in remedy and "fold" in base else ["seed"]
    return stats.paired(remedy.set_index(keys)[metric], base.set_index(keys)[metric], ratio=ratio)


def verdict_row(problem, name, base, remedy, ratio=0.0):
    """One line of the verdict table: the problem's metric, paired change, CI, and whether the problem is gone.

    `ratio` = n_test / n_train corrects the interval where training sets overlap between runs (resplit, cv)."""
    metric, lower, label = METRICS[problem]
    change = _paired(remedy, base, metric, ratio)
    acc = _paired(remedy, base, "test_accuracy", ratio)
    still = sum(problem in found for found in remedy["problems"])
    others = [p for p in ORDER if p != problem and any(p in found for found in remedy["problems"])]
    also = [f"{p} {sum(p in found for found in remedy['problems'])}/{len(remedy)}" for p in others]
    effect = change.verdict(lower)
    gone = still * 2 < len(remedy)
    diverged = sum("diverged" in found for found in remedy["problems"])
    if change.n == 0:
        outcome = f"not measured (diverged {diverged}/{len(remedy)})" if diverged else "not measured"
    elif effect == "better":
        outcome = "removed" if gone else "improved, problem remains"
    else:
        outcome = {"worse": "worse", "no evidence": "no evidence"}[effect] + (
            "" if not gone else " (problem absent)"
        )
    return {
        "remedy": name,
        "problem": problem,
        "metric": label,
        "seeds": change.n,
        "baseline_mean": stats.mean(base[metric]),
        "remedy_mean": stats.mean(remedy[metric]),
        "diff": change.diff,
        "diff_ci95_low": change.ci_low,
        "diff_ci95_high": change.ci_high,
        "p_value": change.p_value,
        "effect": effect,
        "still_showing": f"{still}/{len(remedy)}",
        "outcome": outcome,
        "test_accuracy_diff": acc.diff,
        "test_accuracy_ci95_low": acc.ci_low,
        "test_accuracy_ci95_high": acc.ci_high,
        "fit_seconds": stats.mean(remedy["fit_seconds"]),
        "other_problems": ", ".join(also) or "none",
        "interval": "paired t" if not ratio else f"corrected t (n_test/n_train {ratio:.2f})",
    }


def table(rows):
    from harness.cli import text_table

    def interval(low, high):
        return f"[{low:+.3f}, {high:+.3f}]" if math.isfinite(low) else "n/a"

    lines = [
        [
            r["remedy"],
            r["problem"],
            f"{compare._f(r['baseline_mean'])} -> {compare._f(r['remedy_mean'])}",
            compare._f(r["diff"], "+.3f"),
            interval(r["diff_ci95_low"], r["diff_ci95_high"]),
            compare._p(r["p_value"]),
            r["still_showing"],
            r["outcome"],
            f"{compare._f(r['test_accuracy_diff'], '+.3f')} {interval(r['test_accuracy_ci95_low'], r['test_accuracy_ci95_high'])}",
            compare._f(r["fit_seconds"], ".1f"),
            r["other_problems"],
        ]
        for r in rows
    ]
    return text_table(
        [
            "remedy",
            "targets",
            "metric: base -> remedy",
            "Δ",
            "95% CI of Δ",
            "p",
            "still has it",
            "verdict",
            "test acc Δ [95% CI]",
            "fit s",
            "other problems",
        ],
        lines,
    )


def main(spec, root="results", run=None, out=print):
    """Diagnose `spec` (running it first via `run(specs)`), run its remedies, print and write the verdict table."""
    run = run or (lambda specs: None)
    run([spec])
    base = per_seed(root, spec)
    if base.empty:
        raise HarnessError(
            f"{spec.name}: no finished runs to diagnose (every run failed; see {results.experiment_dir(root, spec.name) / 'runs.csv'})"
        )
    found, counts = problems_of(base)
    shown = ", ".join(f"{p} {counts[p]}/{len(base)}" for p in ORDER if counts[p]) or "none"
    out(f"{spec.name}: problems per seed: {shown}")
    for p in found:
        metric, _, label = METRICS[p]
        out(
            f"  {p}: {label} {stats.mean(base[metric]):.3f} (mean of {len(base)} seeds); the article's remedies: {diagnosis.REMEDIES[p]}"
        )
    if not found:
        out("no problem found in at least half of the seeds: nothing to remedy")
        return pd.DataFrame()
    causes = [p for p in found if p not in SYMPTOMS]
    treated = causes or found
    if causes and len(treated) < len(found):
        out(
            f"  ({' and '.join(p for p in found if p in SYMPTOMS)}: taken as symptoms of {causes[0]}; "
            "the remedies run are those of the cause, and the table says whether the symptoms remain)"
        )
    variants = remedy_specs(spec, treated)
    out(
        f"running {len(variants)} remedies on seeds {', '.join(map(str, spec.seeds))}: {', '.join(n for _, n, _ in variants)}"
    )
    run([v for _, _, v in variants])
    rows = []
    for problem, name, variant in variants:
        remedy = per_seed(root, variant)
        if remedy.empty:
            out(
                f"note: {name}: every run failed; see {results.experiment_dir(root, variant.name) / 'runs.csv'}"
            )
            continue
        ratio = max(overlap_ratio(spec.data), overlap_ratio(variant.data))
        rows.append(verdict_row(problem, name, base, remedy, ratio))
    frame = pd.DataFrame(rows)
    path = compare.write(frame, root, f"doctor_{compare.output_name([spec.name])}")
    out("")
    out(table(rows))
    out(
        "\nΔ = remedy − baseline on the same seeds; 'removed': the CI of Δ excludes 0 in the right direction and fewer than "
        "half of the seeds still show the problem; 'no evidence': the CI contains 0"
    )
    out(f"\nwrote: {path}")
    return frame
